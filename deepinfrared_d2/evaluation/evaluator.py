"""``NoCoEvaluator``: Detectron2 ``DatasetEvaluator`` for mNoCoAP, Pd/Fa and box AP."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from tabulate import tabulate

from sirst.results import (
    Detections,
    ResultsFileError,
    check_record,
    detections_to_records,
    group_record_indices,
    group_records,
    unknown_image_id_error,
    write_json_atomic,
    write_results_file,
)

from .box_ap import coco_box_ap
from .ground_truth import NoCoGroundTruth, load_noco_ground_truth
from .nocoap import (
    NOCO_THRESHOLDS,
    canonical_order,
    centroid_pixels,
    centroids_from_boxes,
    nocoap_with_curves,
)
from .pd_fa import PD_FA_SCORE_THRESHOLD, pd_fa

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"  # the detections, a results file
METRICS_FILE = "metrics.json"  # the figures


def instances_to_detections(instances) -> Detections:
    """A model's ``Instances`` (``scores`` and ``pred_boxes`` XYXY_ABS and/or ``pred_points``)
    as float64 arrays on the CPU, in the model's order."""
    inst = instances.to("cpu")
    scores = inst.scores.double().numpy()
    boxes = inst.pred_boxes.tensor.double().numpy() if inst.has("pred_boxes") else None
    points = inst.pred_points.double().numpy() if inst.has("pred_points") else None
    return Detections(scores, boxes, points)


