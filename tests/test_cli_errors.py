"""Usage errors of the ``fastlog`` command: one line on stderr naming the right ``--help``,
exit status 2, for ``fastlog`` itself and for every subcommand (no usage block, no
traceback). Offline: nothing here needs a broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import COMMANDS, cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="fastlog")
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_usage_error(args: tuple[str, ...], *, contains: str, help_of: str) -> None:
    code, out, err = run(*args)
    assert code == 2, (args, code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, (args, err)
    assert "Usage:" not in err and "Traceback" not in err
    assert contains in lines[0], (args, lines[0])
    assert lines[0].endswith(f"(see '{help_of} --help')"), (args, lines[0])


TOP_LEVEL = {
    "unknown-option": (("--bogus",), "No such option '--bogus'"),
    "unknown-short-option": (("-z",), "No such option '-z'"),
    "unknown-option-before-command": (("--bogus", "topics", "list"), "No such option '--bogus'"),
    "unknown-command": (("bogus",), "No such command 'bogus'"),
    "typo-of-a-command": (("topic",), "No such command 'topic'. Did you mean 'topics'?"),
    "option-value-on-a-flag": (("--version=3",), "--version"),
}


@pytest.mark.parametrize("args, contains", TOP_LEVEL.values(), ids=TOP_LEVEL.keys())
def test_top_level_usage_errors_are_one_line(args: tuple[str, ...], contains: str) -> None:
    assert_one_line_usage_error(args, contains=contains, help_of="fastlog")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_reports_an_unknown_option_in_one_line(name: str) -> None:
    code, _, err = run(name, "--bogus-option")
    assert code == 2, (name, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, (name, err)
    assert "No such option '--bogus-option'" in lines[0], lines[0]
    # each subcommand points at its own help
    assert f"'fastlog {name} --help'" in lines[0], lines[0]


SUBCOMMANDS = {
    # modules whose usage errors fastlog's group turns into one line
    "broker-bad-value": (("broker", "--port", "x"), "'x' is not a valid integer", "fastlog broker"),
    "bench-unknown-option": (("bench", "--nope"), "No such option '--nope'", "fastlog bench"),
    # modules reporting them themselves keep doing so
    "log-unknown-command": (("log", "bogus"), "No such command 'bogus'", "fastlog log"),
    "consume-missing-topic": (("consume",), "Missing argument 'TOPIC'", "fastlog consume"),
    "perf-unknown-command": (("perf", "bogus"), "No such command 'bogus'", "fastlog perf"),
}


@pytest.mark.parametrize("args, contains, help_of", SUBCOMMANDS.values(), ids=SUBCOMMANDS.keys())
def test_subcommand_usage_errors_are_one_line(
    args: tuple[str, ...], contains: str, help_of: str
) -> None:
    assert_one_line_usage_error(args, contains=contains, help_of=help_of)


def test_help_and_version_still_work() -> None:
    code, out, err = run("--help")
    assert code == 0 and "Commands:" in out and err == ""
    code, out, _ = run("-h")
    assert code == 0 and "Commands:" in out
    code, out, _ = run("--version")
    assert code == 0 and "version" in out
    code, out, _ = run("topics", "--help")
    assert code == 0 and "Usage: fastlog topics" in out
    # a bare group shows its help, as before (click exits 2 for it)
    code, out, err = run()
    assert "Commands:" in out + err


def test_the_installed_command_prints_one_line() -> None:
    """The console script itself, as a user runs it."""
    script = Path(sys.executable).parent / "fastlog"
    assert script.exists(), script
    out = subprocess.run(
        [str(script), "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == "Error: No such option '--bogus' (see 'fastlog --help')\n"
