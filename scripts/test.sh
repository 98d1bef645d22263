#!/usr/bin/env bash
# Install everything the tests need (pip, apt, npm) and run the whole suite.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
[ -x /usr/share/zookeeper/bin/zkServer.sh ] || need_apt+=(zookeeper)
command -v ip >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q "${need_apt[@]}"
fi

python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'

if [ -f tests/js/package.json ]; then
    (cd tests/js && npm install --no-audit --no-fund --loglevel=error)
fi

python -m ruff check src broker tests benchmarks
python -m pytest "$@"
