#!/usr/bin/env bash
# Set up (or reuse) the environment, then run the main job (tools/main.py) on its embedded
# default: the classical Top-Hat baseline on SIRST-V2 test_full, evaluated with mNoCoAP, with a
# printed table and a few pictures under output/main/. Extra arguments go to tools/main.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh"
cd "$root"
exec "${DEEPIR_VENV:-$root/.venv}/bin/python" tools/main.py "$@"
