"""The OKX REST client: signing against the documented example, clock offset, request
budgets and error translation, against a fake OKX that checks signatures for real."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
import trio.testing
from fake_okx import FakeOkx, open_fake_okx

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import RequestBudget
from arbotd_okx import OkxError, OkxRest, iso_timestamp, sign

KEY = "5f4b8a2e-9f1c-4d3e-8a7b-2c6d9e0f1a3b"
SECRET = "22582BD0CFF14C41EDBF1AB98506286D"  # the secret of OKX's authentication example
PASSPHRASE = "Tr4der-Passphrase!"
BALANCE = "/api/v5/account/balance"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOkx]:
    async with open_fake_okx(KEY, SECRET, PASSPHRASE) as server:
        yield server


def _client(fake: FakeOkx, secret: str = SECRET, passphrase: str = PASSPHRASE, **kwargs
            ) -> OkxRest:
    return OkxRest(KEY, secret, passphrase, fake.rest_url, **kwargs)


# --- signing ---------------------------------------------------------------------------


def test_signatures_match_the_vectors_of_the_documented_example() -> None:
    # exchange-protocols.md 3.2: OKX's example secret and timestamp, vectors computed
    # independently of this code.
    ts = "2020-12-08T09:08:57.715Z"
    assert sign(SECRET, ts, "GET", "/api/v5/account/balance?ccy=BTC") == (
        "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=")
    body = ('{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"2.15",'
            '"sz":"2"}')
    assert sign(SECRET, ts, "POST", "/api/v5/trade/order", body) == (
        "iwrdSpN7pm4G4u8+fswZUyH6mOM48+sBF6WvKpj4Dvk=")
    # The WebSocket login signs the same way (unix seconds, GET /users/self/verify).
    assert sign(SECRET, "1538054050", "GET", "/users/self/verify") == (
        "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M=")


def test_iso_timestamp() -> None:
    assert iso_timestamp(1607418537715) == "2020-12-08T09:08:57.715Z"
    assert iso_timestamp(1607418537005) == "2020-12-08T09:08:57.005Z"


async def test_a_signed_request_carries_every_header(fake: FakeOkx) -> None:
    async with _client(fake) as rest:
        [account] = await rest.request("GET", BALANCE, {"ccy": "BTC"}, private=True)
        assert {d["ccy"] for d in account["details"]} == {"BTC"} | set(fake.balances)
        seen = fake.requests[-1]
        assert seen.signature_valid is True and seen.target == f"{BALANCE}?ccy=BTC"
        assert seen.headers["ok-access-key"] == KEY
        assert seen.headers["ok-access-passphrase"] == PASSPHRASE
        assert seen.headers["ok-access-timestamp"].endswith("Z")
        assert "x-simulated-trading" not in seen.headers
    async with _client(fake, demo=True) as rest:
        await rest.request("GET", BALANCE, private=True)
        assert fake.requests[-1].headers["x-simulated-trading"] == "1"


async def test_public_requests_are_not_signed(fake: FakeOkx) -> None:
    async with OkxRest(None, None, None, fake.rest_url) as rest:
        assert abs(await rest.server_time() - fake.now_ms()) < 5000
        assert "ok-access-sign" not in fake.requests[-1].headers
        with pytest.raises(PermanentExchangeError, match="not all configured"):
            await rest.request("GET", BALANCE, private=True)
        assert len(fake.requests) == 1


@pytest.mark.parametrize(("secret", "passphrase", "code"), [
    ("0000000000000000000000000000000D", PASSPHRASE, "50113"),
    (SECRET, "wrong", "50105"),
])
async def test_a_wrong_secret_or_passphrase_is_permanent(
    fake: FakeOkx, secret: str, passphrase: str, code: str
) -> None:
    async with _client(fake, secret, passphrase) as rest:
        with pytest.raises(OkxError) as caught:
            await rest.request("GET", BALANCE, private=True)
        assert caught.value.code == code and code in str(caught.value)
        assert isinstance(caught.value, PermanentExchangeError)


# --- clock -------------------------------------------------------------------------------


async def test_sync_time_measures_the_offset(fake: FakeOkx) -> None:
    fake.skew_ms = 45_000
    async with _client(fake) as rest:
        assert abs(await rest.sync_time() - 45_000) < 1000
        await rest.request("GET", BALANCE, private=True)
        assert fake.requests[-1].signature_valid is True


async def test_an_expired_timestamp_resyncs_the_clock(fake: FakeOkx) -> None:
    async with _client(fake) as rest:
        await rest.sync_time()
        fake.skew_ms = -40_000  # the exchange's clock is 40 s behind ours
        with pytest.raises(TemporaryExchangeError, match="50102"):
            await rest.request("GET", BALANCE, private=True)
        assert [r.path for r in fake.requests[-2:]] == [BALANCE, "/api/v5/public/time"]
        assert abs(rest.offset_ms + 40_000) < 1000
        await rest.request("GET", BALANCE, private=True)  # and the next call passes
        assert fake.requests[-1].signature_valid is True


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "50011"])
async def test_rate_limit_is_temporary_and_pauses_the_endpoint(fake: FakeOkx, fault: str) -> None:
    async with _client(fake, window=0.3) as rest:
        fake.rest_fault = fault
        with pytest.raises(TemporaryExchangeError, match="rate limit") as caught:
            await rest.request("GET", BALANCE, private=True)
        assert caught.value.retry_after == 0.3  # OKX sends no Retry-After: one window
        assert not rest.budget(BALANCE).available()
        assert rest.budget("/api/v5/public/time").available()  # other endpoints go on
        fake.rest_fault = None
        start = trio.current_time()
        await rest.request("GET", BALANCE, private=True)  # waits out the pause first
        assert trio.current_time() - start >= 0.2


async def test_server_errors_and_busy_codes_are_temporary(fake: FakeOkx) -> None:
    async with _client(fake) as rest:
        fake.rest_fault = "500"
        with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
            await rest.request("GET", BALANCE, private=True)


async def test_a_stall_times_out_as_temporary(fake: FakeOkx) -> None:
    fake.rest_fault = "stall"
    fake.stall_seconds = 2
    async with _client(fake, timeout=0.2) as rest:
        with pytest.raises(TemporaryExchangeError, match="timed out"):
            await rest.server_time()


async def test_a_refused_connection_is_temporary() -> None:
    async with open_fake_okx() as fake:
        url = fake.rest_url
    async with OkxRest(None, None, None, url, timeout=1) as rest:
        with pytest.raises(TemporaryExchangeError, match="connection failed"):
            await rest.server_time()


async def test_unknown_errors_are_permanent_with_the_code(fake: FakeOkx) -> None:
    async with _client(fake) as rest:
        with pytest.raises(OkxError) as caught:
            await rest.request("GET", "/api/v5/public/instruments", {"instType": "SWAPS"})
        assert caught.value.code == "51000" and "Parameter instType error" in str(caught.value)


# --- budget ------------------------------------------------------------------------------


async def test_the_budget_paces_requests_before_okx_refuses(fake: FakeOkx) -> None:
    """Balance allows 10 requests a window; 25 at once go out at most 8 a window (80 %),
    and OKX never answers 50011."""
    fake.limit_window = 0.3
    async with _client(fake, window=0.3) as rest:
        async with trio.open_nursery() as nursery:
            for _ in range(25):
                nursery.start_soon(partial(rest.request, "GET", BALANCE, private=True))
        assert fake.rate_limited == 0
        assert rest.budget(BALANCE).waits >= 17  # all but the first 8 waited


async def test_a_tiny_budget_fraction_still_allows_one_request(fake: FakeOkx) -> None:
    async with _client(fake, budget_fraction=0.01) as rest:
        await rest.server_time()
        assert rest.budget("/api/v5/public/time").allowance == 1


# --- secrets ---------------------------------------------------------------------------


async def test_secrets_never_in_errors_or_logs(
    fake: FakeOkx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with _client(fake, timeout=0.5, window=0.1) as rest:
        assert SECRET not in repr(rest) and PASSPHRASE not in repr(rest)
        for fault in ["429", "50011", "500", None]:
            fake.rest_fault = fault
            try:
                await rest.request("GET", BALANCE, private=True)
            except Exception as err:
                errors.append(err)
        fake.rest_fault = None
        fake.skew_ms = -40_000
        try:
            await rest.request("GET", BALANCE, private=True)
        except Exception as err:
            errors.append(err)
    async with _client(fake, secret="bad", passphrase="bad") as rest:
        try:
            await rest.request("GET", BALANCE, private=True)
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


async def test_a_sliding_budget_counts_a_request_until_a_window_after_its_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """OKX's budgets slide (its windows may start anywhere) and count each request from
    its answer on: the exchange received it before then, so it never counts more."""
    budget = RequestBudget("okx test", 10, 1.0, fraction=0.5, sliding=True)
    uses = [await budget.acquire() for _ in range(5)]
    assert not budget.available()
    await trio.sleep(0.4)
    for use in uses:
        budget.finish(use)  # the answers came 0.4 s later
    await trio.sleep(0.8)  # 1.2 s after sending, 0.8 s after the answers
    assert not budget.available()
    start = trio.current_time()
    await budget.acquire()
    assert trio.current_time() - start == pytest.approx(0.2, abs=0.01)
    assert budget.waits == 1
