"""The Bybit v5 REST client against a fake Bybit that checks signatures for real: signing,
clock offset, retCode translation, rate limits and request budgets."""

from __future__ import annotations

import hashlib
import hmac
import logging
from decimal import Decimal

import orjson
import pytest
from fake_bybit import open_fake_bybit

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd_bybit.account import parse_wallet
from arbotd_bybit.rest import IP_LIMIT, IP_WINDOW, BybitRest, BybitRetCodeError, sign

KEY = "XXXXXXXXXX-fake-key"
SECRET = "testSecretKey-fake-secret"
WALLET = "/v5/account/wallet-balance"


def test_sign_matches_the_vectors_of_bybit_v5_guide() -> None:
    # exchange-protocols.md 2.2: the doc's GET plaintext, the POST and WS forms.
    assert sign("testSecretKey", "1658384314791XXXXXXXXXX5000category=option&symbol="
                "BTC-29JUL22-25000-C") == (
        "52088a9f043d2db856d38067fc19fb361dfdcb2621c04b75e5e1f12efc3a009d")
    assert sign("testSecretKey", '1658385579423XXXXXXXXXX5000{"category": "option"}') == (
        "32c18a2026fd90762ef2835a4d8b7c553fa8b44dab0df54d39877c1dd064a34c")
    assert sign("testSecretKey", "GET/realtime1662350400000") == (
        "52a3f57c163316264d0b5531fd3ec6afa65f26e26b3a25c47e812bcedd6b8bf6")


def test_sign_is_lowercase_hex_hmac_sha256() -> None:
    payload = "1700000000000key5000accountType=UNIFIED"
    expected = hmac.new(b"s3cr3t", payload.encode(), hashlib.sha256).hexdigest()
    assert sign("s3cr3t", payload) == expected == expected.lower()


def client(url: str, secret: str = SECRET, **kwargs: object) -> BybitRest:
    return BybitRest(KEY, secret, url, **kwargs)  # type: ignore[arg-type]


async def test_signed_get_and_post_pass_the_exchanges_checks() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        result = await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert parse_wallet(result)["BTC"] == (Decimal("0.9"), Decimal("0.1"))
        seen = fake.requests[-1]
        assert seen.signature_valid is True and seen.query == "accountType=UNIFIED"
        assert seen.headers["x-bapi-api-key"] == KEY
        assert seen.headers["x-bapi-recv-window"] == "5000"
        assert seen.headers["x-bapi-sign"] == seen.headers["x-bapi-sign"].lower()
        with pytest.raises(BybitRetCodeError) as caught:
            await rest.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT",
                                                 "orderLinkId": "nothing-here"})
    # The cancel was refused by the exchange (no such order), after its signature passed.
    assert caught.value.code == 170213
    assert fake.requests[-1].signature_valid is True


async def test_a_post_body_is_signed_as_sent() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.reject_next = (170131, "Insufficient balance.")
        with pytest.raises(BybitRetCodeError) as caught:
            await rest.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT",
                                                 "side": "Buy", "orderType": "Limit",
                                                 "qty": "0.01", "price": "16611"})
        seen = fake.requests[-1]
        assert seen.signature_valid is True
        assert orjson.loads(seen.body)["qty"] == "0.01"
        assert seen.headers["content-type"] == "application/json"
        assert caught.value.code == 170131
        assert "retCode 170131: Insufficient balance." in str(caught.value)


async def test_server_time_and_offset() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.skew_ms = 4000
        offset = await rest.sync_time()
        assert abs(offset - 4000) < 500
        await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert fake.requests[-1].signature_valid is True


async def test_a_timestamp_outside_the_window_resyncs_then_succeeds() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.skew_ms = -10_000  # the exchange's clock is 10 s behind ours
        with pytest.raises(TemporaryExchangeError, match=r"10002.*re-synced"):
            await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert [r.path for r in fake.requests] == [WALLET, "/v5/market/time"]
        assert abs(rest.offset_ms + 10_000) < 500
        await rest.get(WALLET, {"accountType": "UNIFIED"})


async def test_a_wrong_secret_is_permanent_and_the_key_is_not_echoed() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url, "wrong") as rest:
        with pytest.raises(BybitRetCodeError) as caught:
            await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert caught.value.code == 10004 and isinstance(caught.value, PermanentExchangeError)
        assert fake.requests[-1].signature_valid is False
        # Bybit echoes the signed string (with the key) in this message.
        assert "origin_string" in str(caught.value)
        assert KEY not in str(caught.value) and "<api key>" in str(caught.value)


