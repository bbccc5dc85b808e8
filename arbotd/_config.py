"""Reading and validating the TOML configuration.

The file is read with tomlkit (so it can be written back with its comments, see
``_configwrite``) and each table is structured by cattrs into the attrs class that owns
it. The core owns ``[daemon]`` and ``[plugins]``; every other table belongs to the plugin
that registered it through the ``register_config_sections`` hook.

Every problem is reported with the file, the dotted key path, what was expected and what
was found, and all problems of a file are collected before raising, so an operator fixes
them in one pass.
"""

from __future__ import annotations

import difflib
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import tomlkit
import tomlkit.exceptions
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from arbotd._errors import ConfigError, ConfigProblem
from arbotd._secrets import check_secrets_path, secret_from_env

__all__ = [
    "DEFAULT_CONFIG_PATHS",
    "Config",
    "DaemonConfig",
    "PluginsConfig",
    "ReloadRule",
    "SettingRule",
    "changed_sections",
    "config_converter",
    "load_config",
    "read_document",
    "resolve_config_path",
    "secret_from_env",
    "setting",
    "setting_rule",
    "structure_document",
    "toml_repr",
]

DEFAULT_CONFIG_PATHS = (Path("/etc/arbotd/arbot.toml"), Path("etc/arbot.toml"))

_META = "arbotd"


ReloadRule = Literal["apply", "restart"] | Callable[[Any, Any], str | None]
"""How a reload may change a setting: ``"apply"`` (in place), ``"restart"`` (a changed
value refuses the whole reload: only a restart applies it), or a function of the running
and the new value returning why that change is refused on reload, or ``None`` (for a
setting whose safe direction is one way: see ``arbotd.one_way``)."""


