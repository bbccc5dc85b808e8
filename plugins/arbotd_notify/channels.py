"""The destinations: a webhook (JSON POST signed with HMAC-SHA256) and a Telegram bot.

Each ``send`` delivers one notification or raises :class:`DeliveryError`: ``retry=True``
for what may pass (no connection, a timeout, 429, 5xx), ``retry=False`` for a refusal
that will not (another 4xx: a wrong URL, token or chat). Secrets are read at every send
(:func:`arbotd.secret_from_env`), so a reload that brings a new secrets file rotates them,
and they never appear in a message or the log.

The webhook's request::

    POST <url>
    Content-Type: application/json
    X-Arbotd-Event: trade_completed
    X-Arbotd-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the secret>

    {"source": "arbotd", "event": "trade_completed", "text": "...",
     "timestamp": "2026-01-02T03:04:05Z", "time": 1767323045.0, "suppressed": 0,
     "data": {...}}

A receiver computes the HMAC of the body bytes as received and compares it in constant
time; ``timestamp`` lets it refuse old replays.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson

from arbotd import __version__, secret_from_env
from arbotd.exchange import parse_retry_after
from arbotd_notify.config import NotifyConfig, TelegramConfig, WebhookConfig
from arbotd_notify.messages import Notification
from arbotd_notify.outbox import DeliveryError

__all__ = ["SIGNATURE_HEADER", "TelegramChannel", "WebhookChannel", "sign"]

SIGNATURE_HEADER = "X-Arbotd-Signature"
# Telegram refuses messages longer than 4096 characters.
_TELEGRAM_MAX_TEXT = 4000
_USER_AGENT = f"arbotd/{__version__}"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _status_error(what: str, response: httpx.Response) -> DeliveryError:
    status = response.status_code
    retry = status == 429 or status >= 500 or status == 408
    return DeliveryError(f"{what} answered HTTP {status}", retry=retry,
                         retry_after=parse_retry_after(response.headers.get("Retry-After")))


async def _post(channel: _Channel, what: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return await channel.client.post(url, timeout=channel.timeout, **kwargs)
    except httpx.TimeoutException:
        raise DeliveryError(f"{what} did not answer in time", retry=True) from None
    except httpx.HTTPError as err:
        # The error's text may hold the URL, and a bot's URL holds its token.
        raise DeliveryError(f"{what} could not be reached: {type(err).__name__}",
                            retry=True) from None


class _Channel:
    """What both destinations keep: their table, the label, the request timeout (all
    replaced at a reload) and the HTTP client."""

    name: str

    def __init__(self, settings: NotifyConfig, client: httpx.AsyncClient) -> None:
        self.client = client
        self.configure(settings)

    def configure(self, settings: NotifyConfig) -> None:
        self.settings = getattr(settings, self.name)
        self.label = settings.label
        self.timeout = settings.request_timeout_seconds

    @property
    def enabled(self) -> bool:
        return bool(self.settings.enabled)


class WebhookChannel(_Channel):
    name = "webhook"
    settings: WebhookConfig

    async def send(self, note: Notification) -> None:
        secret = secret_from_env(self.settings.secret_env)
        if secret is None:
            raise DeliveryError(f"${self.settings.secret_env} (the signing secret) is not "
                                "set", retry=False)
        body = orjson.dumps(note.payload(self.label))
        response = await _post(self, "the webhook", self.settings.url, content=body,
                               headers={"Content-Type": "application/json",
                                        "User-Agent": _USER_AGENT,
                                        "X-Arbotd-Event": note.kind,
                                        SIGNATURE_HEADER: sign(secret, body)})
        if not response.is_success:
            raise _status_error("the webhook", response)


class TelegramChannel(_Channel):
    name = "telegram"
    settings: TelegramConfig

    async def send(self, note: Notification) -> None:
        token = secret_from_env(self.settings.token_env)
        if token is None:
            raise DeliveryError(f"${self.settings.token_env} (the bot's token) is not set",
                                retry=False)
        url = f"{self.settings.api_url.rstrip('/')}/bot{token}/sendMessage"
        text = note.message(self.label)
        if len(text) > _TELEGRAM_MAX_TEXT:
            text = text[:_TELEGRAM_MAX_TEXT - 1] + "…"
        response = await _post(self, "Telegram", url, json={
            "chat_id": self.settings.chat_id, "text": text,
            "disable_web_page_preview": True})
        if response.is_success:
            return
        error = _status_error("Telegram", response)
        # The Bot API says how long to wait in its body: {"parameters": {"retry_after"}}.
        try:
            answer = response.json()
            wait = answer.get("parameters", {}).get("retry_after")
            description = answer.get("description")
        except (ValueError, AttributeError):
            wait, description = None, None
        if isinstance(wait, int | float) and wait > 0:
            error.retry_after = float(wait)
        if isinstance(description, str):
            error.args = (f"{error.args[0]}: {description[:200]}",)
        raise error
