"""NoCo ground-truth maps, the mNoCoAP metric and its Detectron2 evaluator."""
from sirst.noco_map import noco_map
from sirst.results import ResultsFileError, load_results_file, write_results_file

from .box_ap import coco_box_ap
from .evaluator import NoCoEvaluator, evaluate_records, format_metrics_table
from .ground_truth import NoCoGroundTruth, load_noco_ground_truth
from .nocoap import NOCO_THRESHOLDS, centroids_from_boxes, evaluate_nocoap
from .pd_fa import PD_FA_SCORE_THRESHOLD, mask_pd_fa, pd_fa

__all__ = [
    "NOCO_THRESHOLDS",
    "PD_FA_SCORE_THRESHOLD",
    "NoCoEvaluator",
    "NoCoGroundTruth",
    "ResultsFileError",
    "centroids_from_boxes",
    "coco_box_ap",
    "evaluate_nocoap",
    "evaluate_records",
    "format_metrics_table",
    "load_noco_ground_truth",
    "load_results_file",
    "noco_map",
    "mask_pd_fa",
    "pd_fa",
    "write_results_file",
]
