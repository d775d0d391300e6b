#!/usr/bin/env bash
# Set up (or reuse) the environment, lint the tree (ruff, pyproject.toml), then run the test
# suite. Extra arguments go to pytest,
# e.g. `./scripts/test.sh -k nocoap` or `./scripts/test.sh tests/test_nocoap.py`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh"
cd "$root"
# OpenMP threads sleep instead of spin-waiting: with 2 cores shared with data-loader workers,
# spinning made small ops up to 30x slower (must be set before Python starts).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
venv=${DEEPIR_VENV:-$root/.venv}
"$venv/bin/ruff" check --quiet . || { echo "ruff: lint errors above (ruff check --fix fixes some)" >&2; exit 1; }
exec "$venv/bin/python" -m pytest -q -ra "${@:-tests}"
