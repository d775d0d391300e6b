"""NoCo ground-truth maps and the mNoCoAP evaluator."""
from .noco_map import noco_map

__all__ = ["noco_map"]
