#!/usr/bin/env python3
"""Seconds per training iteration of a config, several execution variants side by side.

    python tools/benchmark_train_step.py \
        --config-file projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml
    python tools/benchmark_train_step.py --config-file CFG --variants float32 compiled --iters 20

Every variant trains a fresh model (same seed, same initial weights) on the same batches of
the config's training loader for ``--warmup`` + ``--iters`` iterations (forward, losses,
backward, optimizer step; batches prepared beforehand, so data loading is not in the figure)
and reports the median (and min) seconds per timed iteration. The variants take turns, one
iteration each, so that on a shared machine a change of load hits them alike. Variants
(combine with ``+``):

- ``float32``: eager PyTorch;
- ``channels_last``: model weights (hence activations) in NHWC, oneDNN's preferred layout;
- ``compiled``: the dense part (backbone, neck, head) under ``torch.compile`` (inductor; its
  compile time is reported apart and excluded);
- ``bfloat16``: bfloat16 autocast (skipped where the CPU has no native bfloat16, unless
  ``--force-bf16``: emulated, tens of times slower);
- ``NAME:KEY=VALUE[:KEY=VALUE]``: the variant on the config with these overrides (and its
  own batches), e.g. ``float32:INPUT.TARGET_CROP.SIZE=(192,192)`` to price a cheaper recipe.

The data loader's share: the seconds to prepare one batch in the main process
(``DATALOADER.NUM_WORKERS 0``) and one float32 run fed by the real loader (the config's
workers, which compete with the training threads for the cores): the share is the extra time
per iteration over the pre-loaded float32 figure. The CPU model, torch's capability and the
load average are printed with the table (timings on a shared machine move with the load).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from itertools import islice
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.engine import SIRSTTrainer, build_optimizer, setup_cfg
from deepinfrared_d2.engine.precision import cpu_info, describe_cpu, native_bfloat16
from sirst.cli import ArgumentParser, count, count_or_zero, input_file

DEFAULT_VARIANTS = ("float32", "channels_last", "compiled", "bfloat16", "bfloat16+channels_last")
KNOWN = {"float32", "channels_last", "compiled", "bfloat16"}


def parse_variant(name: str) -> Tuple[set, List[str]]:
    """"channels_last+bfloat16:KEY=VALUE:KEY=VALUE" -> ({"channels_last", "bfloat16"},
    [KEY, VALUE, KEY, VALUE]) (the config overrides of this variant)."""
    kind, *overrides = name.split(":")
    parts = set(kind.split("+"))
    if not parts <= KNOWN:
        raise ValueError(f"unknown variant {name!r}: combine {sorted(KNOWN)} with '+'")
    opts = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"variant {name!r}: config overrides are KEY=VALUE, got {item!r}")
        opts += [key, value]
    return parts - {"float32"}, opts


def variant_batches(cfg, n: int) -> List:
    """``n`` batches of the config's training loader, prepared in the main process."""
    cfg0 = cfg.clone()
    cfg0.defrost()
    cfg0.DATALOADER.NUM_WORKERS = 0
    return list(islice(iter(SIRSTTrainer.build_train_loader(cfg0)), n))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch,
               dtype: Optional[torch.dtype]) -> float:
    """Seconds of one training iteration (forward, losses, backward, optimizer step)."""
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        losses = model(batch)
    total = sum(losses.values())
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    return time.perf_counter() - start


def train_iterations(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     batches: Iterable, dtype: Optional[torch.dtype]) -> List[float]:
    """Seconds of each training iteration over ``batches``."""
    with EventStorage():
        return [train_step(model, optimizer, batch, dtype) for batch in batches]


def build_variant(cfg, name: str, batches: List, force_bf16: bool) -> Dict:
    """A fresh model (seeded) and optimizer set up as variant ``name`` ("skipped" if the CPU
    cannot run it natively) with its batches (``batches``, or its own when the variant
    overrides the config); a compiled variant is compiled here, on its first batch."""
    parts, opts = parse_variant(name)
    row: Dict = {"variant": name}
    if "bfloat16" in parts and not (native_bfloat16(cpu_info()) or force_bf16):
        row["skipped"] = "no native bfloat16 on this CPU (--force-bf16 to time the emulation)"
        return row
    if opts:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.merge_from_list(opts)
        batches = variant_batches(cfg, len(batches))
    torch.manual_seed(cfg.SEED if cfg.SEED >= 0 else 0)
    model = build_model(cfg).train()
    if "channels_last" in parts:
        model = model.to(memory_format=torch.channels_last)
    row.update(model=model, optimizer=build_optimizer(cfg, model),
               dtype=torch.bfloat16 if "bfloat16" in parts else None, times=[],
               batches=batches)
    if "compiled" in parts:
        model.forward_dense = torch.compile(model.forward_dense)
        row["compile_s"] = round(sum(train_iterations(model, row["optimizer"], batches[:1],
                                                      row["dtype"])), 1)
    return row