@attrs.frozen
class SettingRule:
    """What :func:`setting` declares about a field, kept in the field's metadata."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    check: Callable[[Any], str | None] | None = None
    expected: str | None = None
    api: bool = False
    reload: ReloadRule = "apply"


def setting(
    default: Any = attrs.NOTHING,
    *,
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    check: Callable[[Any], str | None] | None = None,
    expected: str | None = None,
    repr: bool = True,
    api: bool = False,
    reload: ReloadRule = "apply",
) -> Any:
    """An attrs field for a configuration class, with the bounds the value must respect.

    ``ge``/``gt``/``le``/``lt`` bound numbers; ``check`` is a function returning an error
    message (or ``None``) for anything the bounds cannot express; ``expected`` overrides
    the generated description of a valid value. ``repr=False`` keeps secrets out of logs.

    ``api=True`` puts the key on the allow-list of ``PUT /api/v1/trading/config``: trading
    parameters only (thresholds, sizes, limits, filters, symbols), never where the daemon
    connects, which secrets it reads, how the API binds or authenticates, or where data
    lives. An API-editable number needs both a lower and an upper bound.

    ``reload`` says what a reload (SIGHUP, or an API edit) may do with the key: see
    :data:`ReloadRule`. Endpoints, secret variable names and anything read only at start
    are ``"restart"``.
    """
    if api and reload != "apply":
        raise ValueError("a setting the API may change must apply on reload (reload='apply')")
    if api and _is_number(default) and (
        (ge is None and gt is None) or (le is None and lt is None)
    ):
        raise ValueError("a number the API may change needs a lower and an upper bound")
    if reload not in ("apply", "restart") and not callable(reload):
        raise ValueError(f"reload must be 'apply', 'restart' or a function, got {reload!r}")
    rule = SettingRule(ge=ge, gt=gt, le=le, lt=lt, check=check, expected=expected, api=api,
                       reload=reload)
    if factory is not None:
        return attrs.field(factory=factory, metadata={_META: rule}, repr=repr)
    return attrs.field(default=default, metadata={_META: rule}, repr=repr)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def setting_rule(field: attrs.Attribute) -> SettingRule:
    """What :func:`setting` declared about ``field`` (the defaults for a plain attrs
    field)."""
    return field.metadata.get(_META) or SettingRule()


# --- core sections ---------------------------------------------------------------------

Mode = Literal["simulation", "live", "backtest"]


@attrs.frozen
class DaemonConfig:
    """``[daemon]``: how the daemon itself runs."""

    mode: Mode = setting("simulation")
    autostart: bool = setting(True)
    # Where storage and recordings live: read at start only.
    state_dir: str = setting("", reload="restart")
    shutdown_timeout_seconds: float = setting(10.0, gt=0, le=600)
    # NAME=value lines read at start and at every reload, ahead of the environment
    # (arbotd._secrets): API keys and the JWT secret can change without a restart. The
    # path itself, like any secret's variable name, changes only at a restart.
    secrets_file: str = setting("", check=check_secrets_path, reload="restart")

    def resolved_state_dir(self) -> Path:
        """Where the daemon keeps its state: ``state_dir`` if set, else systemd's
        ``$STATE_DIRECTORY`` (``StateDirectory=arbotd``), else ``./var``."""
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        from_systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(from_systemd) if from_systemd else Path("var")


@attrs.frozen
class PluginsConfig:
    """``[plugins]``: which installed plugins to leave out."""

    # Which plugins load is decided at start.
    disable: list[str] = setting(factory=list, reload="restart")


CORE_SECTIONS: dict[str, type] = {"daemon": DaemonConfig, "plugins": PluginsConfig}


# --- the converter ---------------------------------------------------------------------


class _Mismatch(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value
        super().__init__(repr(value))


def _strict_float(value: Any, _: type) -> float:
    # TOML has inf and nan, and a JSON body can carry 1e400 (= inf): no setting means
    # either, and a bound such as "gt=0" would let inf through.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Mismatch(value)
    if not math.isfinite(value):
        raise _Mismatch(value)
    return float(value)


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Mismatch(value)
    return value


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise _Mismatch(value)
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise _Mismatch(value)
    return value


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is Literal


def _structure_literal(value: Any, tp: Any) -> Any:
    if isinstance(value, bool) or value not in typing.get_args(tp):
        raise _Mismatch(value)
    return value


def _origin_in(*origins: Any) -> Callable[[Any], bool]:
    return lambda tp: typing.get_origin(tp) in origins


def _strict_container(
    make_hook: Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]], kind: type
) -> Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]]:
    """cattrs builds a list from any iterable and a dict from anything with ``items``, so
    ``symbols = "BTCUSDT"`` would become ``["B", "T", ...]``: accept only the TOML
    array or table itself."""

    def factory(tp: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
        hook = make_hook(tp, converter)

        def structure(value: Any, cl: Any) -> Any:
            if not isinstance(value, kind):
                raise _Mismatch(value)
            return hook(value, cl)

        return structure

    return factory


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook_func(_is_literal, _structure_literal)
    converter.register_structure_hook_factory(
        _origin_in(list, MutableSequence), _strict_container(list_structure_factory, list)
    )
    converter.register_structure_hook_factory(
        _origin_in(tuple, Sequence),
        _strict_container(homogenous_tuple_structure_factory, list),
    )
    converter.register_structure_hook_factory(
        _origin_in(dict, Mapping, MutableMapping),
        _strict_container(mapping_structure_factory, dict),
    )
    return converter


config_converter = _make_converter()
"""The one cattrs converter for configuration: strict about types (no ``"5"`` for 5, no
``1`` for true), and forbidding unknown keys."""


# --- describing what is expected ---------------------------------------------------------


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(toml_repr(a) for a in args)
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        inner = _describe_type(args[0]) if args else "values"
        return f"a list of {_plural(inner)}"
    if origin in (dict, Mapping) or tp is dict:
        return f"a table of {_plural(_describe_type(args[1]))}" if args else "a table"
    if origin in (typing.Union, types.UnionType):
        parts = [_describe_type(a) for a in args if a is not type(None)]
        return " or ".join(parts)
    if attrs.has(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _plural(description: str) -> str:
    words = {
        "a number": "numbers",
        "an integer": "integers",
        "a string": "strings",
        "true or false": "true/false values",
        "a table": "tables",
    }
    return words.get(description, description)


def _describe_field(field: attrs.Attribute) -> str:
    rule: SettingRule | None = field.metadata.get(_META)
    if rule is not None and rule.expected:
        return rule.expected
    base = _describe_type(field.type)
    if rule is None:
        return base
    low = rule.ge if rule.ge is not None else rule.gt
    high = rule.le if rule.le is not None else rule.lt
    if low is not None and high is not None:
        left = "[" if rule.ge is not None else "("
        right = "]" if rule.le is not None else ")"
        return f"{base} in {left}{_fmt_number(low)}, {_fmt_number(high)}{right}"
    if low is not None:
        return f"{base} {'>=' if rule.ge is not None else '>'} {_fmt_number(low)}"
    if high is not None:
        return f"{base} {'<=' if rule.le is not None else '<'} {_fmt_number(high)}"
    return base


def toml_repr(value: Any) -> str:
    """Show a value the way it would be written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_repr(v)}" for k, v in value.items()) + "}"
    return str(value)


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# --- turning cattrs errors into problems --------------------------------------------------


