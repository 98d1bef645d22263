#!/usr/bin/env bash
# The single test command: install everything the tests need (apt, pip, npm), lint, run pytest.
# Works on a fresh Debian machine as root and is idempotent: each install step is skipped when
# what it installs is already there and its inputs (pyproject.toml, package-lock.json) unchanged.
# Usage: bash scripts/test.sh [pytest args]      e.g. bash scripts/test.sh tests/clients -x -q
# Env: PYTHON (default: python, else python3), FASTLOG_TEST_FORCE_INSTALL=1 reinstalls everything.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
PYTHON=${PYTHON:-$(command -v python || command -v python3 || true)}
force=${FASTLOG_TEST_FORCE_INSTALL:-0}

# --- apt: kcat (Debian's, librdkafka 2.0.x), zookeeper, node for kafkajs, a C compiler ---
need_apt=()
[ -n "$PYTHON" ] || need_apt+=(python3 python3-venv)
command -v kcat >/dev/null || need_apt+=(kcat)
[ -x /usr/share/zookeeper/bin/zkServer.sh ] || need_apt+=(zookeeper)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v cc >/dev/null || need_apt+=(build-essential)
if [ -n "$PYTHON" ] && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then need_apt+=(python3-pip); fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test.sh: apt-get install ${need_apt[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
PYTHON=${PYTHON:-$(command -v python3)}
# A Debian-packaged interpreter needs its headers to build the Cython core.
if ! "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    apt-get update -q && apt-get install -y -q --no-install-recommends python3-dev
fi

# --- pip: the project (editable) with its test extra ---
# Debian's own python3 refuses pip installs into the system (PEP 668); this is a test machine.
if "$PYTHON" -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))'; then
    export PIP_BREAK_SYSTEM_PACKAGES=1
fi
stamp_dir=build/test-stamps
mkdir -p "$stamp_dir"
pip_key="$("$PYTHON" -c 'import sys; print(sys.executable)') $(sha256sum pyproject.toml setup.py | sha256sum | cut -c1-16)"
if [ "$force" = 1 ] || [ "$(cat "$stamp_dir/pip" 2>/dev/null)" != "$pip_key" ] \
    || ! "$PYTHON" -c 'import fastlog, broker, pytest, kafka, aiokafka, confluent_kafka, snappy, lz4, zstandard' 2>/dev/null; then
    # Best effort: Debian's own pip cannot be upgraded in place (no RECORD file); it is new
    # enough for editable installs as it is.
    "$PYTHON" -m pip install -q --upgrade pip || true
    "$PYTHON" -m pip install -q -e '.[test]'
    echo "$pip_key" >"$stamp_dir/pip"
fi

# --- npm: kafkajs pinned in tests/js/package-lock.json ---
if [ -f tests/js/package.json ]; then
    npm_key=$(sha256sum tests/js/package-lock.json | cut -c1-16)
    if [ "$force" = 1 ] || [ "$(cat "$stamp_dir/npm" 2>/dev/null)" != "$npm_key" ] \
        || [ ! -f tests/js/node_modules/kafkajs/package.json ]; then
        (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
        echo "$npm_key" >"$stamp_dir/npm"
    fi
fi

lint_paths=()
for p in src broker tests benchmarks; do [ -e "$p" ] && lint_paths+=("$p"); done
"$PYTHON" -m ruff check "${lint_paths[@]}"
exec "$PYTHON" -m pytest "$@"
