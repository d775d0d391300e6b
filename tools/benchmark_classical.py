#!/usr/bin/env python
"""Benchmark the classical baselines on a split: one markdown table.

    python tools/benchmark_classical.py --dataset sirst_v2_test_full --workers 2 \
        --output out/benchmark_classical

Columns: method | mNoCoAP | published | diff | Pd | Fa/image | s/image (median) | peak memory,
plus mNoCoAP under the other protocol and, with ``--tie-orders N`` (default 20), the range of
mNoCoAP over N random orders of tied scores: the metric, like the original protocol, visits
equal scores in NumPy's unstable ``argsort`` order, and P1 gives every image's top point the
score 1.0, so that order alone moves P1 numbers by a few hundredths. Each method runs through
``baselines.runner`` into ``<output>/<method>`` and therefore resumes when interrupted. The
table is also written to ``<output>/table.md`` (rewritten after every method).
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
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from baselines import CORE_METHODS, PROTOCOLS, PUBLISHED_MNOCOAP  # noqa: E402
from baselines.registry import get_method, parse_param_items  # noqa: E402
from baselines.runner import collect_records, evaluate, load_partials, run_method  # noqa: E402
from sirst.cli import EXIT_USAGE, ArgumentParser, count, count_or_zero, output_dir  # noqa: E402
from sirst.cli import workers as workers_arg  # noqa: E402
from sirst.dataset import load_dataset  # noqa: E402


def _fmt(v, digits=3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def break_ties(records: List[Dict], rng: np.random.Generator) -> List[Dict]:
    """Copies of ``records`` whose scores keep their order but have every tie broken in a
    random order. Scores are compared as float32, as the metric reads them; the new scores
    are the ranks mapped to (0, 1] (the metric depends on the order of the scores only)."""
    s32 = np.array([r["score"] for r in records], np.float32)
    order = np.lexsort((rng.random(len(records)), -s32))  # by score descending, ties random
    new = np.empty(len(records))
    new[order] = 1.0 - np.arange(len(records)) / max(len(records), 1)
    return [dict(r, score=float(v)) for r, v in zip(records, new)]


def tie_order_range(dataset: str, records: List[Dict], n: int, seed: int = 0
                    ) -> Tuple[float, float]:
    """(min, max) of mNoCoAP over ``n`` random orders of the tied scores of ``records``."""
    rng = np.random.default_rng(seed)
    vals = [evaluate(dataset, break_ties(records, rng))["noco"]["mNoCoAP"] for _ in range(n)]
    return min(vals), max(vals)


def build_table(rows: List[Dict], protocol: str, other: str, ties: int = 0) -> str:
    """Markdown table of ``rows``; ``ties`` > 0 adds the column of the rows' ``tie_range``
    (min, max of mNoCoAP over that many random tie orders)."""
    head = (f"| method | mNoCoAP ({protocol.upper()}) | published | diff | Pd | Fa/image | "
            f"s/image (median) | peak memory (MiB) | mNoCoAP ({other.upper()}) |")
    ties = max(ties, 0)
    if ties:
        head += f" {protocol.upper()}, {ties} random tie orders |"
    lines = [head, "|" + "---|" * (10 if ties else 9)]
    for r in rows:
        pub = PUBLISHED_MNOCOAP.get(r["method"])
        if r.get("incomplete"):
            lines.append(f"| {r['method']} | not finished ({r['incomplete']}) | {_fmt(pub)} | — "
                         f"| — | — | {_fmt(r['s_median'], 3)} | {r['peak_mib']:.0f} | — |"
                         + (" — |" if ties else ""))
            continue
        diff = None if pub is None else r["mnocoap"] - pub
        spread = r.get("tie_range")
        lines.append(
            f"| {r['method']} | {_fmt(r['mnocoap'])} | {_fmt(pub)} | "
            f"{'—' if diff is None else f'{diff:+.3f}'} | {_fmt(r['pd'])} | {_fmt(r['fa'])} | "
            f"{_fmt(r['s_median'], 3)} | {r['peak_mib']:.0f} | {_fmt(r['mnocoap_other'])} |"
            + ((" — |" if spread is None else f" {spread[0]:.3f}–{spread[1]:.3f} |")
               if ties else ""))
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
    ap.add_argument("--tie-orders", type=count_or_zero, default=20, metavar="N",
                    help="also evaluate each method under N random orders of its tied scores "
                    "and print the min-max (0: off)")
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
    except (ValueError, TypeError, KeyError) as exc:
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
                                      progress=not args.no_progress)
        res = evaluate(args.dataset, records)
        partials[name] = load_partials(os.path.join(out, "partial"), ids)
        res_other = evaluate(args.dataset, collect_records(list(partials[name].values()), other))
        rows.append({"method": name, "mnocoap": res["noco"]["mNoCoAP"],
                     "pd": res["irstd"]["Pd"], "fa": res["irstd"]["Fa_per_image"],
                     "s_median": summary["seconds_per_image_median"],
                     "s_total": summary["seconds_total_method"],
                     "peak_mib": summary["peak_mib_max"],
                     "mnocoap_other": res_other["noco"]["mNoCoAP"],
                     "tie_range": (tie_order_range(args.dataset, records, args.tie_orders)
                                   if args.tie_orders > 0 else None)})
        table = build_table(rows, args.protocol, other, args.tie_orders) + note
        with open(os.path.join(args.output, "table.md"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(args.output, "rows.json"), "w") as f:
            json.dump(rows, f, indent=2)
        print(f"[{name}] mNoCoAP={rows[-1]['mnocoap']:.4f} "  # noqa: E501
              f"method time {summary['seconds_total_method']:.0f} s", flush=True)
    print(build_table(rows, args.protocol, other, args.tie_orders) + note)
    unfinished = [r["method"] for r in rows if r.get("done")]
    if unfinished:
        print("\n" + subset_table(args.dataset, ids, partials, unfinished, args.protocol))
    total = sum(r["s_total"] for r in rows)
    print(f"\nsum of per-image method times: {total / 60:.1f} min; wall time of this "
          f"invocation: {(time.time() - t0) / 60:.1f} min (workers={args.workers})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