class NoCoEvaluator(DatasetEvaluator):
    """Evaluate detections on a dataset with ``evaluator_type="noco"``.

    Accepts, per image, ``outputs["instances"]`` with ``pred_boxes`` (XYXY_ABS, original-image
    pixels) or ``pred_points`` ((m, 2) x, y) and ``scores``. ``evaluate()`` returns::

        {"noco": {"NoCoAP10", ..., "NoCoAP90", "mNoCoAP"},
         "irstd": {"Pd", "Fa_per_image", "Fa_per_MP", "score_threshold"},
         "bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl"}}   # box predictions only

    Images that received no prediction count as images without detections. In distributed
    runs predictions are gathered on the main process, which alone returns results. Every
    figure depends only on the set of detections of each image: they are put in the
    canonical order of ``nocoap.canonical_order`` before anything is computed.
    """

    def __init__(self, dataset_name: str, score_threshold: float = PD_FA_SCORE_THRESHOLD,
                 output_dir: Optional[str] = None, distributed: bool = True, box_ap: bool = True,
                 use_cache: bool = True, mask_box_check: Optional[str] = None):
        """
        Args:
            score_threshold: detections scoring at least this count for Pd/Fa (not for AP).
            output_dir: if given, ``metrics.json`` (the figures) and ``predictions.json`` (the
                detections, a results file ``tools/eval_detections.py`` reads back) go there.
            box_ap: also compute COCO box AP when the predictions are boxes.
            mask_box_check: "error" / "warn" for images whose mask and boxes disagree (None:
                ``$DEEPIR_MASK_BOX_CHECK``, default "error"; see ``ground_truth``).
        """
        self.dataset_name = dataset_name
        self.score_threshold = score_threshold
        self.output_dir = output_dir
        self.distributed = distributed
        self.box_ap = box_ap
        self.use_cache = use_cache
        self.mask_box_check = mask_box_check
        self._gt: Optional[NoCoGroundTruth] = None
        self._records: Optional[List[Dict]] = None
        self.reset()

    # -- data in -----------------------------------------------------------------------------
    def reset(self) -> None:
        self._predictions: Dict[str, Dict[str, Optional[np.ndarray]]] = {}
        self._records_source = "results"
        self._curves: Optional[Tuple[np.ndarray, np.ndarray]] = None

    def add(self, image_id: str, scores: np.ndarray, boxes: Optional[np.ndarray] = None,
            points: Optional[np.ndarray] = None, record_index: Optional[Sequence[int]] = None
            ) -> None:
        """Add (or extend) one image's detections: scores (m,), boxes (m, 4) XYXY_ABS and/or
        points (m, 2) in original-image pixels. With both, the point is the centroid.
        ``record_index`` (m,): the results-file record of each detection, named by errors."""
        if boxes is None and points is None:
            raise ValueError("NoCoEvaluator.add needs boxes or points")
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        boxes = None if boxes is None else np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        points = None if points is None else np.asarray(points, dtype=np.float32).reshape(-1, 2)
        index = np.full(len(scores), -1, np.int64) if record_index is None else \
            np.asarray(record_index, dtype=np.int64).reshape(-1)
        cur = self._predictions.get(str(image_id))
        if cur is not None:
            if ((cur["boxes"] is None) != (boxes is None)
                    or (cur["points"] is None) != (points is None)):
                raise ValueError(f"image {image_id!r}: mixing box and point predictions")
            scores = np.concatenate([cur["scores"], scores])
            boxes = None if boxes is None else np.concatenate([cur["boxes"], boxes])
            points = None if points is None else np.concatenate([cur["points"], points])
            index = np.concatenate([cur["records"], index])
        self._predictions[str(image_id)] = {"scores": scores, "boxes": boxes, "points": points,
                                            "records": index}

    def add_records(self, records: Sequence[Dict], source: str = "results") -> None:
        """Add results-file records (see ``sirst.results``); checks each record."""
        for i, rec in enumerate(records):
            check_record(rec, f"{source}: record {i}")
        kinds = {("bbox" in r, "point" in r) for r in records}
        if len(kinds) > 1:
            raise ResultsFileError(f"{source}: records mix boxes and points; use one kind (a "
                                   "record may carry both a 'point' and a 'bbox')")
        self._records_source = source
        index = group_record_indices(records)  # the order of group_records
        for image_id, d in group_records(records).items():
            self.add(image_id, d.scores, boxes=d.boxes, points=d.points,
                     record_index=index[image_id])

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            d = instances_to_detections(out["instances"])
            self.add(inp["image_id"], d.scores, boxes=d.boxes, points=d.points)

    # -- results out -------------------------------------------------------------------------
    def ground_truth(self) -> NoCoGroundTruth:
        """The dataset's evaluation GT (built once, cached on disk)."""
        if self._gt is None:
            self._gt = load_noco_ground_truth(self._dataset_records(), self.dataset_name,
                                              use_cache=self.use_cache,
                                              mask_box_check=self.mask_box_check)
        return self._gt

    def _dataset_records(self) -> List[Dict]:
        if self._records is None:
            self._records = DatasetCatalog.get(self.dataset_name)
        return self._records

    def evaluate(self) -> "OrderedDict[str, Dict[str, float]]":
        preds = self._predictions
        if self.distributed and comm.get_world_size() > 1:
            comm.synchronize()
            gathered = comm.gather(preds, dst=0)
            if not comm.is_main_process():
                return OrderedDict()
            preds = {}
            for part in gathered:
                preds.update(part)
        # checked on the dataset records, before the ground truth is built
        records = self._dataset_records()
        ids = [str(r["image_id"]) for r in records]
        self._check_image_ids(preds, set(ids))
        if not preds:
            logger.warning("NoCoEvaluator(%s): no prediction received", self.dataset_name)
        per_image, centroids = self._per_image(preds, records)
        gt = self.ground_truth()
        metrics = OrderedDict()
        metrics["noco"], self._curves = nocoap_with_curves(centroids, gt, NOCO_THRESHOLDS)
        metrics["irstd"] = pd_fa(centroids, gt, self.score_threshold)
        with_boxes = [p for p in preds.values() if p["boxes"] is not None]
        if self.box_ap and preds and len(with_boxes) == len(preds):
            metrics["bbox"] = coco_box_ap(
                [p["boxes"] if p["boxes"] is not None else np.zeros((0, 4)) for p in per_image],
                [p["scores"] for p in per_image], gt)
        if self.output_dir:
            self._save(metrics, gt, per_image)
        return metrics

    def precision_recall(self) -> "tuple[np.ndarray, np.ndarray]":
        """The NoCo precision-recall curves behind the last :meth:`evaluate` (main process):
        recall and precision, float32 (9, N), one row per NoCo threshold 0.1 ... 0.9."""
        if self._curves is None:
            raise RuntimeError("NoCoEvaluator.precision_recall() needs evaluate() first")
        return self._curves

    def _per_image(self, preds, records):
        """Per dataset image, in dataset order: the canonical predictions and their centroids
        (float32 (m, 3) x, y, score), each checked to lie inside its image."""
        ids = [str(r["image_id"]) for r in records]
        empty = {"scores": np.zeros(0, np.float32), "boxes": None, "points": None}
        per_image = [self._canonical(preds.get(i, empty)) for i in ids]
        centroids = [self._centroids(p) for p in per_image]
        self._check_inside(centroids, per_image, ids, [(r["height"], r["width"]) for r in records])
        return per_image, centroids

    def _where(self, image_id: str, p, k: int) -> str:
        """Name detection ``k`` of an image: its results-file record when known."""
        rec = int(p["records"][k]) if p.get("records") is not None else -1
        if rec >= 0:
            return f"{self._records_source}: record {rec}"
        return f"image {image_id!r}, detection {k}"

    def _check_image_ids(self, preds, known) -> None:
        unknown = [i for i in preds if i not in known]
        if not unknown:
            return

        def first_record(image_id: str) -> float:
            rec = preds[image_id]["records"]
            rec = rec[rec >= 0]
            return float(rec.min()) if len(rec) else float("inf")

        image_id = min(unknown, key=first_record)
        rec = first_record(image_id)
        where = f"{self._records_source}: record {int(rec)}" if rec < float("inf") else \
            f"image {image_id!r}"
        raise unknown_image_id_error(where, image_id, self.dataset_name, unknown)

    def _check_inside(self, centroids, per_image, ids: List[str], shapes) -> None:
        """Every centroid must be a finite point inside its (height, width) image."""
        for i, (c, p) in enumerate(zip(centroids, per_image)):
            h, w = (int(v) for v in shapes[i])
            bad = np.flatnonzero(centroid_pixels(c, h, w)[2])
            if len(bad):
                k = int(bad[0])
                raise ResultsFileError(
                    f"{self._where(ids[i], p, k)}: detection centre "
                    f"({float(c[k, 0])}, {float(c[k, 1])}) with score {float(c[k, 2])} is not a "
                    f"finite point inside the {w}x{h} image {ids[i]!r}; detections must "
                    "be in original-image pixels (float32)")
    @classmethod
    def _canonical(cls, p):
        """One image's predictions in the canonical order (score, centroid, box)."""
        order = canonical_order(cls._centroids(p), p["boxes"])
        return {k: None if v is None else v[order] for k, v in p.items()}

    @staticmethod
    def _centroids(p) -> np.ndarray:
        if p["points"] is not None:
            return np.concatenate([p["points"], p["scores"][:, None]], axis=1).astype(np.float32)
        if p["boxes"] is None:
            return np.zeros((0, 3), np.float32)
        return centroids_from_boxes(p["boxes"], p["scores"])

    def _save(self, metrics, gt: NoCoGroundTruth, per_image) -> None:
        records = []
        for image_id, p in zip(gt.image_ids, per_image):
            if len(p["scores"]):
                records += detections_to_records(image_id, p["scores"], p["boxes"], p["points"])
        write_results_file(os.path.join(self.output_dir, PREDICTIONS_FILE), records, gt.image_ids)
        write_json_atomic(os.path.join(self.output_dir, METRICS_FILE),
                          {"dataset": self.dataset_name, **metrics}, indent=2)


def evaluate_records(dataset_name: str, records: Sequence[Dict],
                     score_threshold: float = PD_FA_SCORE_THRESHOLD, box_ap: bool = True,
                     output_dir: Optional[str] = None, source: str = "results"):
    """Metrics of results-file records on a registered dataset (see ``NoCoEvaluator``)."""
    ev = NoCoEvaluator(dataset_name, score_threshold=score_threshold, output_dir=output_dir,
                       distributed=False, box_ap=box_ap)
    ev.add_records(records, source)
    return ev.evaluate()


def format_metrics_table(metrics: Dict[str, Dict[str, float]]) -> str:
    """One markdown table of every figure: 9 NoCoAPs, mNoCoAP, Pd, Fa and box AP if present."""
    rows = []
    for task, figures in metrics.items():
        for k, v in figures.items():
            fmt = f"{v:.4f}" if k != "score_threshold" else f"{v:g}"
            rows.append((task, k, fmt))
    return tabulate(rows, headers=["task", "metric", "value"], tablefmt="pipe")
