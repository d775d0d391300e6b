"""Run an exported detector (``tools/export_model.py``) with ONNX Runtime on a CPU: NumPy and
OpenCV around the ONNX graph, no PyTorch in the loop.

    detector = OnnxDetector("out/model.onnx", threads=2)
    boxes, scores, classes = detector(read_image_bgr("image.png"))  # original pixels

Pre-processing is the model's test-time one, read from the file's metadata: keep-ratio resize
(OpenCV bilinear, ``KeepRatioResize``) or none, then BGR -> ``INPUT.FORMAT``; normalisation
and padding are in the graph. Post-processing is ``cell_detections``, as for PyTorch models.
"""
from __future__ import annotations

import json
from typing import Dict, Tuple

import numpy as np

from ..data.transforms import KeepRatioResize
from .onnx_export import METADATA_KEY, OUTPUT_NAMES
from .postprocess import cell_detections

__all__ = ["OnnxDetector", "read_metadata"]


def read_metadata(session) -> Dict:
    """The export metadata of an ONNX Runtime session; ValueError if it has none."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ValueError(f"not exported by tools/export_model.py (no {METADATA_KEY!r} metadata)")
    return json.loads(meta[METADATA_KEY])


class OnnxDetector:
    """An exported detector on ONNX Runtime's CPU execution provider.

    Args:
        path: the .onnx file.
        threads: intra-op threads (0: ONNX Runtime's default, one per physical core).
        spin: let idle worker threads spin-wait (lowest latency on dedicated cores; on
            shared CPUs, as with ``OMP_WAIT_POLICY=PASSIVE`` for PyTorch, pass False).
    Raises:
        ValueError: the file is not an ONNX model exported by this project (message names it).
    """

    def __init__(self, path: str, threads: int = 0, spin: bool = True):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            self.meta = read_metadata(self.session)
        except Exception as e:  # ORT raises its own exception types for unreadable files
            raise ValueError(f"{path}: cannot be loaded as an exported detector: "
                             f"{str(e).splitlines()[0]}") from e
        if self.meta.get("postprocess") != "cell_detections":
            raise ValueError(f"{path}: unknown post-processing {self.meta.get('postprocess')!r}")
        if self.meta["resize_mode"] == "keep_ratio":
            self._resize = KeepRatioResize(*self.meta["keep_ratio_scale"])
        else:
            self._resize = None

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR -> (1, 3, h, w) float32 network input (resized, channel order)."""
        image = bgr if self._resize is None else self._resize.get_transform(bgr).apply_image(bgr)
        if self.meta["input_format"] == "RGB":
            image = image[:, :, ::-1]
        return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)

    def dense(self, image: np.ndarray) -> Tuple[np.ndarray, ...]:
        """The graph's outputs (boxes, select_prob, score_factor) for a (1, 3, h, w) input."""
        return tuple(self.session.run(list(OUTPUT_NAMES), {"image": image}))

    def __call__(self, bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detections of one (H, W, 3) uint8 BGR image: boxes (n, 4) XYXY float32 in original
        pixels, scores (n,) float32 and classes (n,) int64, by decreasing score."""
        image = self.preprocess(bgr)
        outputs = self.dense(image)
        return cell_detections(*(o[0] for o in outputs), image_size=image.shape[-2:],
                               original_size=bgr.shape[:2], **self.meta["postprocess_params"])
