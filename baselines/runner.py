"""Run one method over a dataset: per-image partial results (resumable), optional maps, the
results JSON of ``tools/eval_detections.py`` and ``run.json`` with params and timings.

Layout of ``<output>``::

    run.json                 method, params, protocol, dataset, device, timings, peak memory
    partial/<image_id>.json  points (and boxes) of every protocol, seconds, peak MiB, device,
                             the image's SHA-1 + the parameters they were computed with
    results.json             [{"image_id", "point": [x, y], "score", "bbox": [x, y, w, h]}]
    maps/<image_id>.npz      (--save-maps) map / max as float16 + "scale" (the max)
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import statistics
import time
import tracemalloc
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sirst.dataset import load_dataset
from sirst.image_io import read_gray
from sirst.results import detections_to_records, write_json_atomic, write_results_file

from .devices import resolve_device
from .protocol import PROTOCOLS, detect_points, points_to_boxes
from .registry import get_method

__all__ = ["run_method", "collect_records", "evaluate", "process_image", "load_partials",
           "OutputInUse"]


class OutputInUse(ValueError):
    """``--output`` holds a run made with other settings (a user error)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def image_fingerprint(path: str) -> str:
    """SHA-1 of an image file's bytes (a 1 MB PNG hashes in about 1 ms)."""
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def _json_params(params: Dict[str, Any]) -> Dict[str, Any]:
    """Parameters as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps({a: _jsonable(b) for a, b in params.items()}))


def process_image(method_name: str, params: Dict[str, Any], image_id: str, path: str, k: int,
                  partial_dir: str, maps_dir: Optional[str] = None,
                  device: str = "cpu") -> Dict[str, Any]:
    """Compute one image's map on ``device`` (``baselines.devices``), its points/boxes under
    every protocol, and write ``partial/<image_id>.json`` (atomically) with the image's
    fingerprint and the parameters, which decide whether a resumed run may reuse it. Returns
    the partial record (``peak_mib``: host memory; ``gpu_peak_mib`` on ``cuda``)."""
    method = get_method(method_name)
    fingerprint = image_fingerprint(path) if os.path.isfile(path) else None
    image = read_gray(path)
    cuda = device == "cuda" and method.torch_impl is not None
    if cuda:
        import torch
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    t0 = time.perf_counter()
    target = method(image, device=device, **params)  # returns a NumPy map: synchronised
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    rec: Dict[str, Any] = {"image_id": image_id, "seconds": seconds, "peak_mib": peak,
                           "device": device if method.torch_impl else "cpu",
                           "shape": list(image.shape), "points": {}, "boxes": {},
                           "input_sha1": fingerprint, "params": _json_params(params), "k": k}
    if cuda:
        rec["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    for proto in PROTOCOLS:
        pts = detect_points(target, image, protocol=proto, k=k)
        rec["points"][proto] = pts.tolist()
        rec["boxes"][proto] = points_to_boxes(target, pts).tolist()
    if maps_dir is not None:
        scale = float(np.abs(target).max()) if target.size else 0.0
        norm = target / scale if scale > 0 else target
        np.savez_compressed(os.path.join(maps_dir, f"{image_id}.npz"),
                            map=norm.astype(np.float16), scale=np.float64(scale))
    write_json_atomic(os.path.join(partial_dir, f"{image_id}.json"), rec)
    return rec


def _worker(args: Tuple) -> Dict[str, Any]:
    return process_image(*args)


def stale_partials(done: Dict[str, Dict[str, Any]], images: Sequence[Tuple[str, str]],
                   params: Dict[str, Any], k: int) -> List[str]:
    """Ids of finished images that must be recomputed: the image file changed since (its
    SHA-1 differs), or the partial was made with other parameters or another K."""
    paths = dict(images)
    want = _json_params(params)
    stale = []
    for image_id, rec in done.items():
        same = (rec.get("params") == want and rec.get("k") == k and os.path.isfile(paths[image_id])
                and rec.get("input_sha1") == image_fingerprint(paths[image_id]))
        if not same:
            stale.append(image_id)
    return stale


def load_partials(partial_dir: str, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """image_id -> per-image partial result of the ``ids`` finished in ``partial_dir``,
    in the order of ``ids`` (missing or torn files are left out)."""
    done = {}
    for i in ids:
        p = os.path.join(partial_dir, f"{i}.json")
        if os.path.isfile(p):
            try:
                with open(p) as f:
                    done[i] = json.load(f)
            except (json.JSONDecodeError, OSError):
                pass  # a torn file (should not happen: writes are atomic): redo the image
    return done


def collect_records(partials: Sequence[Dict[str, Any]], protocol: str = "p1"
                    ) -> List[Dict[str, Any]]:
    """Results records of one protocol from per-image partial results (points as the
    centroids, their XYWH boxes for box AP), in the order of ``partials``."""
    records = []
    for rec in partials:
        pts = np.asarray(rec["points"][protocol], dtype=np.float64).reshape(-1, 3)
        xywh = np.asarray(rec["boxes"][protocol], dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        records += detections_to_records(rec["image_id"], pts[:, 2], boxes, pts[:, :2])
    return records


def run_method(method_name: str, dataset: str, output: str,
               params: Optional[Dict[str, Any]] = None, protocol: str = "p1", k: int = 5,
               workers: int = 1, save_maps: bool = False, progress: bool = True,
               limit: Optional[int] = None, device: Optional[str] = "cpu"
               ) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Run ``method_name`` on every image of ``dataset``; resume from ``<output>/partial``.

    Returns the results records of ``protocol`` (also written to ``<output>/results.json``,
    in dataset order) and the run summary (also ``<output>/run.json``). Refuses to resume a
    run made with other parameters. ``device``: see ``baselines.devices`` ("auto" or None:
    cuda when available); it only matters for methods with a PyTorch implementation, and it
    is not a parameter (a run may be resumed on another device; each partial result records
    its own).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
    method = get_method(method_name)
    device = resolve_device(device) if method.torch_impl else "cpu"
    full_params = method.params(**(params or {}))
    images = [(str(r["image_id"]), r["file_name"]) for r in load_dataset(dataset)]
    if limit is not None:
        images = images[:limit]
    ids = [i for i, _ in images]
    partial_dir = os.path.join(output, "partial")
    maps_dir = os.path.join(output, "maps") if save_maps else None
    os.makedirs(partial_dir, exist_ok=True)
    if maps_dir:
        os.makedirs(maps_dir, exist_ok=True)
    run_file = os.path.join(output, "run.json")
    config = {"method": method.name, "params": {a: _jsonable(b) for a, b in full_params.items()},
              "dataset": dataset, "k": k}
    if os.path.isfile(run_file):
        with open(run_file) as f:
            old = json.load(f)
        if isinstance(old.get("params"), dict):  # parameters added since: their defaults
            defaults = {a: _jsonable(b) for a, b in method.params().items()}
            old["params"] = {**defaults, **old["params"]}
        mismatch = [key for key in config if old.get(key) != config[key]]
        if mismatch:
            raise OutputInUse(f"{output} holds a run with different {mismatch} "
                             f"({ {m: old.get(m) for m in mismatch} }); use a new --output")
    write_json_atomic(run_file, {**config, "protocol": protocol, "status": "running"})
    done = load_partials(partial_dir, ids)
    stale = stale_partials(done, images, full_params, k)
    for i in stale:
        del done[i]
    todo = [(i, p) for i, p in images if i not in done]
    if progress and (done or stale):
        print(f"{method.name}: resuming {output}: {len(done)} image(s) reused, {len(stale)} "
              f"recomputed (image or parameters changed), {len(todo) - len(stale)} new",
              flush=True)
    t_start = time.time()
    tasks = [(method.name, full_params, i, p, k, partial_dir, maps_dir, device)
             for i, p in todo]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(ids), initial=len(ids) - len(todo), desc=method.name, unit="img",
                   dynamic_ncols=True)
    try:
        if workers > 1 and len(tasks) > 1:
            # one BLAS thread per worker process (set before the children import numpy)
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(var, "1")
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for rec in pool.imap_unordered(_worker, tasks):
                    done[rec["image_id"]] = rec
                    if bar is not None:
                        bar.update(1)
        else:
            for task in tasks:
                rec = _worker(task)
                done[rec["image_id"]] = rec
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    partials = [done[i] for i in ids]
    records = collect_records(partials, protocol)
    write_results_file(os.path.join(output, "results.json"), records, ids)
    secs = [r["seconds"] for r in partials]
    summary = {**config, "protocol": protocol, "status": "done", "n_images": len(ids),
               "n_records": len(records), "workers": workers, "device": device,
               "seconds_per_image_median": statistics.median(secs),
               "seconds_per_image_mean": statistics.fmean(secs),
               "seconds_per_image_max": max(secs), "seconds_total_method": sum(secs),
               "wall_seconds_this_session": time.time() - t_start,
               "resumed_images": len(ids) - len(todo), "recomputed_images": len(stale),
               "peak_mib_max": max(r["peak_mib"] for r in partials),
               "citation": method.citation}
    write_json_atomic(run_file, summary)
    return records, summary


def evaluate(dataset: str, records: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Metrics (mNoCoAP, Pd/Fa, box AP) of results records with the project's evaluator (imports
    ``deepinfrared_d2``, hence detectron2, here and only here)."""
    from deepinfrared_d2.evaluation import evaluate_records
    return evaluate_records(dataset, records)
