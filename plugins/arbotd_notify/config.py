"""``[notify]``: which events to send, how often at most, and where: ``[notify.webhook]``
(a JSON POST signed with HMAC-SHA256) and ``[notify.telegram]`` (a bot's messages).

Where notifications go (URLs, the secrets' variables) and whether the plugin runs at all
are read at start: a reload that changes them is refused. Everything else applies at a
reload. Secrets (the webhook's signing secret, the bot's token) come from the environment
or the secrets file, never from this file.
"""

from __future__ import annotations

import attrs

from arbotd import setting

__all__ = ["EventsConfig", "NotifyConfig", "RetryPolicy", "TelegramConfig", "WebhookConfig"]


def _check_url(url: str) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        return f'expected an http:// or https:// URL, got {url!r}'
    return None


def _check_env_name(name: str) -> str | None:
    if not name or not name.replace("_", "").isalnum():
        return f"expected the name of an environment variable, got {name!r}"
    return None


@attrs.frozen
class EventsConfig:
    """``[notify.events]``: one switch per kind of notification."""

    # A trade completed (both legs filled).
    trade_completed: bool = setting(True)
    # A trade failed.
    trade_failed: bool = setting(True)
    # A trade whose filled leg had to be unwound, at a loss.
    trade_unwound: bool = setting(True)
    # An emergency stop.
    emergency_stop: bool = setting(True)
    # A venue's market data down longer than venue_down_seconds, and back.
    venue_down: bool = setting(True)
    # A risk limit reaching warning (80 % used) or critical, and back to normal.
    risk_limit: bool = setting(True)
    # The previous UTC day's trades, net and fees, at 00:00 UTC.
    daily_summary: bool = setting(True)
    # An asset's share on a venue past [inventory] warn_drift from its target, and back.
    inventory_drift: bool = setting(True)

    def enabled(self, kind: str) -> bool:
        """Whether notifications of ``kind`` are wanted (``venue_back`` goes with
        ``venue_down``)."""
        return bool(getattr(self, "venue_down" if kind == "venue_back" else kind))


@attrs.frozen
class WebhookConfig:
    """``[notify.webhook]``: a JSON POST per notification, signed in the header
    ``X-Arbotd-Signature: sha256=<hex>`` (HMAC-SHA256 of the body with the secret)."""

    enabled: bool = setting(False)
    url: str = setting("", check=_check_url, reload="restart")
    secret_env: str = setting("ARBOT_WEBHOOK_SECRET", check=_check_env_name,
                              reload="restart")

    def validate_config(self) -> list[tuple[str, str]]:
        if self.enabled and not self.url:
            return [("url", "enabled = true needs the URL to post to")]
        return []


@attrs.frozen
class TelegramConfig:
    """``[notify.telegram]``: messages from a bot (the Bot API's ``sendMessage``)."""

    enabled: bool = setting(False)
    # The chat (a user, group or channel id, or "@channelname") the bot writes to.
    chat_id: str = setting("")
    token_env: str = setting("ARBOT_TELEGRAM_TOKEN", check=_check_env_name,
                             reload="restart")
    api_url: str = setting("https://api.telegram.org", check=_check_url, reload="restart")

    def validate_config(self) -> list[tuple[str, str]]:
        if self.enabled and not self.chat_id:
            return [("chat_id", "enabled = true needs the chat the bot writes to")]
        return []


@attrs.frozen
class RetryPolicy:
    """How a notification that could not be delivered is tried again: ``attempts`` tries
    in all, waiting ``first_delay`` seconds after the first failure, doubling up to
    ``max_delay`` (or what the endpoint asks with Retry-After, if longer)."""

    attempts: int
    first_delay: float
    max_delay: float

    def delay(self, failures: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** max(failures - 1, 0))


@attrs.frozen
class NotifyConfig:
    # Run the notifier (read at start: a reload that changes it is refused).
    enabled: bool = setting(False, reload="restart")
    # Put before every message, to tell daemons apart.
    label: str = setting("arbotd")
    # A venue's market data must be down this long before it is reported.
    venue_down_seconds: float = setting(60.0, ge=0, le=86_400)
    # How often venue states and risk limits are looked at.
    check_interval_seconds: float = setting(1.0, gt=0, le=60)
    # At most rate_limit_count notifications of one kind per rate_limit_seconds; the
    # rest are counted and the next one sent says how many were left out.
    rate_limit_count: int = setting(10, ge=1, le=10_000)
    rate_limit_seconds: float = setting(60.0, gt=0, le=86_400)
    # Notifications waiting per destination; when it is full the oldest is dropped.
    max_queue: int = setting(100, ge=1, le=100_000)
    # Tries per notification, and the back-off between them.
    max_attempts: int = setting(5, ge=1, le=100)
    retry_first_seconds: float = setting(1.0, gt=0, le=3600)
    retry_max_seconds: float = setting(60.0, gt=0, le=86_400)
    # A request to a destination that has not answered after this long fails (and is
    # tried again).
    request_timeout_seconds: float = setting(10.0, gt=0, le=300)
    events: EventsConfig = attrs.field(factory=EventsConfig)
    webhook: WebhookConfig = attrs.field(factory=WebhookConfig)
    telegram: TelegramConfig = attrs.field(factory=TelegramConfig)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_first_seconds,
                           self.retry_max_seconds)

    def validate_config(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.enabled and not (self.webhook.enabled or self.telegram.enabled):
            problems.append(("enabled", "enabled = true needs [notify.webhook] or "
                             "[notify.telegram] enabled: there is nowhere to send to"))
        if self.retry_max_seconds < self.retry_first_seconds:
            problems.append(("retry_max_seconds", "must be at least retry_first_seconds "
                             f"({self.retry_first_seconds:g})"))
        return problems
