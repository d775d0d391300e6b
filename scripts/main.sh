#!/usr/bin/env bash
# Set up (or reuse) the environment, then run the main job (tools/main.py) on its embedded
# default: OSCAR's CPU recipe (trained weights, or a short training) beside Top-Hat, Max-Median and MPCM on SIRST-V2
# test_full, one mNoCoAP table, a precision-recall plot and pictures under output/main/.
# Extra arguments go to tools/main.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh"
cd "$root"
# OpenMP threads sleep instead of spin-waiting: with 2 cores shared with data-loader workers,
# spinning made small ops up to 30x slower (must be set before Python starts).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec "${DEEPIR_VENV:-$root/.venv}/bin/python" tools/main.py "$@"
