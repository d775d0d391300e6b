#!/usr/bin/env bash
# Create or reuse the virtual environment and install everything DeepInfrared-D2 needs:
# torch + torchvision, a pure-Python Detectron2 wheel built from pb1-detectron2==0.6 with
# compatibility patches (third_party/detectron2/build_wheel.py), the requirements and this
# project (editable). A second run finds its stamp unchanged and returns in well under a second.
#
# Environment: DEEPIR_VENV (default: <repo>/.venv), PYTHON (default: python3),
#              DETECTRON2_DATASETS (default: <repo>/datasets).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DEEPIR_VENV:-$root/.venv}
py=${PYTHON:-python3}
cd "$root"

# Datasets: link the workplace copy of SIRST-V2 when no dataset is in place yet.
datasets=${DETECTRON2_DATASETS:-$root/datasets}
if [ ! -e "$datasets/sirst_v2" ]; then
  for cand in "$root/../shared/data/sirst-v2"; do
    if [ -d "$cand/mixed" ]; then
      mkdir -p "$datasets" && ln -s "$(cd "$cand" && pwd)" "$datasets/sirst_v2"
      echo "[bootstrap] linked $datasets/sirst_v2 -> $cand"
    fi
  done
fi

stamp="$venv/.deepinfrared-stamp"
want=$(cat scripts/bootstrap.sh requirements.txt setup.py third_party/detectron2/build_wheel.py | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "[bootstrap] setting up $venv (first run: about 2 minutes, ~5 GB)"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
# pip, minus the noise of index folders this machine's pip config names but does not have.
pip() {
  "$venv/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}
pip install --upgrade pip setuptools wheel
"$venv/bin/python" third_party/detectron2/build_wheel.py --out .cache/wheels --cache .cache/sdist
d2whl=.cache/wheels/detectron2-0.6+pure-py3-none-any.whl
pip install -r requirements.txt "$d2whl"
pip install --no-deps --force-reinstall "$d2whl"  # a rebuilt wheel keeps its version
pip install --no-deps -e .
# Test-only cross-check of the pixel-level Pd/Fa (tests/test_mask_pd_fa.py). Its metadata pins
# numpy<2, which would downgrade numpy under opencv; its code runs on numpy 2, so no deps.
pip install --no-deps pyirstdmetrics==1.0.2
"$venv/bin/python" -c "import torch, torchvision, detectron2, deepinfrared_d2; \
print('[bootstrap] torch', torch.__version__, '| torchvision', torchvision.__version__, \
'| detectron2', detectron2.__version__)"
echo "$want" > "$stamp"