def _problems_from_exception(
    exc: BaseException, path: str, tp: Any, field: attrs.Attribute | None
) -> list[tuple[str, str]]:
    """Walk a cattrs error tree and return ``(key path, message)`` pairs."""
    if isinstance(exc, ClassValidationError):
        fields = attrs.fields_dict(exc.cl) if attrs.has(exc.cl) else {}
        out: list[tuple[str, str]] = []
        for sub in exc.exceptions:
            name = _note_name(sub)
            if isinstance(sub, ForbiddenExtraKeysError):
                for key in sorted(sub.extra_fields):
                    out.append((_join(path, key), "unknown key" + _suggest(key, fields)))
            elif isinstance(sub, KeyError) and name is not None:
                out.append((_join(path, name), "missing required key"))
            elif name is not None and name in fields:
                sub_field = fields[name]
                out.extend(
                    _problems_from_exception(sub, _join(path, name), sub_field.type, sub_field)
                )
            else:
                out.append((path, f"invalid value: {sub}"))
        return out
    if isinstance(exc, IterableValidationError):
        out = []
        for sub in exc.exceptions:
            note = _iterable_note(sub)
            if note is None:
                out.extend(_problems_from_exception(sub, path, Any, None))
            else:
                out.extend(_problems_from_exception(sub, _join(path, note.index), note.type, None))
        return out
    if isinstance(exc, ExceptionGroup):
        out = []
        for sub in exc.exceptions:
            key = _note_index(sub)
            sub_path = _join(path, key) if key is not None else path
            value_type = (typing.get_args(tp) or (Any, Any))[-1]
            out.extend(_problems_from_exception(sub, sub_path, value_type, None))
        return out
    if isinstance(exc, _Mismatch):
        expected = _describe_field(field) if field is not None else _describe_type(tp)
        return [(path, f"expected {expected}, got {toml_repr(exc.value)}")]
    return [(path, f"invalid value: {exc}")]


