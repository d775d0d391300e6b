#!/usr/bin/env python3
"""The model-zoo table: every detector's CPU recipe, its size and speed, and its shipped run.

    python tools/benchmark_zoo.py            # markdown table, the README's model zoo

For each CPU recipe ``projects/<project>/configs/<name>_cpu.yaml``: parameters, GFLOPs of the
dense part at 512x512 and eager CPU ms/image at ``--image-size`` (SIRST-V2's most frequent
size, native resolution: the CPU recipes' test scale; median of ``--runs``, batch 1), as
``tools/benchmark_models.py`` measures them; from its shipped training run
``projects/<project>/model_zoo/<name>_cpu/`` (``metrics.json``, ``log.txt``,
``config.yaml``), when there is one: mNoCoAP of the last checkpoint on
``sirst_v2_test_full``, training minutes and the CPU it trained on; and the paper's mNoCoAP
for the detector's paper config. A last row holds the best classical method under protocol P1
(``--classical``, Top-Hat by the leaderboard in baselines/README.md) for reference: its mNoCoAP
on ``sirst_v2_test_full`` (``python -m baselines run``'s figure; results kept and reused in
``--classical-output``) and its ms per call on a test image of ``--image-size``.
"""
from __future__ import annotations

import glob
import json
import os
import re
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Dict, Optional, Tuple

import torch
from benchmark_models import DenseOnly, padded, parameter_counts, time_backends
from tabulate import tabulate

from baselines import get_method, list_methods
from baselines.runner import evaluate, run_method
from deepinfrared_d2.engine import SIRSTTrainer, setup_cfg
from deepinfrared_d2.engine.precision import describe_cpu
from deepinfrared_d2.utils.flops import count_gflops
from sirst.cli import ArgumentParser, count, workers
from sirst.dataset import load_dataset
from sirst.image_io import read_gray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The paper's mNoCoAP on sirst_v2_test_full for each detector's paper config (OSCAR spec;
# "best of 12 epochs / last epoch" where both are known); "-" where the paper has none.
PAPER = {"OSCAR": "0.8502 / 0.8391", "FCOS-RFLA": "0.7882", "Faster R-CNN": "0.7141",
         "FCOS": "-", "RetinaNet": "-"}


def detector_name(cfg) -> str:
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "FCOS":
        return "FCOS-RFLA" if cfg.MODEL.FCOS.ASSIGNER == "rfla" else "FCOS"
    return {"GeneralizedRCNN": "Faster R-CNN"}.get(arch, arch)


NOT_TRAINED = {"mNoCoAP": "not trained yet", "minutes": "-", "cpu": "-"}


def shipped_run(folder: str) -> Dict[str, Optional[str]]:
    """mNoCoAP (last evaluation in metrics.json), training time and CPU from the run's log."""
    with open(os.path.join(folder, "metrics.json")) as f:
        evals = [e for e in map(json.loads, f) if "noco/mNoCoAP" in e]
    with open(os.path.join(folder, "log.txt")) as f:
        log = f.read()
    total = re.search(r"Total training time: (\d+):(\d\d):(\d\d)", log)
    cpu = re.search(r"CPU precision: (.*?) -> AMP runs in (\w+)", log)
    return {"mNoCoAP": f"{evals[-1]['noco/mNoCoAP']:.4f}" if evals else "-",
            "minutes": (f"{int(total[1]) * 60 + int(total[2]) + int(total[3]) / 60:.1f}"
                        if total else "-"),
            "cpu": f"{cpu[1]}, {cpu[2]}" if cpu else "-"}


def classical_row(method: str, size: Tuple[int, int], runs: int, output: str,
                  n_workers: int) -> Tuple[str, ...]:
    """The reference row of a classical ``method`` under protocol P1: mNoCoAP on
    ``sirst_v2_test_full`` and the median ms of one call on its first image of ``size``."""
    records, _ = run_method(method, "sirst_v2_test_full", output, workers=n_workers)
    noco = evaluate("sirst_v2_test_full", records)["noco"]
    test = load_dataset("sirst_v2_test_full")
    sized = [r["file_name"] for r in test if (r["height"], r["width"]) == tuple(size)]
    image = read_gray(sized[0] if sized else test[0]["file_name"])
    m = get_method(method)
    m(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        m(image)
        times.append((time.perf_counter() - start) * 1000)
    return (f"{method} (classical, protocol P1)", "-", "-", f"{statistics.median(times):.0f}",
            f"{noco['mNoCoAP']:.4f}", "-", "-",
            f"`python -m baselines run --method {method} --dataset sirst_v2_test_full "
            f"--output OUT`")


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", nargs=2, type=count, default=(512, 640), metavar=("H", "W"))
    ap.add_argument("--runs", type=count, default=5)
    ap.add_argument("--classical", default="tophat", choices=list_methods(),
                    help="the classical reference row (default: tophat, the best under P1)")
    ap.add_argument("--classical-output", default="output/benchmark_zoo/tophat",
                    help="its results folder (reused by a later run)")
    ap.add_argument("--workers", type=workers, default=2,
                    help="processes for the classical method's run")
    args = ap.parse_args(argv)
    rows, cpus = [], set()
    for config in sorted(glob.glob(os.path.join(ROOT, "projects/*/configs/*_cpu.yaml"))):
        name = os.path.splitext(os.path.basename(config))[0]
        folder = os.path.join(os.path.dirname(os.path.dirname(config)), "model_zoo", name)
        cfg = setup_cfg(SimpleNamespace(config_file=config, opts=[]), output=False)
        model = SIRSTTrainer.build_model(cfg).eval()
        size = padded((512, 512), getattr(model.backbone, "size_divisibility", 1))
        gflops = count_gflops(DenseOnly(model), (torch.zeros((1, 3) + size),))
        ms = time_backends(cfg, model, ["eager"], tuple(args.image_size), args.runs)["eager"]
        run = shipped_run(folder) if os.path.isdir(folder) else NOT_TRAINED
        cpus.add(run["cpu"])
        params = parameter_counts(model)["params"] / 1e6
        rows.append((f"{detector_name(cfg)} ({name})", f"{params:.2f} M",
                     f"{gflops:.2f}", f"{ms['ms_median']:.0f}", run["mNoCoAP"], run["minutes"],
                     PAPER.get(detector_name(cfg), "-"),
                     f"`tools/train_net.py --config-file {os.path.relpath(config, ROOT)}`"))
        print(f"[zoo] {name} done", file=sys.stderr, flush=True)
    rows.append(classical_row(args.classical, tuple(args.image_size), args.runs,
                              args.classical_output, args.workers))
    h, w = args.image_size
    print(tabulate(rows, tablefmt="pipe", disable_numparse=True, headers=[
        "model (CPU recipe)", "params", "GFLOPs @ 512x512", f"CPU ms/image @ {h}x{w}",
        "mNoCoAP (test_full, last)", "training min", "paper mNoCoAP (paper config)", "command"]))
    print(f"ms/image: this CPU, {describe_cpu()}, {torch.get_num_threads()} threads, eager "
          f"float32; training: {'; '.join(sorted(cpus - {'-'})) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
