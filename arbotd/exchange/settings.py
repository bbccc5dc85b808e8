"""Checks every exchange plugin's ``[exchanges.<name>]`` table applies to its URLs, so
that a typo in a base URL is a configuration error naming the key, not a connection
failure at run time."""

from __future__ import annotations

from typing import Any

__all__ = ["check_rest_url", "check_ws_url"]


def check_ws_url(url: Any) -> str | None:
    """For ``setting(check=...)``: ``""`` (the exchange's default) or a ws(s):// URL."""
    if url and not str(url).startswith(("wss://", "ws://")):
        return f"expected a ws:// or wss:// URL (or \"\" for the default), got {url!r}"
    return None


def check_rest_url(url: Any) -> str | None:
    """For ``setting(check=...)``: ``""`` (the exchange's default) or an http(s):// URL."""
    if url and not str(url).startswith(("https://", "http://")):
        return f"expected an http:// or https:// URL (or \"\" for the default), got {url!r}"
    return None
