"""What a parameter sweep runs: the keys it varies and their values, read from
``--grid`` options or a TOML file, checked against the configuration's own settings, and
the parameter sets that follow (every combination, or a seeded random sample of them).

A key is a dotted configuration key (``arbitrage.min_profit_threshold``); its values are
typed by the setting it names (a float setting takes ``10`` as ``10.0``, an int setting
refuses ``1.5``). Ranges ``START:STOP:STEP`` include STOP when a whole number of steps
reaches it, and are computed in decimal, so ``0.001:0.006:0.001`` is exactly the six
values ``0.001 ... 0.006``, not ``0.0060000000000000005``.
"""

from __future__ import annotations

import difflib
import itertools
import random
import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs
import tomlkit
import tomlkit.exceptions

from arbotd import find_setting

__all__ = [
    "Axis",
    "SweepSpecError",
    "merge_axes",
    "parameter_sets",
    "parse_axis",
    "read_params_file",
]

MAX_RANGE_VALUES = 10_000
"""A range longer than this is surely a typo in its step."""


class SweepSpecError(ValueError):
    """A ``--grid`` option or a parameters file that cannot be used; the message names
    the key and what was wrong."""


@attrs.frozen
class Axis:
    """One key of the sweep and the values it takes, in order."""

    key: str
    values: tuple[Any, ...]


def _setting_type(key: str, schema: Mapping[str, type]) -> Any:
    path, field = find_setting(key, schema)
    if field is None or path != key:
        known = sorted(_all_keys(schema))
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        what = "is a table, not a setting" if key in schema else "unknown configuration key"
        raise SweepSpecError(f"{key}: {what}{hint}")
    if isinstance(field.type, type) and attrs.has(field.type):
        raise SweepSpecError(f"{key}: is a table, not a setting")
    return field.type


def _all_keys(schema: Mapping[str, type]) -> list[str]:
    keys: list[str] = []

    def collect(cls: type, path: str) -> None:
        for field in attrs.fields(attrs.resolve_types(cls)):
            if isinstance(field.type, type) and attrs.has(field.type):
                collect(field.type, f"{path}.{field.name}")
            else:
                keys.append(f"{path}.{field.name}")

    for name, cls in schema.items():
        collect(cls, name)
    return keys


