#!/usr/bin/env python
"""Benchmark the classical baselines on a split: one markdown table.

    python tools/benchmark_classical.py --dataset sirst_v2_test_full --workers 2 \
        --output out/benchmark_classical

Columns: method | mNoCoAP | published | diff | Pd | Fa/image | s/image (median) | method time
(sum over the images) | wall time of the run | peak memory | mNoCoAP under the other protocol |
exact score ties left (detections sharing their float32 score with a detection of another
image / only with detections of the same image; the metric orders them canonically, see
``deepinfrared_d2.evaluation.nocoap``). Each method runs through ``baselines.runner`` into
``<output>/<method>`` on ``--device`` and therefore resumes when interrupted (the wall time is
then "—": it would cover only part of the run). The table is also written to
``<output>/table.md`` (rewritten after every method).
``--report-only`` computes nothing: it tabulates the finished runs, lists the unfinished ones,
and compares every method on the images that the unfinished ones have finished (an unbiased
sample when runs go in split order). ``--param METHOD.NAME=VALUE`` overrides one method's
parameter (e.g. the opt-in ``ipi.e_tol``); the table then names every override under it.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from baselines import CORE_METHODS, PROTOCOLS, PUBLISHED_MNOCOAP  # noqa: E402
from baselines.devices import CHOICES as DEVICE_CHOICES  # noqa: E402
from baselines.devices import DeviceError, machine_line, resolve_device  # noqa: E402
from baselines.registry import get_method, parse_param_items  # noqa: E402
from baselines.runner import collect_records, evaluate, load_partials, run_method  # noqa: E402
from sirst.cli import EXIT_USAGE, ArgumentParser, count, output_dir  # noqa: E402
from sirst.cli import workers as workers_arg  # noqa: E402
from sirst.dataset import load_dataset  # noqa: E402


def _fmt(v, digits=3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def count_ties(records: Sequence[Dict]) -> Tuple[int, int]:
    """(across, within): detections whose float32 score (the metric's precision) equals that
    of a detection of another image, and those whose score is shared only within their own
    image."""
    groups: Dict[float, set] = {}
    sizes: Dict[float, int] = {}
    for r in records:
        key = float(np.float32(r["score"]))
        groups.setdefault(key, set()).add(str(r["image_id"]))
        sizes[key] = sizes.get(key, 0) + 1
    across = sum(n for key, n in sizes.items() if n > 1 and len(groups[key]) > 1)
    within = sum(n for key, n in sizes.items() if n > 1 and len(groups[key]) == 1)
    return across, within


def _minutes(seconds) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}"


def build_table(rows: List[Dict], protocol: str, other: str) -> str:
    """Markdown table of ``rows`` (see the module docstring for the columns)."""
    head = (f"| method | mNoCoAP ({protocol.upper()}) | published | diff | Pd | Fa/image | "
            "s/image (median) | method time (min) | wall (min) | peak memory (MiB) | "
            f"mNoCoAP ({other.upper()}) | ties across / within images |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        pub = PUBLISHED_MNOCOAP.get(r["method"])
        if r.get("incomplete"):
            lines.append(f"| {r['method']} | not finished ({r['incomplete']}) | {_fmt(pub)} | — "
                         f"| — | — | {_fmt(r['s_median'], 3)} | {_minutes(r['s_total'])} | — "
                         f"| {r['peak_mib']:.0f} | — | — |")
            continue
        diff = None if pub is None else r["mnocoap"] - pub
        lines.append(
            f"| {r['method']} | {_fmt(r['mnocoap'])} | {_fmt(pub)} | "
            f"{'—' if diff is None else f'{diff:+.3f}'} | {_fmt(r['pd'])} | {_fmt(r['fa'])} | "
            f"{_fmt(r['s_median'], 3)} | {_minutes(r['s_total'])} | {_minutes(r.get('wall'))} "
            f"| {r['peak_mib']:.0f} | {_fmt(r['mnocoap_other'])} | "
            f"{r['ties'][0]} / {r['ties'][1]} |")
    pubs = [r for r in rows if r["method"] in PUBLISHED_MNOCOAP and not r.get("incomplete")]
    if len(pubs) >= 2:
        ours = [r["method"] for r in sorted(pubs, key=lambda r: -r["mnocoap"])]
        theirs = sorted((r["method"] for r in pubs), key=lambda m: -PUBLISHED_MNOCOAP[m])
        lines += ["", f"Ranking measured:  {' > '.join(ours)}",
                  f"Ranking published: {' > '.join(theirs)}"]
    return "\n".join(lines)


def _unfinished_row(name: str, parts: Dict[str, Dict], n: int):
    """None when all ``n`` images are in ``parts`` (a finished run), else a progress row."""
    if len(parts) >= n:
        return None
    secs = sorted(p["seconds"] for p in parts.values())
    return {"method": name, "done": len(parts),
            "incomplete": f"{len(parts)}/{n} images, {sum(secs) / 60:.0f} min so far",
            "s_median": secs[len(secs) // 2] if secs else None,
            "peak_mib": max((p["peak_mib"] for p in parts.values()), default=0.0),
            "s_total": sum(secs)}


def subset_table(dataset: str, ids: List[str], partials: Dict[str, Dict[str, Dict]],
                 unfinished: List[str], protocol: str) -> str:
    """Every method of ``partials`` (method -> image_id -> partial result) re-evaluated on the
    images of ``ids`` that all ``unfinished`` methods have finished (a temporary dataset
    holding only those images), as a markdown table."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    common = [i for i in ids if all(i in partials[m] for m in unfinished)]
    have = [m for m in partials if all(i in partials[m] for i in common)]
    if not common or not have:
        return ""
    name = f"{dataset}@{len(common)}_finished"
    keep = set(common)
    records = [r for r in DatasetCatalog.get(dataset) if r["image_id"] in keep]
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    DatasetCatalog.register(name, lambda: records)
    parent = MetadataCatalog.get(dataset)
    MetadataCatalog.get(name).set(thing_classes=parent.thing_classes,
                                  evaluator_type=parent.evaluator_type)
    n_targets = sum(1 for r in records if r["annotations"])
    rows = []
    for m in have:
        res = evaluate(name, collect_records([partials[m][i] for i in common], protocol))
        rows.append((res["noco"]["mNoCoAP"], m))
    lines = [f"Common subset: the {len(common)} images ({n_targets} with targets) that "
             f"{', '.join(unfinished)} finished, split order; every method re-evaluated on "
             "them:", "",
             f"| method | mNoCoAP ({protocol.upper()}), {len(common)} images | "
             "published (256) |", "|---|---|---|"]
    lines += [f"| {m} | {v:.3f} | {_fmt(PUBLISHED_MNOCOAP.get(m))} |"
              for v, m in sorted(rows, reverse=True)]
    return "\n".join(lines)


def main() -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--methods", default=",".join(CORE_METHODS),
                    help="comma-separated method names (default: the 11 core methods)")
    ap.add_argument("--workers", type=workers_arg, default=2,
                    help="worker processes (default 2; 0 = all cores; capped at the core count)")
    ap.add_argument("--output", default="out/benchmark_classical", type=output_dir)
    ap.add_argument("--protocol", default="p1", choices=PROTOCOLS)
    ap.add_argument("--k", type=count, default=5)
    ap.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                    help="override one method's parameter, e.g. ipi.e_tol=1e-3 (repeatable)")
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                    help="where IPI, NIPPS, RIPT and PSTNN run (baselines.devices; default auto "
                    "= cuda when torch sees a GPU, else cpu = NumPy); the others run NumPy")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="compute nothing: tabulate finished runs, list unfinished ones with "
                    "their progress, and compare every method on the images the unfinished "
                    "ones have finished")
    args = ap.parse_args()
    other = [p for p in PROTOCOLS if p != args.protocol][0]
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    overrides: Dict[str, Dict] = {}  # method -> parameter overrides
    try:
        for key, value in parse_param_items(args.param).items():
            name, dot, param = key.partition(".")
            if not dot or name not in methods:
                raise ValueError(f"--param {key}=...: expected METHOD.NAME with METHOD one of "
                                 f"{methods}")
            overrides.setdefault(name, {})[param] = value
        for name in methods:  # names, types and values fail here, not mid-run
            get_method(name).params(**overrides.get(name, {}))
        ids = [str(r["image_id"]) for r in load_dataset(args.dataset)]  # before any map
        lowrank = [m for m in methods if get_method(m).torch_impl]
        device = resolve_device(args.device) if lowrank and not args.report_only else "cpu"
    except (ValueError, TypeError, KeyError, DeviceError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return EXIT_USAGE
    note = "".join(f"\n\nNot the published defaults: {name} "
                   + ", ".join(f"{a}={b!r}" for a, b in ov.items())
                   for name, ov in overrides.items())
    rows = []
    partials: Dict[str, Dict[str, Dict]] = {}  # method -> image_id -> partial result
    t0 = time.time()
    for name in methods:
        out = os.path.join(args.output, name)
        if args.report_only:
            partials[name] = load_partials(os.path.join(out, "partial"), ids)
            row = _unfinished_row(name, partials[name], len(ids))
            if row is not None:
                rows.append(row)
                continue
        records, summary = run_method(name, args.dataset, out, params=overrides.get(name),
                                      protocol=args.protocol, k=args.k, workers=args.workers,
                                      progress=not args.no_progress, device=device)
        res = evaluate(args.dataset, records)
        partials[name] = load_partials(os.path.join(out, "partial"), ids)
        res_other = evaluate(args.dataset, collect_records(list(partials[name].values()), other))
        rows.append({"method": name, "mnocoap": res["noco"]["mNoCoAP"],
                     "pd": res["irstd"]["Pd"], "fa": res["irstd"]["Fa_per_image"],
                     "s_median": summary["seconds_per_image_median"],
                     "s_total": summary["seconds_total_method"],
                     "wall": (summary["wall_seconds_this_session"]
                              if summary["resumed_images"] == 0 else None),
                     "peak_mib": summary["peak_mib_max"],
                     "mnocoap_other": res_other["noco"]["mNoCoAP"],
                     "ties": count_ties(records), "device": summary["device"]})
        table = build_table(rows, args.protocol, other) + note
        with open(os.path.join(args.output, "table.md"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(args.output, "rows.json"), "w") as f:
            json.dump(rows, f, indent=2)
        print(f"[{name}] mNoCoAP={rows[-1]['mnocoap']:.4f} method time "
              f"{summary['seconds_total_method']:.0f} s, wall "
              f"{summary['wall_seconds_this_session']:.0f} s this session "
              f"({summary['resumed_images']} images resumed), device {summary['device']}",
              flush=True)
    print(build_table(rows, args.protocol, other) + note)
    unfinished = [r["method"] for r in rows if r.get("done")]
    if unfinished:
        print("\n" + subset_table(args.dataset, ids, partials, unfinished, args.protocol))
    total = sum(r["s_total"] for r in rows)
    print(f"\nsum of per-image method times: {total / 60:.1f} min; wall time of this "
          f"invocation: {(time.time() - t0) / 60:.1f} min (workers={args.workers}, low-rank "
          f"methods on {device}); {machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
