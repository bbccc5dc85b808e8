"""Upbit's request signing against the published example, the Remaining-Req header, the
request groups and the error answers."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd_upbit import UpbitError, UpbitRest, query_hash, token
from arbotd_upbit.rest import group_of, parse_remaining_req
from arbotd_upbit.signing import hash_source

# bitget-upbit-protocols.md 2.2: the order query of the example, its SHA-512, and the
# tokens signed with the example secret and nonce.
QUERY = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "100000000",
         "volume": "0.0001", "identifier": "test-001"}
QUERY_HASH = ("cbfab76444c3680c617491cfea74f6747fe369790baae22ae342256dfdb9c7cd1e9dd39aed88"
              "d51b519508e2256db9ce362895e149a3e894585fa01f999c9b2a")
NONCE = "6f5570df-d8bc-4daf-85b4-976733feb624"


def segments(jwt: str) -> list[str]:
    return jwt.split(".")


def claims(jwt: str) -> dict:
    payload = segments(jwt)[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_query_hash_is_the_published_one() -> None:
    assert hash_source(QUERY) == (
        "market=KRW-BTC&side=bid&ord_type=limit&price=100000000&volume=0.0001"
        "&identifier=test-001")
    assert query_hash(QUERY) == QUERY_HASH


def test_tokens_match_the_published_signatures() -> None:
    signed = token("test-access-key", "test-secret-key", QUERY, nonce=NONCE)
    assert segments(signed)[2] == (
        "ksW37L5KkU3yLnF5hwBXEIuRMPNgCiFNGpJKja27ODHFgx8AzQvLpPXhmE8Q7YhwO4rxsKd0zNK8SRx2l9Pd8g")
    assert claims(signed) == {"access_key": "test-access-key", "nonce": NONCE,
                              "query_hash": QUERY_HASH, "query_hash_alg": "SHA512"}
    assert segments(token("test-access-key", "test-secret-key", QUERY, nonce=NONCE,
                          algorithm="HS256"))[2] == "9KGMYSykcQOfH3-mEl282EdZev3_hwMIvpnLO9MBKhg"
    assert token("test-access-key", "test-secret-key", nonce=NONCE, algorithm="HS256") == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3Nfa2V5IjoidGVzdC1hY2Nlc3Mta2V5Iiwibm9"
        "uY2UiOiI2ZjU1NzBkZi1kOGJjLTRkYWYtODViNC05NzY3MzNmZWI2MjQifQ.D_WsBtOs6qc6bewTVqdNvpE"
        "Oew5rv4oc9GLa0sq2-jY")


def test_every_token_has_a_new_nonce_and_lists_hash_as_key_brackets() -> None:
    assert claims(token("a", "s"))["nonce"] != claims(token("a", "s"))["nonce"]
    assert hash_source({"uuids": ["a", "b"], "state": "done", "skip": None}) == (
        "uuids[]=a&uuids[]=b&state=done")


def test_remaining_req_and_groups() -> None:
    assert parse_remaining_req("group=default; min=1800; sec=29") == ("default", 29)
    assert parse_remaining_req("group=order; min=480; sec=7") == ("order", 7)
    assert parse_remaining_req("garbage") is None and parse_remaining_req(None) is None
    assert group_of("POST", "/v1/orders") == "order"
    assert group_of("GET", "/v1/orders/open") == "default"
    assert group_of("GET", "/v1/market/all") == "market"
    assert group_of("GET", "/v1/orderbook/instruments") == "orderbook"


def answering(status: int, body: object, headers: dict[str, str] | None = None) -> UpbitRest:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})
    return UpbitRest("key", "secret", "http://upbit.test",
                     transport=httpx.MockTransport(handler))


async def test_error_answers_carry_upbits_name() -> None:
    rest = answering(404, {"error": {"name": "order_not_found", "message": "없음"}})
    with pytest.raises(UpbitError) as caught:
        await rest.request("GET", "/v1/order", {"identifier": "x"}, private=True)
    assert (caught.value.name, caught.value.status) == ("order_not_found", 404)
    rest = answering(401, {"error": {"name": "no_authorization_ip", "message": "ip"}})
    with pytest.raises(PermanentExchangeError, match="IP allowlist"):
        await rest.request("GET", "/v1/accounts", private=True)
    rest = answering(401, {"error": {"name": "nonce_used", "message": "again"}})
    with pytest.raises(TemporaryExchangeError, match="nonce_used"):
        await rest.request("GET", "/v1/accounts", private=True)
    rest = answering(500, {"error": {"name": "server_error", "message": "점검"}})
    with pytest.raises(TemporaryExchangeError, match="outcome unknown"):
        await rest.request("POST", "/v1/orders", body={"market": "KRW-BTC"}, private=True)
    rest = answering(200, "<html>")
    assert await rest.request("GET", "/v1/market/all") == "<html>"


async def test_a_proxy_page_is_temporary() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>gateway</html>")
    rest = UpbitRest(base_url="http://upbit.test", transport=httpx.MockTransport(handler))
    with pytest.raises(TemporaryExchangeError, match="not Upbit's JSON"):
        await rest.request("GET", "/v1/market/all")
