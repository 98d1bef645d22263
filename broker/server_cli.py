"""``fastlog broker``: command-line options of the broker process.

Precedence, lowest first: built-in defaults, ``--config FILE`` (server.properties syntax),
``--override key=value`` (repeatable), then the shortcuts ``--data-dir``, ``--host``,
``--port``, ``--node-id`` and ``--zookeeper`` when given. Without any of them the broker listens on 127.0.0.1:9092 with its
data in ./data.
"""

from __future__ import annotations

import logging
import sys

import click

from broker.config import BrokerConfig, ConfigError, parse_listener, parse_override

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
DEFAULT_DATA_DIR = "./data"


def build_config(
    config_file: str | None,
    overrides: tuple[str, ...],
    data_dir: str | None,
    host: str | None,
    port: int | None,
    node_id: int | None = None,
    zookeeper: str | None = None,
) -> BrokerConfig:
    pairs = [parse_override(o) for o in overrides]
    base = BrokerConfig.load(config_file, pairs)
    extra: dict[str, str] = {}
    if node_id is not None:
        extra["node.id"] = str(node_id)
    if zookeeper is not None:
        extra["zookeeper.connect"] = zookeeper
    if data_dir is not None:
        extra["log.dirs"] = data_dir
    elif not (base.is_set("log.dirs") or base.is_set("log.dir")):
        extra["log.dirs"] = DEFAULT_DATA_DIR
    if host is not None or port is not None or not base.is_set("listeners"):
        current = base.listener if base.is_set("listeners") else None
        h = host if host is not None else (current.host if current else DEFAULT_HOST)
        p = port if port is not None else (current.port if current else DEFAULT_PORT)
        hh = f"[{h}]" if ":" in h else h
        extra["listeners"] = f"PLAINTEXT://{hh}:{p}"
        parse_listener(extra["listeners"])
    return base.with_overrides(**extra) if extra else base


@click.command("broker", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="server.properties file."
)
@click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a config key (repeatable); wins over --config.",
)
@click.option(
    "--data-dir", default=None, help=f"Data directory (log.dirs). Default {DEFAULT_DATA_DIR}."
)
@click.option("--host", default=None, help=f"Listener host. Default {DEFAULT_HOST}.")
@click.option("--port", type=int, default=None, help=f"Listener port. Default {DEFAULT_PORT}.")
@click.option("--node-id", type=int, default=None, help="This broker's id (node.id).")
@click.option(
    "--zookeeper",
    default=None,
    metavar="HOST:PORT[/chroot]",
    help="Join a cluster whose metadata lives in ZooKeeper (zookeeper.connect).",
)
@click.option(
    "--log-level",
    default="INFO",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Logging level of the broker's messages (stderr).",
)
def broker_command(
    config_file: str | None,
    overrides: tuple[str, ...],
    data_dir: str | None,
    host: str | None,
    port: int | None,
    node_id: int | None,
    zookeeper: str | None,
    log_level: str,
) -> None:
    """Run a Kafka-compatible broker (embedded single-node metadata by default)."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = build_config(config_file, overrides, data_dir, host, port, node_id, zookeeper)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from broker.metadata import MetadataError
    from broker.server import BrokerError, run

    try:
        run(config)
    except (BrokerError, MetadataError, ConfigError, OSError) as exc:
        # Startup problems an operator fixes (port in use, locked or corrupt data dir, bad
        # topic config on disk) get one line, not a traceback.
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
