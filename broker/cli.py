"""The ``fastlog`` command: one click group whose subcommands live in their own modules.

Each subcommand is loaded lazily from the module named in COMMANDS, so one slow or
broken import never costs the others, and each module has a single owner.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click.Command or click.Group
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": ("broker.server_cli:broker_command", "Run a broker (embedded single-node by default)."),
    "topics": ("broker.tools.topics:topics", "Create, list, describe, alter and delete topics."),
    "produce": ("broker.tools.console:produce", "Produce records from stdin or a file."),
    "consume": ("broker.tools.console:consume", "Consume records and print them."),
    "groups": ("broker.tools.groups:groups", "List, describe, reset and delete consumer groups."),
    "perf": ("broker.tools.perf:perf", "Producer and consumer performance tests."),
    "log": ("broker.tools.logdump:log", "Inspect segment files (dump, verify)."),
    "bench": ("broker.tools.bench:bench", "End-to-end benchmark against a peer broker."),
    "partitions": ("broker.tools.partitions:partitions", "Partition reassignment and leader election."),
    "log-dirs": ("broker.tools.log_dirs:log_dirs", "Describe brokers' log directories."),
}


class LazyGroup(click.Group):
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
