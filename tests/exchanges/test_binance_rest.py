"""The Binance spot REST client against a fake server that checks signatures for real."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from fake_binance_rest import open_fake_binance_rest

from arbotd._errors import PermanentExchangeError, TemporaryExchangeError
from arbotd_binance.rest import REQUEST_WEIGHT_LIMIT, BinanceRest, sign

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_sign_matches_binance_doc_vector() -> None:
    # exchange-protocols.md section 1.2 "Signing", the doc vector of Binance's rest-api.md.
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
    )
    assert sign(SECRET, payload) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def _client(url: str, secret: str = SECRET, **kwargs) -> BinanceRest:
    return BinanceRest(KEY, secret, url, **kwargs)


async def test_signed_account_call() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        balances = await rest.account()
        assert balances["BTC"] == (Decimal("0.5"), Decimal("0.1"))
        assert balances["USDT"] == (Decimal("1000"), Decimal("0"))
        seen = fake.requests[-1]
        assert seen.path == "/api/v3/account"
        assert seen.signature_valid is True
        assert seen.headers["x-mbx-apikey"] == KEY
        assert "recvWindow=5000" in seen.query and "timestamp=" in seen.query
        assert SECRET not in seen.query


async def test_wrong_secret_is_permanent_1022() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url, "wrong") as rest:
        with pytest.raises(PermanentExchangeError) as info:
            await rest.account()
        assert "-1022" in str(info.value)
        assert "Signature for this request is not valid." in str(info.value)
        assert fake.requests[-1].signature_valid is False


async def test_missing_credentials_is_permanent() -> None:
    async with open_fake_binance_rest() as fake, BinanceRest(None, None, fake.url) as rest:
        with pytest.raises(PermanentExchangeError):
            await rest.account()
        assert fake.requests == []


@pytest.mark.parametrize("status", ["429", "418"])
async def test_rate_limit_is_temporary_with_retry_after(status: str) -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        fake.fault = status
        fake.retry_after = 42
        with pytest.raises(TemporaryExchangeError) as info:
            await rest.account()
        assert info.value.retry_after == 42
        assert status in str(info.value)
        if status == "418":
            assert "banned" in str(info.value)


async def test_server_error_is_temporary() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        fake.fault = "500"
        with pytest.raises(TemporaryExchangeError) as info:
            await rest.account()
        assert info.value.retry_after is None
        assert "500" in str(info.value)


async def test_stall_times_out_as_temporary() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url, timeout=0.2) as rest:
        fake.fault = "stall"
        fake.stall_seconds = 2
        with pytest.raises(TemporaryExchangeError, match="timed out"):
            await rest.server_time()


async def test_connection_refused_is_temporary() -> None:
    async with open_fake_binance_rest() as fake:
        url = fake.url
    async with _client(url, timeout=1) as rest:
        with pytest.raises(TemporaryExchangeError, match="connection failed"):
            await rest.server_time()


async def test_forced_1021_resyncs_then_temporary() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        fake.fault = "-1021"
        with pytest.raises(TemporaryExchangeError, match="-1021"):
            await rest.account()
        assert [r.path for r in fake.requests] == ["/api/v3/account", "/api/v3/time"]


async def test_1021_resyncs_clock_and_next_call_succeeds() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        await rest.sync_time()
        assert abs(rest.offset_ms) < 500
        fake.skew_ms = -10_000  # the exchange's clock jumps 10 s back
        with pytest.raises(TemporaryExchangeError, match="-1021"):
            await rest.account()
        assert abs(rest.offset_ms + 10_000) < 500
        assert (await rest.account())["BTC"][0] == Decimal("0.5")


@pytest.mark.parametrize("skew_ms", [3000, -3000])
async def test_clock_skew_absorbed_by_sync_time(skew_ms: int) -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(
        fake.url, recv_window=2000
    ) as rest:
        fake.skew_ms = skew_ms
        with pytest.raises(TemporaryExchangeError, match="-1021"):
            await rest.account()  # unsynced: rejected, and the client re-syncs
        fake.requests.clear()
        rest.offset_ms = 0
        offset = await rest.sync_time()
        assert abs(offset - skew_ms) < 500
        await rest.account()
        assert fake.requests[-1].signature_valid is True


async def test_used_weight_and_budget() -> None:
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        assert rest.used_weight is None and rest.budget_ok(20)
        await rest.server_time()
        assert rest.used_weight == 1
        await rest.account()
        assert rest.used_weight == 21
        budget = int(0.8 * REQUEST_WEIGHT_LIMIT)
        fake.used_weight = budget - 21  # the next time call makes it budget - 20
        await rest.server_time()
        assert rest.used_weight == budget - 20
        assert rest.budget_ok(20)
        assert not rest.budget_ok(21)
        fake.used_weight = 5999
        await rest.server_time()
        assert not rest.budget_ok(1)


async def test_secret_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with open_fake_binance_rest(KEY, SECRET) as fake, _client(fake.url) as rest:
        assert SECRET not in repr(rest) and KEY not in repr(rest)
        fake.retry_after = 0  # no pause between the faults
        for fault in ["429", "418", "500", "-1021", "-1022", None]:
            fake.fault = fault
            try:
                await rest.account()
            except Exception as err:
                errors.append(err)
    async with _client(fake.url, timeout=0.5) as rest:
        try:
            await rest.account()
        except Exception as err:
            errors.append(err)
    assert len(errors) == 6
    for err in errors:
        chain = [err, err.__cause__, err.__context__]
        for e in chain:
            if e is not None:
                assert SECRET not in str(e) and SECRET not in repr(e)
    assert caplog.records
    for record in caplog.records:
        assert SECRET not in record.getMessage()
