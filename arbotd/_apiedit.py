"""The API's allow-list: which configuration keys ``PUT /api/v1/trading/config`` may
change.

Each section declares its own editable keys with ``setting(api=True)``: trading
parameters only. The list is derived here, in one place, for the handler that enforces
it and for the OpenAPI document that shows it; the core names no key of a plugin.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from arbotd._config import setting_rule

__all__ = ["api_editable_settings", "find_setting"]


def api_editable_settings(schema: Mapping[str, type]) -> dict[str, attrs.Attribute]:
    """Every key the API may change, as its dotted path (``arbitrage.trade_amount_usd``,
    ``exchanges.binance.enabled``) mapped to its field, sorted by path."""
    found: dict[str, attrs.Attribute] = {}

    def collect(cls: type, path: str) -> None:
        for field in attrs.fields(attrs.resolve_types(cls)):
            key = f"{path}.{field.name}"
            if isinstance(field.type, type) and attrs.has(field.type):
                collect(field.type, key)
            elif setting_rule(field).api:
                found[key] = field

    for name, cls in schema.items():
        collect(cls, name)
    return dict(sorted(found.items()))


def find_setting(key: str, schema: Mapping[str, type]) -> tuple[str, attrs.Attribute | None]:
    """The setting a dotted key names, or lies inside (a key of a table-valued setting),
    as ``(its dotted path, its field)``. When there is no such setting the field is
    ``None`` and the path is the key's first part that names nothing (or the table the
    key names)."""
    parts = key.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix in schema:
            return _find_field(schema[prefix], prefix, parts[end:])
        if not any(name.startswith(prefix + ".") for name in schema):
            return prefix, None
    return key, None


def _find_field(cls: type, path: str, rest: list[str]) -> tuple[str, attrs.Attribute | None]:
    if not rest:
        return path, None
    fields = attrs.fields_dict(attrs.resolve_types(cls))
    name = rest[0]
    key = f"{path}.{name}"
    field = fields.get(name)
    if field is None:
        return key, None
    if isinstance(field.type, type) and attrs.has(field.type) and len(rest) > 1:
        return _find_field(field.type, key, rest[1:])
    return key, field
