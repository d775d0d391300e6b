"""Classical (model-driven) single-frame infrared small target detectors for SIRST-V2.

Public API::

    import baselines
    baselines.list_methods()                    # ['aagd', 'admd', 'fkrw', 'ipi', ...]
    m = baselines.get_method("ipi")             # m.defaults, m.citation
    target_map = m(image, **overrides)          # image (H, W) -> map (H, W) float64
    target_map = m(image, device="cuda")        # IPI/NIPPS/RIPT/PSTNN: PyTorch solver on a GPU
    pts = baselines.detect_points(target_map, image, protocol="p1", k=5)  # (m, 3) x, y, score
    boxes = baselines.points_to_boxes(target_map, pts)                    # (m, 4) x, y, w, h

Importing this package (and its methods) does not import torch or detectron2; torch is
imported only when a PyTorch path is asked for (``device="cuda"`` / ``"cpu-torch"``, see
``baselines.devices``).
"""
from .protocol import PROTOCOLS, detect_points, points_to_boxes
from .registry import Method, get_method, list_methods, prepare_image

CORE_METHODS = ("lcm", "wldm", "mpcm", "fkrw", "ipi", "nipps", "ript", "tophat", "maxmedian",
                "tllcm", "pstnn")
# mNoCoAP on SIRST-V2 test_full published in OSCAR (Dai et al., IEEE TGRS 2023).
PUBLISHED_MNOCOAP = {"lcm": 0.207, "wldm": 0.112, "fkrw": 0.278, "ipi": 0.377, "mpcm": 0.322,
                     "nipps": 0.335, "ript": 0.293}

__all__ = ["Method", "get_method", "list_methods", "prepare_image", "detect_points",
           "points_to_boxes", "PROTOCOLS", "CORE_METHODS", "PUBLISHED_MNOCOAP"]