def run_variants(cfg, names: List[str], batches: List, warmup: int, force_bf16: bool,
                 report) -> List[Dict]:
    """Time the variants round-robin, one iteration each in turn, so that a change of the
    machine's load hits them alike; median (and min) seconds after ``warmup`` iterations."""
    rows = [build_variant(cfg, name, batches, force_bf16) for name in names]
    live = [r for r in rows if "skipped" not in r]
    with EventStorage():
        for i in range(len(batches)):
            for row in live:
                row["times"].append(train_step(row["model"], row["optimizer"],
                                               row["batches"][i], row["dtype"]))
    for row in rows:
        if "skipped" not in row:
            times = row.pop("times")[warmup:]
            for key in ("model", "optimizer", "dtype", "batches"):
                row.pop(key)
            row["s_per_iter"] = round(statistics.median(times), 3)
            row["min_s"] = round(min(times), 3)
        report(row)
    return rows


def loader_rows(cfg, batches: List, warmup: int, iters: int) -> List[Dict]:
    """Batch preparation in the main process, and float32 training fed by the real loader."""
    cfg0 = cfg.clone()
    cfg0.defrost()
    cfg0.DATALOADER.NUM_WORKERS = 0
    it = iter(SIRSTTrainer.build_train_loader(cfg0))
    times = []
    for _ in range(warmup + iters):
        start = time.perf_counter()
        next(it)
        times.append(time.perf_counter() - start)
    prep = {"variant": "data: one batch, main process", "s_per_iter": round(
        statistics.median(times[warmup:]), 3)}
    torch.manual_seed(cfg.SEED if cfg.SEED >= 0 else 0)
    model = build_model(cfg).train()
    optimizer = build_optimizer(cfg, model)
    loader = islice(iter(SIRSTTrainer.build_train_loader(cfg)), warmup + iters)
    times = train_iterations(model, optimizer, loader, None)[warmup:]
    fed = {"variant": f"float32 fed by the loader ({cfg.DATALOADER.NUM_WORKERS} workers)",
           "s_per_iter": round(statistics.median(times), 3)}
    return [prep, fed]


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-file", required=True, type=input_file)
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                    help=f"variants to time (default: {' '.join(DEFAULT_VARIANTS)})")
    ap.add_argument("--iters", type=count, default=10, help="timed iterations per variant")
    ap.add_argument("--warmup", type=count_or_zero, default=3,
                    help="untimed iterations per variant")
    ap.add_argument("--threads", type=count_or_zero, default=0,
                    help="torch threads (0: torch's default)")
    ap.add_argument("--no-loader", action="store_true", help="skip the data-loader rows")
    ap.add_argument("--force-bf16", action="store_true",
                    help="time bfloat16 variants even without native bfloat16")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    ap.add_argument("opts", nargs=argparse.REMAINDER,
                    help="config overrides KEY VALUE (after --variants A B: -- KEY VALUE)")
    args = ap.parse_args(argv)
    if args.opts[:1] == ["--"]:  # "--variants a b -- KEY VALUE": the list ends at "--"
        args.opts = args.opts[1:]
    try:
        for name in args.variants:
            parse_variant(name)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = setup_cfg(args, output=False)
    print(f"CPU: {describe_cpu()}")
    print(f"config: {args.config_file} {' '.join(args.opts)}; batch {cfg.SOLVER.IMS_PER_BATCH}, "
          f"{args.warmup} warm-up + {args.iters} timed iterations per variant")
    batches = variant_batches(cfg, args.warmup + args.iters)

    def report(row):
        print(json.dumps(row) if args.json else _format(row), flush=True)

    rows = run_variants(cfg, args.variants, batches, args.warmup, args.force_bf16, report)
    if not args.no_loader:
        for row in loader_rows(cfg, batches, args.warmup, args.iters):
            rows.append(row)
            report(row)
        base = next((r for r in rows if r["variant"] == "float32" and "s_per_iter" in r), None)
        if base:
            fed = rows[-1]["s_per_iter"]
            print(f"data loader's share of a float32 iteration: "
                  f"{max(fed - base['s_per_iter'], 0) / fed:.0%} "
                  f"({fed:.3f} s fed by the loader vs {base['s_per_iter']:.3f} s pre-loaded)")
    print(f"load average after: {describe_cpu().rsplit('load average ', 1)[1]}")
    return 0


def _format(row: Dict) -> str:
    if "skipped" in row:
        return f"{row['variant']:44s} skipped: {row['skipped']}"
    extra = f"  (compile {row['compile_s']} s)" if "compile_s" in row else ""
    spread = f"  min {row['min_s']:.3f}" if "min_s" in row else ""
    return f"{row['variant']:44s} {row['s_per_iter']:.3f} s/iteration{spread}{extra}"


if __name__ == "__main__":
    sys.exit(main())
