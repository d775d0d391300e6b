"""Command line: ``python -m baselines list`` and ``python -m baselines run``.

Example::

    python -m baselines run --method ipi --dataset sirst_v2_test_full --output out/ipi \\
        --workers 2 [--save-maps] [--protocol p1|p2] [--param lam=0.05] [--device cuda]

An interrupted run resumes from ``<output>/partial`` (finished images are not redone).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional

from sirst.cli import EXIT_USAGE, ArgumentParser, count, output_dir, workers
from sirst.dataset import load_dataset
from sirst.image_io import DatasetFileError
from sirst.results import ResultsFileError, write_json_atomic

from .devices import CHOICES as DEVICE_CHOICES
from .devices import DeviceError, resolve_device
from .protocol import PROTOCOLS
from .registry import get_method, list_methods, parse_param_items


def cmd_list(_: argparse.Namespace) -> int:
    for name in list_methods():
        m = get_method(name)
        defaults = ", ".join(f"{k}={v!r}" for k, v in m.defaults.items())
        print(f"{name:10s} {m.description}")
        print(f"{'':10s} defaults: {defaults}")
        print(f"{'':10s} {m.citation}\n")
    return 0


def summary_line(summary: Dict[str, Any], metrics: Optional[Dict[str, Any]]) -> str:
    parts = [f"method={summary['method']}", f"images={summary['n_images']}",
             f"s/image(median)={summary['seconds_per_image_median']:.3f}",
             f"s/image(mean)={summary['seconds_per_image_mean']:.3f}",
             f"device={summary['device']}",
             f"peak={summary['peak_mib_max']:.0f}MiB",
             f"reused={summary['resumed_images']}",
             f"recomputed={summary.get('recomputed_images', 0)}"]
    if metrics:
        parts = [f"mNoCoAP={metrics['noco']['mNoCoAP']:.4f}",
                 f"Pd={metrics['irstd']['Pd']:.4f}",
                 f"Fa/img={metrics['irstd']['Fa_per_image']:.4f}"] + parts
    return "  ".join(parts)


def _user_error(exc: BaseException) -> int:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    print(f"error: {text}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import OutputInUse, evaluate, run_method
    try:  # every check before any work: here all of these are the user's errors
        params = parse_param_items(args.param)
        get_method(args.method).params(**params)  # types and values of the overrides
        load_dataset(args.dataset)  # the split, every XML, image and mask header
        device = resolve_device(args.device) if get_method(args.method).torch_impl else "cpu"
    except (ValueError, TypeError, KeyError, DeviceError) as exc:
        return _user_error(exc)
    try:
        records, summary = run_method(args.method, args.dataset, args.output, params=params,
                                      protocol=args.protocol, k=args.k, workers=args.workers,
                                      save_maps=args.save_maps, progress=not args.no_progress,
                                      limit=args.limit, device=device)
        metrics = None
        if not args.no_eval:
            from deepinfrared_d2.evaluation import format_metrics_table
            metrics = evaluate(args.dataset, records)
            print(format_metrics_table(metrics))
    except (OutputInUse, DatasetFileError, ResultsFileError) as exc:
        return _user_error(exc)
    if not args.no_eval:
        summary["evaluation"] = metrics
        write_json_atomic(os.path.join(args.output, "run.json"), summary, indent=2)
    print(summary_line(summary, metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m baselines",
                       description="Classical infrared small target detectors.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="methods, defaults and citations").set_defaults(func=cmd_list)
    r = sub.add_parser("run", help="run a method on a dataset and evaluate it")
    r.add_argument("--method", required=True, choices=list_methods())
    r.add_argument("--dataset", default="sirst_v2_test_full")
    r.add_argument("--output", required=True, type=output_dir)
    r.add_argument("--workers", type=workers, default=1,
                   help="worker processes (default 1; 0 = all cores; capped at the core count)")
    r.add_argument("--save-maps", action="store_true", help="write float16 maps to maps/")
    r.add_argument("--protocol", default="p1", choices=PROTOCOLS,
                   help="map-to-point protocol of results.json (default p1)")
    r.add_argument("--k", type=count, default=5, help="points per image (default 5)")
    r.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a method parameter (repeatable)")
    r.add_argument("--limit", type=count, default=None,
                   help="only the first N images (quick checks; the evaluation then counts the "
                   "other images as having no detection)")
    r.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where IPI, NIPPS, RIPT and PSTNN run: cpu (NumPy, the reference), cuda "
                   "(PyTorch on the GPU), cpu-torch (PyTorch on the CPU); default auto = cuda "
                   "when torch sees a GPU, else cpu. Other methods always run NumPy on the CPU")
    r.add_argument("--no-eval", action="store_true", help="skip the evaluation step")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=cmd_run)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
