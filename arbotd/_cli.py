"""The ``arbotd`` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from arbotd._audit import audited_command
from arbotd._config import Config, resolve_config_path
from arbotd._errors import ArbotError, ConfigError
from arbotd._interfaces import UserStore
from arbotd._logging import setup_logging
from arbotd._passwords import hash_password
from arbotd._plugins import PluginManager, make_plugin_manager
from arbotd._reloadguard import file_tables
from arbotd._runtime import Runtime, load_with_plugins, peek_disabled
from arbotd._secrets import clear_secrets, install_secrets, read_secrets
from arbotd._version import __version__

__all__ = ["main"]


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file (default: $ARBOTD_CONFIG, then /etc/arbotd/arbot.toml, "
        "then ./etc/arbot.toml)",
    )
    common.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=argparse.SUPPRESS,
        help="least severe messages to log (default: info)",
    )
    common.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=argparse.SUPPRESS,
        help="text for people and journald, json for log collectors (default: text)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="arbotd",
        description="Cross-exchange arbitrage trading daemon.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"arbotd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "run",
        parents=[common],
        help="run the daemon in the foreground (systemd starts it this way)",
        description="Run the daemon until SIGTERM or SIGINT; SIGHUP reloads the "
        "configuration.",
    )
    commands.add_parser(
        "check",
        parents=[common],
        help="validate the configuration and exit, like nginx -t",
        description="Validate the configuration with every enabled plugin. Exits 0 and "
        "prints 'configuration OK', or exits 1 and lists every problem.",
    )
    commands.add_parser(
        "plugins",
        parents=[common],
        help="list plugins, their versions, hooks and origin",
    )
    user = commands.add_parser(
        "user", parents=[common], help="manage the API's users (for JWT login)"
    )
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = user_commands.add_parser(
        "add",
        parents=[common],
        help="add a user; asks for the password on a terminal, else reads one line from "
        "standard input",
    )
    add.add_argument("name")
    add.add_argument(
        "--scope",
        choices=["read", "trading"],
        default="read",
        help="read: read-only endpoints; trading: may also start, stop and change "
        "settings (default: read)",
    )
    user_commands.add_parser(
        "list", parents=[common],
        help="list the users: scope, when added, and token generation (raised by passwd "
        "and revoke)")
    remove = user_commands.add_parser(
        "remove", parents=[common],
        help="remove a user; its tokens stop working at once, in the running daemon too")
    remove.add_argument("name")
    passwd = user_commands.add_parser(
        "passwd", parents=[common],
        help="set a new password (read like add's) and revoke the user's tokens")
    passwd.add_argument("name")
    revoke = user_commands.add_parser(
        "revoke", parents=[common],
        help="revoke every token issued to the user so far; the user stays and may log in "
        "again")
    revoke.add_argument("name")
    scope = user_commands.add_parser(
        "scope", parents=[common],
        help="change a user's scope; tokens issued with a higher scope stop working")
    scope.add_argument("name")
    scope.add_argument("scope", choices=["read", "trading"])
    inventory = commands.add_parser(
        "inventory",
        parents=[common],
        help="show how each asset is spread over the exchanges, and the rebalancing plan",
        description="Ask the running daemon (its [api] address, or --url) for the "
        "inventory: each traded asset on each exchange against its target share, the "
        "transfers that restore the targets with their estimated network fees, and the "
        "profit turned down for lack of balance. Credentials come from ARBOTD_API_KEY or "
        "ARBOTD_TOKEN when authentication is on.",
    )
    inventory.add_argument("--url", metavar="URL",
                           help="the API's base address (default: from [api] host and port)")
    inventory.add_argument("--json", action="store_true", help="print the answer as JSON")
    record = commands.add_parser(
        "record",
        parents=[common],
        help="record every quote of the configured feeds to a file, for backtests",
        description="Run the configured exchange feeds (no trading, no API, no storage) "
        "and write every quote to FILE (.csv.gz or .csv; .parquet or a directory for "
        "Parquet) until SIGINT/SIGTERM or --duration. The file is complete and readable "
        "whichever way it stops.",
    )
    record.add_argument("--out", metavar="FILE", required=True,
                        help="file (or, for Parquet part files, directory) to write")
    record.add_argument("--format", choices=["csv", "parquet"],
                        help="recording format (default: told by --out's name)")
    record.add_argument("--duration", metavar="SECONDS", type=float,
                        help="stop after this many seconds (default: until stopped)")
    backtest = commands.add_parser(
        "backtest",
        parents=[common],
        help="replay recorded quotes through the strategy, risk and paper fills",
        description="Replay recorded quote files in time order, in virtual time, "
        "through the configured strategies, risk checks and paper executor; print a "
        "summary and optionally write a report. Defaults come from [backtest].",
    )
    backtest.add_argument("--data", metavar="FILE", nargs="+", default=[],
                          help="recorded quote files (.csv.gz, .csv, .parquet, or directories "
                          "of .parquet files), merged by time")
    backtest.add_argument("--start", metavar="TIME",
                          help="first quote time, ISO 8601 UTC or epoch seconds")
    backtest.add_argument("--end", metavar="TIME",
                          help="replay quotes before this time, ISO 8601 UTC or epoch seconds")
    backtest.add_argument("--balance", metavar="AMOUNT", type=float,
                          help="starting quote-currency (USDT) balance on every exchange")
    backtest.add_argument("--report", metavar="DIR",
                          help="write trades.csv, signals.csv, metrics.json and equity.png")
    backtest.add_argument("--strict", action="store_true",
                          help="stop with an error at the first bad row instead of skipping it")
    backtest.add_argument("--stored", action="store_true",
                          help="replay the quotes the configured storage recorded "
                          "([storage] record_quotes) between --start and --end, not files")
    convert = commands.add_parser(
        "convert",
        parents=[common],
        help="convert a recording between CSV and Parquet",
        description="Copy the quotes of a recording (CSV, Parquet file or directory) to "
        "OUT in the format its name tells (.csv.gz/.csv, .parquet, or a directory), book "
        "levels kept. Bad rows are skipped and reported as a backtest does.",
    )
    convert.add_argument("source", metavar="IN", help="recording to read")
    convert.add_argument("destination", metavar="OUT", help="recording to write (new)")
    convert.add_argument("--format", choices=["csv", "parquet"],
                         help="format of OUT (default: told by its name)")
    convert.add_argument("--strict", action="store_true",
                         help="stop with an error at the first bad row instead of skipping it")
    export = commands.add_parser(
        "export",
        parents=[common],
        help="export the storage's recorded quotes to Parquet, a folder a day",
        description="Write the quotes the configured storage recorded ([storage] "
        "record_quotes) between --start and --end to DIR/date=YYYY-MM-DD/part-NNNNN.parquet "
        "(UTC days), readable by arbotd backtest --data DIR, pandas and polars.",
    )
    export.add_argument("--start", metavar="TIME", required=True,
                        help="first quote time, ISO 8601 UTC or epoch seconds")
    export.add_argument("--end", metavar="TIME", required=True,
                        help="quotes before this time, ISO 8601 UTC or epoch seconds")
    export.add_argument("--out", metavar="DIR", required=True,
                        help="directory to write (new or empty)")
    export.add_argument("--symbols", metavar="SYMBOL", nargs="+",
                        help="only these symbols (default: all)")
    export.add_argument("--exchanges", metavar="EXCHANGE", nargs="+",
                        help="only these exchanges (default: all)")
    sweep = commands.add_parser(
        "sweep",
        parents=[common],
        help="backtest many parameter sets on Dask and rank them",
        description="Backtest recorded quotes once per parameter set (a grid, or a "
        "random sample of it), each run the same replay as `arbotd backtest` with the "
        "configuration plus its overrides, as Dask tasks on a local cluster (one worker "
        "process per core) or an existing one; rank them by an objective, optionally "
        "choosing in sample and showing the out-of-sample result. Writes "
        "results.jsonl (as runs finish), results.csv, results.json and, for two keys, "
        "heatmap.png into --out.",
    )
    sweep.add_argument("--data", metavar="FILE", nargs="+", default=[],
                       help="recorded quote files, merged by time (default: [backtest] "
                       "data); every worker needs them at the same path")
    sweep.add_argument("--grid", metavar="KEY=VALUES", action="append", default=[],
                       help="a configuration key and its values: START:STOP:STEP (STOP "
                       "included) or V1,V2,...; repeat for more keys")
    sweep.add_argument("--params", metavar="FILE.toml",
                       help="a [grid] table of keys and their values (a list, or "
                       "{ start, stop, step })")
    sweep.add_argument("--random", metavar="N", type=int,
                       help="run N parameter sets drawn from the grid instead of all")
    sweep.add_argument("--seed", metavar="S", type=int, default=0,
                       help="seed of --random's draw (default 0)")
    sweep.add_argument("--objective", choices=["net_profit", "sharpe", "calmar"],
                       default="net_profit",
                       help="rank by net profit, Sharpe ratio, or return over max "
                       "drawdown (default: net_profit)")
    split = sweep.add_mutually_exclusive_group()
    split.add_argument("--walk-forward", metavar="FRACTION", type=float,
                       help="choose on the first FRACTION of the period (0.7), report the "
                       "rest out of sample")
    split.add_argument("--split", metavar="TIME",
                       help="choose on the quotes before TIME, report those after it")
    sweep.add_argument("--start", metavar="TIME",
                       help="first quote time, ISO 8601 UTC or epoch seconds")
    sweep.add_argument("--end", metavar="TIME",
                       help="replay quotes before this time, ISO 8601 UTC or epoch seconds")
    sweep.add_argument("--out", metavar="DIR", default="sweep",
                       help="results directory (default: ./sweep)")
    sweep.add_argument("--workers", metavar="N", type=int,
                       help="worker processes of the local cluster (default: one per core)")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on this existing Dask cluster instead of a local one")
    sweep.add_argument("--resume", action="store_true",
                       help="continue the sweep of --out: skip runs already in its "
                       "results.jsonl")
    sweep.add_argument("--reports", action="store_true",
                       help="also write each run's backtest report into DIR/runs/RUN_KEY/")
    sweep.add_argument("--strict", action="store_true",
                       help="a run stops with an error at the first bad row")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``arbotd backtest ... | head``): stop quietly, and keep
        # the interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    config_path = resolve_config_path(getattr(args, "config", None))
    if args.command == "user":
        return _user(config_path, args)
    if args.command == "inventory":
        return _inventory(config_path, args)
    if args.command in ("record", "backtest", "convert", "export", "sweep"):
        if not hasattr(args, "log_level"):
            # A backtest logs every signal and trade at info: thousands of lines that
            # would bury its summary. --log-level info brings them back.
            setup_logging("warning", getattr(args, "log_format", "text"))
        return _replay(config_path, args)
    handler = {"run": _run, "check": _check, "plugins": _plugins}[args.command]
    return handler(config_path)


def _inventory(config_path: Path, args: argparse.Namespace) -> int:
    import json

    from arbotd.client import ArbotApiError, ArbotClient
    from arbotd.inventory import format_report

    url = args.url or _api_url(config_path)
    try:
        with ArbotClient(url, api_key=os.environ.get("ARBOTD_API_KEY") or None,
                         token=os.environ.get("ARBOTD_TOKEN") or None) as client:
            report = client.get_inventory()
    except ArbotApiError as err:
        print(f"arbotd inventory: {url}: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def _api_url(config_path: Path) -> str:
    """The API's address from the configuration (the API plugin's [api] table), or the
    default one when the file cannot be read."""
    try:
        pm = make_plugin_manager(disabled=peek_disabled(config_path))
        api = load_with_plugins(config_path, pm).get("api")
    except (ConfigError, ArbotError):
        api = None
    if api is None:
        return "http://127.0.0.1:8080"
    host = api.host if api.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if getattr(api, "ssl_cert", "") else "http"
    return f"{scheme}://{host}:{api.port}"


def _run(config_path: Path) -> int:
    from arbotd._daemon import run_daemon

    return run_daemon(config_path)


def _check(config_path: Path) -> int:
    try:
        pm = make_plugin_manager(disabled=peek_disabled(config_path))
        config = load_with_plugins(config_path, pm)
        secrets = read_secrets(config.daemon.secrets_file)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        count = len(err.problems)
        print(
            f"{config_path}: configuration invalid ({count} problem{'s' * (count != 1)})",
            file=sys.stderr,
        )
        return 1
    except ArbotError as err:
        print(f"{config_path}: {err}", file=sys.stderr)
        return 1
    print(f"{config_path}: configuration OK")
    # Valid, but a table left out runs on its defaults (the API without authentication on
    # its default address, for one): worth a look when a file was cut short. A running
    # daemon refuses to reload a file that lost a table it has.
    written = set(file_tables(config.document))
    absent = sorted(name for name in config.schema if name not in written)
    if absent:
        print(f"{config_path}: note: not in the file, so their defaults apply: "
              + ", ".join(f"[{name}]" for name in absent), file=sys.stderr)
    # Keys are read from this process's environment (and the secrets file): a service's
    # EnvironmentFile is not, so say where they were looked for.
    where = "this environment" + (f" or {config.daemon.secrets_file}"
                                  if config.daemon.secrets_file else "")
    install_secrets(secrets)
    try:
        missing = _missing_credentials(config, pm)
    finally:
        clear_secrets()
    for venue, names in missing.items():
        print(f"{config_path}: note: exchanges.{venue}: {', '.join(names)} not set in "
              f"{where}: live trading on {venue} is refused until "
              f"{'they are' if len(names) > 1 else 'it is'} set", file=sys.stderr)
    return 0


def _missing_credentials(config: Config, pm: PluginManager) -> dict[str, list[str]]:
    """The environment variables each enabled real exchange's account lacks (its API key,
    secret, passphrase), by exchange name: what live trading would refuse for."""
    runtime = Runtime(config, pm)
    missing: dict[str, list[str]] = {}
    for accounts in pm.hook.register_accounts(config=config, runtime=runtime):
        for account in accounts or ():
            names = account.missing_credentials()
            if names:
                missing[account.name] = list(names)
    return dict(sorted(missing.items()))


def _plugins(config_path: Path) -> int:
    try:
        pm = make_plugin_manager(disabled=peek_disabled(config_path))
    except ArbotError as err:
        print(err, file=sys.stderr)
        return 1
    for info in pm.describe():
        state = "enabled" if info.enabled else "disabled"
        print(f"{info.name} {info.version or '-'} ({state})")
        print(f"    from:  {info.source}")
        if info.enabled:
            print(f"    hooks: {', '.join(info.hooks) or '-'}")
    return 0


BACKTEST_RUNNER = "backtest"
"""The ``runtime.plugin_state`` key under which a plugin (the builtin ``replay``) offers
``command_backtest(...)``, ``command_record(...)``, ``command_convert(...)``,
``command_export(...)`` and ``command_sweep(...)`` from its ``configure`` hook."""


def _load(config_path: Path) -> tuple[PluginManager, Config] | None:
    """The plugins and the validated configuration, with the secrets file's values in
    force, or ``None`` once every problem is printed."""
    try:
        pm = make_plugin_manager(disabled=peek_disabled(config_path))
        config = load_with_plugins(config_path, pm)
        install_secrets(read_secrets(config.daemon.secrets_file))
        return pm, config
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
    except ArbotError as err:
        print(f"{config_path}: {err}", file=sys.stderr)
    return None


def _replay(config_path: Path, args: argparse.Namespace) -> int:
    """``arbotd record``, ``backtest``, ``convert``, ``export`` and ``sweep``: done by the
    plugin that offers them."""
    loaded = _load(config_path)
    if loaded is None:
        return 1
    pm, config = loaded
    runtime = Runtime(config, pm)
    runtime.configure_plugins()
    runner = runtime.plugin_state.get(BACKTEST_RUNNER)
    if runner is None:
        print(f"arbotd {args.command}: no enabled plugin provides it (is the replay plugin "
              "installed and not in [plugins] disable?)", file=sys.stderr)
        return 1
    if args.command == "record":
        return runner.command_record(out=args.out, duration=args.duration,
                                     format=args.format, err=sys.stderr)
    if args.command == "convert":
        return runner.command_convert(source=args.source, destination=args.destination,
                                      format=args.format, strict=args.strict, err=sys.stderr)
    if args.command == "export":
        return runner.command_export(start=args.start, end=args.end, out=args.out,
                                     symbols=args.symbols, exchanges=args.exchanges,
                                     err=sys.stderr)
    if args.command == "sweep":
        return runner.command_sweep(
            data=args.data, grid=args.grid, params=args.params, random=args.random,
            seed=args.seed, objective=args.objective, walk_forward=args.walk_forward,
            split=args.split, start=args.start, end=args.end, out_dir=args.out,
            workers=args.workers, scheduler=args.scheduler, resume=args.resume,
            reports=args.reports, strict=args.strict, out=sys.stdout, err=sys.stderr)
    return runner.command_backtest(
        data=args.data, start=args.start, end=args.end, balance=args.balance,
        report=args.report, strict=args.strict, stored=args.stored, out=sys.stdout,
        err=sys.stderr,
    )


def _user(config_path: Path, args: argparse.Namespace) -> int:
    """``arbotd user ...``: straight to the storage's user table. A running daemon reads
    a user at most a fraction of a second before using it, so a removal, a new password,
    a revocation or a lower scope applies to its tokens at once, without a reload."""
    loaded = _load(config_path)
    if loaded is None:
        return 1
    pm, config = loaded
    storage = pm.hook.provide_storage(config=config, runtime=Runtime(config, pm))
    if not isinstance(storage, UserStore):
        print("no enabled storage plugin keeps API users", file=sys.stderr)
        return 1
    command, name = args.user_command, getattr(args, "name", None)
    actions: dict[str, Callable[[], Awaitable[Any]]] = {
        "list": storage.list_users,
        "remove": lambda: storage.remove_user(name),
        "revoke": lambda: storage.revoke_tokens(name),
        "scope": lambda: storage.set_scope(name, args.scope),
    }
    if command in ("add", "passwd"):
        password = _read_password()
        if password is None:
            return 1
        hashed = hash_password(password)
        actions["add"] = lambda: storage.add_user(name, hashed, args.scope)
        actions["passwd"] = lambda: storage.set_password(name, hashed)
    action = actions[command]
    if command != "list":
        # Every change of a user is recorded in the audit trail (never the password).
        details = {"username": name}
        if command in ("add", "scope"):
            details["scope"] = args.scope
        change = action

        def action() -> Awaitable[Any]:
            return audited_command(storage, f"user {command}", details, change)
    try:
        result = trio.run(_with_storage, storage, action)
    except ArbotError as err:
        print(f"arbotd user {command}: {err}", file=sys.stderr)
        return 1
    if command == "list":
        for user in result:
            created = dt.datetime.fromtimestamp(user["created_at"], dt.UTC)
            print(f"{user['username']}\t{user['scope']}\tcreated {created:%Y-%m-%d %H:%M} UTC"
                  f"\ttoken generation {user.get('token_generation', 0)}")
        return 0
    print({
        "add": f"user {name!r} added with {getattr(args, 'scope', '')} scope",
        "remove": f"user {name!r} removed; its tokens no longer work",
        "passwd": f"password of {name!r} changed; its earlier tokens no longer work "
                  f"(token generation {result})",
        "revoke": f"every token of {name!r} issued so far is revoked (token generation "
                  f"{result})",
        "scope": f"user {name!r} now has the {getattr(args, 'scope', '')} scope; tokens "
                 "with a higher scope no longer work",
    }[command])
    return 0


async def _with_storage(storage: Any, action: Callable[[], Awaitable[Any]]) -> Any:
    await storage.open()
    try:
        return await action()
    finally:
        await storage.close()


def _read_password() -> str | None:
    """On a terminal: asked twice without echo. Otherwise: the first line of standard
    input (``echo "$PW" | arbotd user add alice``, ``... | arbotd user passwd alice``)."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("password again: "):
            print("the passwords differ", file=sys.stderr)
            return None
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("a password needs at least 8 characters", file=sys.stderr)
        return None
    return password
