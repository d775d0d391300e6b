#!/usr/bin/env python
"""Seconds per image of the low-rank methods on each device: NumPy (cpu) against PyTorch
(cpu-torch, and cuda when a GPU is present), same images, same process, one after the other.

    OMP_NUM_THREADS=1 python tools/benchmark_lowrank_devices.py \
        [--methods ipi,nipps,ript,pstnn] [--devices cpu,cpu-torch] [--images ID,...]

Default images: two of each SIRST-V2 size class (< 0.3 Mpx, 640x512, >= 1 Mpx) of test_full.
One table row per method and image: seconds per device, the ratio to NumPy, the largest map
difference relative to the NumPy map's maximum, and whether the five P1 points agree; then the
mean seconds per size class and device, the command's machine (CPU model, cores, torch CPU
capability, GPU) and the date. ``--threads`` sets the BLAS/OpenMP/torch threads (default: the
environment's; the leaderboard runs one per worker).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

DEFAULT_IMAGES = ("Misc_216,Misc_20,"  # < 0.3 Mpx (302x200, 302x274: median sizes)
                  "S4_42,S20210713_S3_3,"  # 640x512
                  "iraytek-451,iraytek-165")  # 1280x1024


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--images", default=DEFAULT_IMAGES, help="comma-separated image ids")
    ap.add_argument("--methods", default="ipi,nipps,ript,pstnn")
    ap.add_argument("--devices", default=None,
                    help="comma-separated (default: cpu,cpu-torch, plus cuda when available)")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS / OpenMP / torch threads (set before NumPy loads)")
    return ap.parse_args(argv)


SIZE_CLASSES = ("< 0.3 Mpx", "640x512", ">= 1 Mpx")


def size_class(shape) -> str:
    px = shape[0] * shape[1]
    return SIZE_CLASSES[0] if px < 300_000 else SIZE_CLASSES[1 if px < 1_000_000 else 2]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import numpy as np

    import baselines
    from baselines.devices import DEVICES, cuda_available, machine_line
    from sirst.dataset import load_dataset
    from sirst.image_io import read_gray

    devices = (args.devices.split(",") if args.devices
               else ["cpu", "cpu-torch"] + (["cuda"] if cuda_available() else []))
    bad = [d for d in devices if d not in DEVICES]
    if bad or "cpu" not in devices:
        print(f"error: --devices must include cpu (the reference) and name only {DEVICES}",
              file=sys.stderr)
        return 2
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    paths = {str(r["image_id"]): r["file_name"] for r in load_dataset(args.dataset)}
    ids = [i.strip() for i in args.images.split(",") if i.strip()]
    missing = [i for i in ids if i not in paths]
    if missing:
        print(f"error: images {missing} are not in {args.dataset}", file=sys.stderr)
        return 2
    others = [d for d in devices if d != "cpu"]
    print("| method | image | size | " + " | ".join(f"{d} (s)" for d in devices) + " | "
          + " | ".join(f"{d} / cpu" for d in others) + " | max |diff| / max | same P1 points |")
    print("|---" * (4 + len(devices) + len(others)) + "|---|")
    per_class = {}
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        method = baselines.get_method(name)
        for i in ids:
            image = read_gray(paths[i])
            maps, secs = {}, {}
            for d in devices:
                t = time.perf_counter()
                maps[d] = method(image, device=d)
                secs[d] = time.perf_counter() - t
                per_class.setdefault((name, size_class(image.shape), d), []).append(secs[d])
            ref = maps["cpu"]
            scale = max(float(np.abs(ref).max()), 1e-300)
            diff = max((float(np.abs(maps[d] - ref).max()) / scale for d in others), default=0.0)
            pts = {d: baselines.detect_points(maps[d], image)[:, :2] for d in devices}
            same = all(np.array_equal(pts[d], pts["cpu"]) for d in others)
            print(f"| {name} | {i} | {image.shape[1]}x{image.shape[0]} | "
                  + " | ".join(f"{secs[d]:.2f}" for d in devices) + " | "
                  + " | ".join(f"{secs[d] / secs['cpu']:.2f}" for d in others)
                  + f" | {diff:.1e} | {same} |", flush=True)
    print("\n| method | size class | " + " | ".join(f"{d}: mean s/image" for d in devices)
          + " |")
    print("|---|---|" + "---|" * len(devices))
    names = list(dict.fromkeys(m for m, _, _ in per_class))
    keys = sorted({(m, c) for m, c, _ in per_class},
                  key=lambda mc: (names.index(mc[0]), SIZE_CLASSES.index(mc[1])))
    for m, c in keys:
        print(f"| {m} | {c} | "
              + " | ".join(f"{np.mean(per_class[(m, c, d)]):.2f}" for d in devices) + " |")
    print(f"\n{machine_line()}; threads: {os.environ.get('OMP_NUM_THREADS', 'default')}; "
          f"{datetime.date.today().isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
