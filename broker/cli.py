"""The ``fastlog`` command: one click group whose subcommands live in their own modules.

Each subcommand is loaded lazily from the module named in COMMANDS, so one slow or
broken import never costs the others, and each module has a single owner.

Usage errors anywhere under it (unknown option or command, missing argument, bad value),
whether of ``fastlog`` itself or of a subcommand that does not report them on its own,
are one line on stderr with a pointer to the right ``--help``, exit status 2; click's own
report is a usage block, a hint and the error.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import Any

import click

# name -> "module:attribute" of a click.Command or click.Group
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": (
        "broker.server_cli:broker_command",
        "Run a broker (embedded single-node by default).",
    ),
    "topics": ("broker.tools.topics:topics", "Create, list, describe, alter and delete topics."),
    "produce": ("broker.tools.console:produce", "Produce records from stdin or a file."),
    "consume": ("broker.tools.console:consume", "Consume records and print them."),
    "groups": ("broker.tools.groups:groups", "List, describe, reset and delete consumer groups."),
    "perf": ("broker.tools.perf:perf", "Producer and consumer performance tests."),
    "log": ("broker.tools.logdump:log", "Inspect segment files (dump, verify)."),
    "bench": ("broker.tools.bench:bench", "End-to-end benchmark against a peer broker."),
    "partitions": (
        "broker.tools.partitions:partitions",
        "Partition reassignment and leader election.",
    ),
    "log-dirs": ("broker.tools.log_dirs:log_dirs", "Describe brokers' log directories."),
}


class UsageLine(click.ClickException):
    """A usage error printed as one line: ``Error: <what> (see 'fastlog ... --help')``."""

    exit_code = 2

    def __init__(self, exc: click.UsageError, ctx: click.Context | None = None) -> None:
        where = exc.ctx or ctx
        path = where.command_path if where is not None else "fastlog"
        super().__init__(f"{exc.format_message().rstrip('.')} (see '{path} --help')")


class LazyGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare ``fastlog`` shows the help
        except click.UsageError as exc:
            raise UsageLine(exc, ctx) from None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = click.utils.make_str(args[0]) if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            # click names no candidate; a typo of a command name is the usual cause
            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f". Did you mean '{close[0]}'?" if close else ""
            raise UsageLine(click.UsageError(f"No such command '{name}'{hint}", ctx), ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        # A subcommand's usage errors surface here (its context is made inside invoke);
        # the ones it already reports as one line are ClickExceptions, not UsageErrors.
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise UsageLine(exc, ctx) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        spec = COMMANDS.get(name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # not built yet
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fastlog")
def cli() -> None:
    """fastlog: a Kafka-compatible event log with a Cython core."""


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="fastlog")