def _kind(tp: Any) -> str:
    """``float``, ``int``, ``bool``, ``str`` (literals included) or ``other``."""
    if tp in (float, int, bool, str):
        return tp.__name__
    if typing.get_origin(tp) is typing.Literal:
        return "str" if all(isinstance(v, str) for v in typing.get_args(tp)) else "other"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        kinds = {_kind(arg) for arg in typing.get_args(tp) if arg is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "other"
    return "other"


def _from_text(key: str, kind: str, text: str) -> Any:
    text = text.strip()
    try:
        if kind == "float":
            return float(Decimal(text))
        if kind == "int":
            return int(text)
        if kind == "bool":
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise ValueError
        if kind == "str":
            return text
        return tomlkit.parse(f"value = {text}")["value"].unwrap()
    except (ValueError, InvalidOperation, tomlkit.exceptions.TOMLKitError):
        expected = {"float": "a number", "int": "a whole number", "bool": "true or false",
                    "other": "a TOML value"}[kind]
        raise SweepSpecError(f"{key}: expected {expected}, got {text!r}") from None


def _typed(key: str, kind: str, value: Any) -> Any:
    """A value from a TOML file, as the setting takes it."""
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and kind in ("float", "int", "bool"):
        return _from_text(key, kind, value)
    return value


def _range(key: str, kind: str, start: Any, stop: Any, step: Any) -> tuple[Any, ...]:
    if kind not in ("float", "int"):
        raise SweepSpecError(f"{key}: a range START:STOP:STEP needs a number setting")
    try:
        first, last, by = (Decimal(str(v).strip()) for v in (start, stop, step))
    except InvalidOperation:
        raise SweepSpecError(f"{key}: expected numbers START:STOP:STEP, got "
                             f"{start}:{stop}:{step}") from None
    if by <= 0:
        raise SweepSpecError(f"{key}: the step must be positive, got {step}")
    if last < first:
        raise SweepSpecError(f"{key}: STOP {stop} is below START {start}")
    count = int((last - first) / by) + 1
    if count > MAX_RANGE_VALUES:
        raise SweepSpecError(f"{key}: {count:,} values from {start}:{stop}:{step}; at most "
                             f"{MAX_RANGE_VALUES:,} (is the step right?)")
    values = [first + by * i for i in range(count)]
    if kind == "int":
        if any(v != v.to_integral_value() for v in values):
            raise SweepSpecError(f"{key}: a whole-number setting needs a whole-number range, "
                                 f"got {start}:{stop}:{step}")
        return tuple(int(v) for v in values)
    return tuple(float(v) for v in values)


def parse_axis(option: str, schema: Mapping[str, type]) -> Axis:
    """``KEY=START:STOP:STEP`` or ``KEY=V1,V2,...`` (one value alone is allowed) as an
    :class:`Axis`. Raises :class:`SweepSpecError`."""
    key, sep, spec = option.partition("=")
    key = key.strip()
    if not sep or not key or not spec.strip():
        raise SweepSpecError(f"--grid {option!r}: expected KEY=START:STOP:STEP or "
                             "KEY=V1,V2,...")
    kind = _kind(_setting_type(key, schema))
    parts = spec.split(":")
    if len(parts) == 3 and kind in ("float", "int"):
        return Axis(key, _range(key, kind, *parts))
    values = tuple(_from_text(key, kind, text) for text in spec.split(","))
    return _checked(Axis(key, values))


def _checked(axis: Axis) -> Axis:
    if not axis.values:
        raise SweepSpecError(f"{axis.key}: no values")
    seen: list[Any] = []
    for value in axis.values:
        if value in seen:
            raise SweepSpecError(f"{axis.key}: the value {value!r} is given twice")
        seen.append(value)
    return axis


def read_params_file(path: Path, schema: Mapping[str, type]) -> list[Axis]:
    """The axes of a parameters file: a ``[grid]`` table whose keys are configuration
    keys (TOML's dotted keys nest, so ``arbitrage.cooldown_seconds = [10, 30, 60]`` is
    the key ``arbitrage.cooldown_seconds``), each a list of values, a range table
    ``{ start = 0.001, stop = 0.006, step = 0.001 }``, or a ``"START:STOP:STEP"`` text.
    Raises :class:`SweepSpecError` naming the file and key."""
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8")).unwrap()
    except OSError as err:
        raise SweepSpecError(f"{path}: cannot read the parameters file: {err}") from None
    except tomlkit.exceptions.TOMLKitError as err:
        raise SweepSpecError(f"{path}: invalid TOML: {err}") from None
    unknown = sorted(set(document) - {"grid"})
    if unknown or not isinstance(document.get("grid"), dict) or not document["grid"]:
        raise SweepSpecError(f"{path}: expected a [grid] table of configuration keys"
                             + (f", not {', '.join(unknown)}" if unknown else ""))
    axes: list[Axis] = []
    try:
        _collect(document["grid"], "", schema, axes)
    except SweepSpecError as err:
        raise SweepSpecError(f"{path}: [grid] {err}") from None
    return axes


def _collect(table: dict[str, Any], prefix: str, schema: Mapping[str, type],
             axes: list[Axis]) -> None:
    for name, value in table.items():
        key = prefix + name
        if isinstance(value, dict) and set(value) != {"start", "stop", "step"}:
            _collect(value, key + ".", schema, axes)
            continue
        kind = _kind(_setting_type(key, schema))
        if isinstance(value, dict):
            axes.append(Axis(key, _range(key, kind, value["start"], value["stop"],
                                         value["step"])))
        elif isinstance(value, str) and value.count(":") == 2 and kind in ("float", "int"):
            axes.append(Axis(key, _range(key, kind, *value.split(":"))))
        elif isinstance(value, list):
            axes.append(_checked(Axis(key, tuple(_typed(key, kind, v) for v in value))))
        else:
            raise SweepSpecError(f"{key}: expected a list of values, a range table "
                                 "{ start, stop, step } or \"START:STOP:STEP\", got "
                                 f"{value!r}")


def merge_axes(*groups: Sequence[Axis]) -> list[Axis]:
    """The axes of every group, a key given again replacing the earlier one (``--grid``
    after ``--params``) in its place."""
    merged: dict[str, Axis] = {}
    for group in groups:
        for axis in group:
            merged[axis.key] = axis
    return list(merged.values())


def parameter_sets(axes: Sequence[Axis], *, sample: int | None = None,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the first key varying slowest), or, with
    ``sample``, that many distinct combinations drawn with ``seed`` (all of them when
    there are no more), in grid order."""
    combos = [dict(zip([a.key for a in axes], values, strict=True))
              for values in itertools.product(*(a.values for a in axes))]
    if sample is None or sample >= len(combos):
        return combos
    chosen = sorted(random.Random(seed).sample(range(len(combos)), sample))
    return [combos[i] for i in chosen]