async def test_missing_credentials_send_nothing() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, BybitRest(None, None, fake.rest_url) as rest:
        with pytest.raises(PermanentExchangeError, match="not configured"):
            await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert fake.requests == []
        assert (await rest.server_time()) > 0  # public requests need no key


async def test_429_is_temporary_and_pauses_every_request() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.fault = "429"
        fake.retry_after = None  # Bybit documents no Retry-After: a second by default
        with pytest.raises(TemporaryExchangeError, match="429") as caught:
            await rest.server_time()
        assert caught.value.retry_after == 1.0
        assert not rest.ip_budget.available()
        fake.fault = None
        rest.ip_budget.blocked_until = 0.0
        fake.fault = "429"
        fake.retry_after = 0.2
        with pytest.raises(TemporaryExchangeError) as caught:
            await rest.server_time()
        assert caught.value.retry_after == 0.2
        fake.fault = None
        await rest.server_time()  # waits out the pause, then goes
        assert rest.ip_budget.waits == 1


async def test_403_is_the_ip_limit_ban_and_pauses_ten_minutes() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.fault = "403"
        with pytest.raises(TemporaryExchangeError, match="403") as caught:
            await rest.server_time()
        assert caught.value.retry_after == 600
        assert not rest.ip_budget.available()


async def test_rate_limit_retcode_is_temporary() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.uid_limits[WALLET] = 1
        fake.reject_next = None
        # Both requests in the same second of the fake's per-second window, however
        # slowly a loaded machine sends them (well within the signature's recv window).
        frozen = fake.now_ms()
        fake.now_ms = lambda: frozen  # type: ignore[method-assign]
        await rest.get(WALLET, {"accountType": "UNIFIED"})
        rest.uid_budgets[WALLET].blocked_until = 0.0
        rest.uid_budgets[WALLET].used = 0.0  # as if the client had not counted
        with pytest.raises(TemporaryExchangeError, match="10006") as caught:
            await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert caught.value.retry_after is not None and caught.value.retry_after <= 1.0


async def test_the_budget_waits_before_the_exchange_refuses() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.uid_limits[WALLET] = 5
        for _ in range(9):
            await rest.get(WALLET, {"accountType": "UNIFIED"})
        assert fake.rate_limited == 0
        budget = rest.uid_budgets[WALLET]
        assert budget.limit == 5  # learnt from X-Bapi-Limit
        assert budget.waits >= 2
    assert (rest.ip_budget.limit, rest.ip_budget.window) == (IP_LIMIT, IP_WINDOW)


@pytest.mark.parametrize(("fault", "match"), [
    ("500", "HTTP 502, outcome unknown"),
    ("malformed", "not Bybit's JSON"),
])
async def test_server_errors_are_temporary(fault: str, match: str) -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url) as rest:
        fake.fault = fault
        with pytest.raises(TemporaryExchangeError, match=match):
            await rest.get(WALLET, {"accountType": "UNIFIED"})


async def test_a_stall_times_out_as_temporary() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake, client(fake.rest_url, timeout=0.2) as rest:
        fake.fault = "stall"
        fake.stall_seconds = 2
        with pytest.raises(TemporaryExchangeError, match="timed out, outcome unknown"):
            await rest.post("/v5/order/cancel", {"category": "spot"})


async def test_connection_refused_is_temporary() -> None:
    async with open_fake_bybit(KEY, SECRET) as fake:
        url = fake.rest_url
    async with client(url, timeout=1) as rest:
        with pytest.raises(TemporaryExchangeError, match="connection failed"):
            await rest.server_time()


async def test_secrets_are_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with open_fake_bybit(KEY, SECRET) as fake:
        for secret in (SECRET, "wrong-secret"):
            async with client(fake.rest_url, secret, timeout=0.3) as rest:
                assert SECRET not in repr(rest) and KEY not in repr(rest)
                for fault in ["429", "403", "500", "malformed", "stall", None]:
                    fake.fault = fault
                    fake.stall_seconds = 1
                    fake.skew_ms = -20_000 if fault is None and secret == SECRET else 0
                    rest.ip_budget.blocked_until = 0.0
                    try:
                        await rest.get(WALLET, {"accountType": "UNIFIED"})
                    except Exception as err:
                        errors.append(err)
    assert len(errors) == 12
    for err in errors:
        for e in (err, err.__cause__, err.__context__):
            if e is not None:
                assert SECRET not in str(e) and SECRET not in repr(e)
                assert KEY not in str(e)
    for record in caplog.records:
        assert SECRET not in record.getMessage() and KEY not in record.getMessage()
