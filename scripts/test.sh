#!/usr/bin/env bash
# Set up (or reuse) the environment, then run the test suite. Extra arguments go to pytest,
# e.g. `./scripts/test.sh -k nocoap` or `./scripts/test.sh tests/test_nocoap.py`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh"
cd "$root"
exec "${DEEPIR_VENV:-$root/.venv}/bin/python" -m pytest -q -ra "${@:-tests}"
