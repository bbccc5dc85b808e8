"""The Bitget REST client: signing against the published vectors, clock offset, request
budgets and error translation, against a fake Bitget that checks signatures for real."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd_bitget import BitgetError, BitgetRest, login_request, sign

KEY = "bg_5f4b8a2e9f1c4d3e8a7b2c6d9e0f1a3b"
SECRET = "7c1d0e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d"
PASSPHRASE = "Tr4der-Passphrase"
ASSETS = "/api/v2/spot/account/assets"
TIME = "/api/v2/public/time"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBitget]:
    async with open_fake_bitget(KEY, SECRET, PASSPHRASE) as server:
        yield server


def _client(fake: FakeBitget, secret: str = SECRET, passphrase: str = PASSPHRASE, **kwargs
            ) -> BitgetRest:
    return BitgetRest(KEY, secret, passphrase, fake.rest_url, **kwargs)


# --- signing ---------------------------------------------------------------------------


def test_signatures_match_the_published_vectors() -> None:
    """bitget-upbit-protocols.md 1.2: secret ``testsecret``; the first two vectors are
    nautilus_trader's signing tests, the others the doc's place-order example."""
    assert sign("testsecret", "1659927630000", "GET",
                "/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT") == (
        "BUbassOUwHdAjeOFu8D5FZfp4i2JGYCsS9yBvRLaC0U=")
    body = ('{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc",'
            '"price":"23222.5","size":"1","clientOid":"121211212122"}')
    assert sign("testsecret", "1659076670000", "POST", "/api/v2/spot/trade/place-order",
                body) == "ZnSppVg0jb+9rkppUd5m/THFX58YC5vjOIzYsm7S11U="
    assert sign("testsecret", "1659076670000", "GET",
                "/api/v2/spot/trade/orderInfo?clientOid=121211212122") == (
        "bplkkwySUGCUPBH7lRt9bkdOlqIpCoDA7oa8IwYGyDc=")


def test_the_websocket_login_signs_user_verify() -> None:
    [args] = login_request("key", "testsecret", "pass", 1659927630000)["args"]
    assert args == {"apiKey": "key", "passphrase": "pass", "timestamp": "1659927630000",
                    "sign": "ReLoBF0dP2l8UDnVe5VABcut6c7GGb+QFkEZ/KeNw8k="}


async def test_a_signed_request_carries_every_header(fake: FakeBitget) -> None:
    async with _client(fake) as rest:
        assets = await rest.request("GET", ASSETS, {"coin": "BTC"}, private=True)
        assert {a["coin"] for a in assets} == set(fake.balances)
        seen = fake.requests[-1]
        assert seen.signature_valid is True and seen.target == f"{ASSETS}?coin=BTC"
        assert seen.headers["access-key"] == KEY
        assert seen.headers["access-passphrase"] == PASSPHRASE
        assert seen.headers["access-timestamp"].isdigit()  # milliseconds
        assert seen.headers["locale"] == "en-US"
        assert "paptrading" not in seen.headers
    async with _client(fake, demo=True) as rest:
        await rest.request("GET", ASSETS, private=True)
        assert fake.requests[-1].headers["paptrading"] == "1"


async def test_public_requests_are_not_signed(fake: FakeBitget) -> None:
    async with BitgetRest(None, None, None, fake.rest_url) as rest:
        assert abs(await rest.server_time() - fake.now_ms()) < 5000
        assert "access-sign" not in fake.requests[-1].headers
        with pytest.raises(PermanentExchangeError, match="not all configured"):
            await rest.request("GET", ASSETS, private=True)
        assert len(fake.requests) == 1


@pytest.mark.parametrize(("secret", "passphrase", "code"), [
    ("not-the-secret", PASSPHRASE, "40009"),
    (SECRET, "wrong", "40012"),
])
async def test_a_wrong_secret_or_passphrase_is_permanent(
    fake: FakeBitget, secret: str, passphrase: str, code: str
) -> None:
    async with _client(fake, secret, passphrase) as rest:
        with pytest.raises(BitgetError) as caught:
            await rest.request("GET", ASSETS, private=True)
        assert caught.value.code == code and code in str(caught.value)
        assert "check the API key" in str(caught.value)
        assert isinstance(caught.value, PermanentExchangeError)


# --- clock -------------------------------------------------------------------------------


async def test_sync_time_measures_the_offset(fake: FakeBitget) -> None:
    fake.skew_ms = 45_000
    async with _client(fake) as rest:
        assert abs(await rest.sync_time() - 45_000) < 1000
        await rest.request("GET", ASSETS, private=True)
        assert fake.requests[-1].signature_valid is True


async def test_an_expired_timestamp_resyncs_the_clock(fake: FakeBitget) -> None:
    async with _client(fake) as rest:
        await rest.sync_time()
        fake.skew_ms = -40_000  # the exchange's clock is 40 s behind ours
        with pytest.raises(TemporaryExchangeError, match="40008"):
            await rest.request("GET", ASSETS, private=True)
        assert [r.path for r in fake.requests[-2:]] == [ASSETS, TIME]
        assert abs(rest.offset_ms + 40_000) < 1000
        await rest.request("GET", ASSETS, private=True)  # and the next call passes
        assert fake.requests[-1].signature_valid is True


# --- errors --------------------------------------------------------------------------------


async def test_rate_limit_is_temporary_and_pauses_the_endpoint(fake: FakeBitget) -> None:
    async with _client(fake, window=0.3) as rest:
        fake.rest_fault = "429"
        with pytest.raises(TemporaryExchangeError, match="rate limit") as caught:
            await rest.request("GET", ASSETS, private=True)
        assert caught.value.retry_after == 0.3  # no Retry-After: one window
        assert not rest.budget(ASSETS).available()
        assert rest.budget(TIME).available()  # other endpoints go on
        fake.rest_fault = None
        start = trio.current_time()
        await rest.request("GET", ASSETS, private=True)  # waits out the pause first
        assert trio.current_time() - start >= 0.2


async def test_release_window_codes_and_server_errors_are_temporary(fake: FakeBitget) -> None:
    async with _client(fake) as rest:
        fake.rest_fault = "45001"
        with pytest.raises(TemporaryExchangeError, match="45001") as caught:
            await rest.request("GET", ASSETS, private=True)
        assert not isinstance(caught.value, PermanentExchangeError)
        fake.rest_fault = "500"
        with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
            await rest.request("GET", ASSETS, private=True)


async def test_a_stall_times_out_and_a_refused_connection_is_temporary(fake: FakeBitget) -> None:
    fake.rest_fault = "stall"
    fake.stall_seconds = 2
    async with _client(fake, timeout=0.2) as rest:
        with pytest.raises(TemporaryExchangeError, match="timed out"):
            await rest.server_time()
    async with open_fake_bitget() as gone:
        url = gone.rest_url
    async with BitgetRest(None, None, None, url, timeout=1) as rest:
        with pytest.raises(TemporaryExchangeError, match="connection failed"):
            await rest.server_time()


async def test_garbage_answers_are_temporary_and_unknown_errors_permanent(
    fake: FakeBitget,
) -> None:
    async with _client(fake) as rest:
        with pytest.raises(BitgetError) as caught:
            await rest.request("GET", "/api/v2/spot/nowhere")
        assert caught.value.code == "40404"
        fake.rest_fault = "garbage"
        with pytest.raises(TemporaryExchangeError, match="not Bitget's JSON"):
            await rest.request("GET", TIME)


# --- budget ------------------------------------------------------------------------------


async def test_the_budget_paces_requests_before_bitget_refuses(fake: FakeBitget) -> None:
    """Balances allow 10 requests a second; 25 at once go out at most 8 a window (80 %),
    and Bitget never answers 429."""
    fake.limit_window = 0.3
    async with _client(fake, window=0.3) as rest:
        async with trio.open_nursery() as nursery:
            for _ in range(25):
                nursery.start_soon(partial(rest.request, "GET", ASSETS, private=True))
        assert fake.rate_limited == 0
        assert rest.budget(ASSETS).waits >= 17  # all but the first 8 waited
        # Every endpoint also counts against the per-IP minute.
        assert rest.ip_budget.limit == 6000 and rest.ip_budget.used >= 25


async def test_a_tiny_budget_fraction_still_allows_one_request(fake: FakeBitget) -> None:
    async with _client(fake, budget_fraction=0.01) as rest:
        await rest.server_time()
        assert rest.budget(TIME).allowance == 1


# --- secrets ---------------------------------------------------------------------------


async def test_secrets_never_in_errors_or_logs(
    fake: FakeBitget, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with _client(fake, timeout=0.5, window=0.1) as rest:
        assert SECRET not in repr(rest) and PASSPHRASE not in repr(rest)
        for fault in ["429", "45001", "500", None]:
            fake.rest_fault = fault
            try:
                await rest.request("GET", ASSETS, private=True)
            except Exception as err:
                errors.append(err)
        fake.rest_fault = None
        fake.skew_ms = -40_000
        try:
            await rest.request("GET", ASSETS, private=True)
        except Exception as err:
            errors.append(err)
    async with _client(fake, secret="bad", passphrase="bad") as rest:
        try:
            await rest.request("GET", ASSETS, private=True)
        except Exception as err:
            errors.append(err)
    assert len(errors) == 5
    for err in errors:
        for e in (err, err.__cause__, err.__context__):
            if e is not None:
                for secret in (SECRET, PASSPHRASE, KEY):
                    assert secret not in str(e) and secret not in repr(e)
    assert caplog.records
    for record in caplog.records:
        for secret in (SECRET, PASSPHRASE, KEY):
            assert secret not in record.getMessage()
