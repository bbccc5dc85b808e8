"""Builtin plugin: notifications (``[notify]``) of trades, emergency stops, venues down,
risk limits and a daily summary, to a signed webhook and a Telegram bot."""

from arbotd_notify.config import NotifyConfig
from arbotd_notify.messages import Notification
from arbotd_notify.service import NotifyService

__all__ = ["Notification", "NotifyConfig", "NotifyService"]
