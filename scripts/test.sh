#!/usr/bin/env bash
# The one test command: install everything, start the real services on loopback, run the whole
# suite on SQLite and on PostgreSQL, stop the services. Extra arguments are passed to pytest.
# Needs Debian/Ubuntu with Python 3.11+, run as root (it may apt-get install redis-server and runs
# PostgreSQL as the `postgres` system user).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[all,dev]'

source scripts/services.sh
trap services_stop EXIT
services_start

status=0
echo "=== test suite on SQLite ==="
MIRIX_TEST_DB=sqlite .venv/bin/python -m pytest "$@" || status=$?
echo "=== test suite on PostgreSQL ==="
MIRIX_TEST_DB=postgres .venv/bin/python -m pytest "$@" || status=$?
exit $status