def _note_name(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", ()):
        name = getattr(note, "name", None)
        if name is not None:
            return name
    return None


def _iterable_note(exc: BaseException) -> IterableValidationNote | None:
    """The note saying which element of a list or table failed, and its type."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, IterableValidationNote):
            return note
    return None


def _note_index(exc: BaseException) -> Any:
    for note in getattr(exc, "__notes__", ()):
        if hasattr(note, "index"):
            return note.index
    return None


def _out_of_bounds(rule: SettingRule, value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return (
        math.isnan(value)
        or (rule.ge is not None and value < rule.ge)
        or (rule.gt is not None and value <= rule.gt)
        or (rule.le is not None and value > rule.le)
        or (rule.lt is not None and value >= rule.lt)
    )


def _check_written_bounds(
    cls: type, path: str, written: Any, reported: set[str]
) -> list[tuple[str, str]]:
    """The bounds of the numbers written in a section that could not be structured (an
    unknown key, a wrong type elsewhere), so that they are reported in the same pass."""
    if not isinstance(written, Mapping) or not attrs.has(cls):
        return []
    out: list[tuple[str, str]] = []
    for field in attrs.fields(cls):
        key_path = _join(path, field.name)
        rule: SettingRule | None = field.metadata.get(_META)
        value = written.get(field.name)
        if rule is not None and key_path not in reported and _out_of_bounds(rule, value):
            out.append((key_path, f"expected {_describe_field(field)}, got {toml_repr(value)}"))
    return out


def _check_rules(obj: Any, path: str, written: Any) -> list[tuple[str, str]]:
    """Check the bounds declared with :func:`setting` on a structured section.

    ``written`` is the table as it was in the file, so that an error shows the value the
    operator wrote (``2``), not the one it was converted to (``2.0``).
    """
    written = written if isinstance(written, Mapping) else {}
    out: list[tuple[str, str]] = []
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        found = written.get(field.name, value)
        key_path = _join(path, field.name)
        rule: SettingRule | None = field.metadata.get(_META)
        if rule is not None and _out_of_bounds(rule, value):
            out.append((key_path, f"expected {_describe_field(field)}, got {toml_repr(found)}"))
        if rule is not None and rule.check is not None:
            message = rule.check(value)
            if message:
                out.append((key_path, message))
        if attrs.has(type(value)):
            out.extend(_check_rules(value, key_path, found))
        elif isinstance(value, dict) and isinstance(found, Mapping):
            for key, item in value.items():
                if attrs.has(type(item)):
                    out.extend(_check_rules(item, _join(key_path, key), found.get(key)))
    validate = getattr(obj, "validate_config", None)
    if callable(validate):
        for key, message in validate():
            out.append((_join(path, key), message))
    return out


# --- the Config object ---------------------------------------------------------------------


@attrs.frozen(eq=False)
class Config:
    """A validated configuration.

    ``sections`` maps each table path (``"daemon"``, ``"arbitrage"``,
    ``"exchanges.binance"``) to its structured attrs instance; a table missing from the file
    is present with its defaults. ``document`` is the parsed TOML, kept for writing back.
    """

    path: Path
    document: tomlkit.TOMLDocument = attrs.field(repr=False)
    sections: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.sections.get(name, default)

    def under(self, prefix: str) -> dict[str, Any]:
        """The sections below ``prefix``: ``under("exchanges")`` maps ``"binance"`` to the
        ``[exchanges.binance]`` section."""
        start = prefix + "."
        return {k[len(start) :]: v for k, v in self.sections.items() if k.startswith(start)}

    @property
    def daemon(self) -> DaemonConfig:
        return self.sections["daemon"]

    @property
    def schema(self) -> dict[str, type]:
        """The table path -> attrs class mapping this configuration was validated
        against (the sections of disabled plugins are not in it)."""
        return {name: type(section) for name, section in self.sections.items()}


def changed_sections(old: Config, new: Config) -> frozenset[str]:
    """The table paths whose values differ between two configurations."""
    names = set(old.sections) | set(new.sections)
    return frozenset(n for n in names if old.sections.get(n) != new.sections.get(n))


def resolve_config_path(cli_value: str | os.PathLike | None) -> Path:
    """Find the configuration file: ``-c/--config``, then ``$ARBOTD_CONFIG``, then
    ``/etc/arbotd/arbot.toml``, then ``./etc/arbot.toml``.

    An explicitly named file is returned even if it does not exist (so the error names
    it); otherwise the first existing default wins, and the last default is returned if
    none exists.
    """
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("ARBOTD_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return DEFAULT_CONFIG_PATHS[-1]


def read_document(path: Path) -> tomlkit.TOMLDocument:
    """Read and parse a TOML file, raising :class:`ConfigError` naming the file, line and
    column on any problem."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigProblem(name, "", f"cannot read file: {err}")]) from err
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as err:
        # tomlkit counts columns from 0; editors (and tomllib) count from 1.
        message = f"line {err.line} column {err.col + 1}: invalid TOML: {_parse_reason(err)}"
        raise ConfigError([ConfigProblem(name, "", message)]) from err
    except tomlkit.exceptions.TOMLKitError as err:  # e.g. a key written twice
        raise ConfigError([ConfigProblem(name, "", f"invalid TOML: {err}")]) from err


def _parse_reason(err: tomlkit.exceptions.ParseError) -> str:
    text = str(err)
    cut = text.rfind(" at line ")
    return text[:cut] if cut > 0 else text


def structure_document(
    document: Mapping[str, Any],
    schema: Mapping[str, type],
    *,
    file: str,
    ignored: Iterable[str] = (),
) -> dict[str, Any]:
    """Structure every table of ``document`` with the class ``schema`` names for it.

    Tables absent from the document get the class's defaults. Tables in ``ignored`` (the
    sections of disabled plugins) are accepted without being read. Raises
    :class:`ConfigError` listing every problem.
    """
    plain = document.unwrap() if hasattr(document, "unwrap") else dict(document)
    ignored = set(ignored)
    claimed = (*schema, *ignored)
    problems: list[tuple[str, str]] = []
    found: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], path: str) -> None:
        prefix = path + "." if path else ""
        children = {n[len(prefix) :].split(".")[0] for n in claimed if n.startswith(prefix)}
        for key, value in table.items():
            key_path = prefix + key
            if key_path in ignored:
                continue
            is_parent = any(n.startswith(key_path + ".") for n in claimed)
            if key_path not in schema and not is_parent:
                what = "unknown section" if isinstance(value, dict) else "unknown key"
                problems.append((key_path, what + _suggest(key, children)))
            elif not isinstance(value, dict):
                problems.append((key_path, f"expected a table, got {toml_repr(value)}"))
            elif key_path in schema:
                found[key_path] = value
            else:
                walk(value, key_path)

    walk(plain, "")

    sections: dict[str, Any] = {}
    for name, cls in schema.items():
        try:
            obj = config_converter.structure(found.get(name, {}), cls)
        except Exception as err:  # cattrs reports everything it found in one group
            section_problems = _problems_from_exception(err, name, cls, None)
            reported = {key_path for key_path, _ in section_problems}
            problems.extend(section_problems)
            problems.extend(_check_written_bounds(cls, name, found.get(name), reported))
            continue
        rule_problems = _check_rules(obj, name, found.get(name))
        if rule_problems:
            problems.extend(rule_problems)
            continue
        sections[name] = obj

    if problems:
        raise ConfigError([ConfigProblem(file, p, m) for p, m in problems])
    return sections


def load_config(
    path: Path, schema: Mapping[str, type], *, ignored: Iterable[str] = ()
) -> Config:
    """Read, parse and validate a configuration file against ``schema``.

    A file without a single setting is refused: it is what an editor or a disk that
    failed mid-write leaves, and running on nothing but defaults could open what the
    lost file closed."""
    document = read_document(path)
    if not document:
        what = "has only comments" if document.as_string().strip() else "is empty"
        raise ConfigError([ConfigProblem(str(path), "", f"the file {what}: not a single "
                                         "setting (was it cut short?)")])
    sections = structure_document(document, schema, file=str(path), ignored=ignored)
    return Config(path=path, document=document, sections=sections)
