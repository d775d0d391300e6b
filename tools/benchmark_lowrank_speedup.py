#!/usr/bin/env python
"""Speed-up of the fast IPI and RIPT over straightforward implementations, side by side.

    python tools/benchmark_lowrank_speedup.py [--dataset sirst_v2_test_full --images ID,...]
        [--methods ipi,ript]

For each image: the reference implementation (``baselines.methods.reference``: patch matrix
built with a Python loop, full dense SVD in every iteration) and the fast one
(``baselines.get_method``), same parameters, same process, one after the other; prints the
times, the speed-up, the iteration counts and the max difference of the two target maps.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import baselines  # noqa: E402
from baselines.methods.reference import ipi_reference, ript_reference  # noqa: E402
from sirst.cli import ArgumentParser, fail  # noqa: E402
from sirst.dataset import load_dataset  # noqa: E402
from sirst.image_io import read_gray  # noqa: E402

REFERENCE = {"ipi": ipi_reference, "ript": ript_reference}
DEFAULT_IMAGES = "Misc_70,Misc_96,Misc_214"  # SIRST-V2 mini_test: 338x251, 291x215, 300x194


def main() -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_mini_test",
                    help="dataset the image ids come from")
    ap.add_argument("--images", default=DEFAULT_IMAGES, help="comma-separated image ids")
    ap.add_argument("--methods", default="ipi,ript")
    args = ap.parse_args()
    paths = {str(r["image_id"]): r["file_name"] for r in load_dataset(args.dataset)}
    ids = [i.strip() for i in args.images.split(",") if i.strip()]
    missing = [i for i in ids if i not in paths]
    if missing:
        fail(f"images {missing} are not in {args.dataset}")
    print("| method | image | size | reference (s) | fast (s) | speed-up | max |diff| "
          "| map max | same arg-max |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals = {}
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        fast_fn, ref_fn = baselines.get_method(name), REFERENCE[name]
        for i in ids:
            img = read_gray(paths[i]).astype(np.float64)
            t = time.perf_counter()
            ref = ref_fn(img)
            t_ref = time.perf_counter() - t
            t = time.perf_counter()
            fast = fast_fn(img)
            t_fast = time.perf_counter() - t
            same = (np.unravel_index(ref.argmax(), ref.shape)
                    == np.unravel_index(fast.argmax(), fast.shape))
            tr, tf = totals.get(name, (0.0, 0.0))
            totals[name] = (tr + t_ref, tf + t_fast)
            print(f"| {name} | {i} | {img.shape[1]}x{img.shape[0]} | {t_ref:.2f} | {t_fast:.2f} "
                  f"| {t_ref / t_fast:.1f}x | {np.abs(ref - fast).max():.2e} | {ref.max():.3g} "
                  f"| {same} |", flush=True)
    for name, (tr, tf) in totals.items():
        print(f"\n{name}: total reference {tr:.1f} s, fast {tf:.1f} s, speed-up {tr / tf:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
