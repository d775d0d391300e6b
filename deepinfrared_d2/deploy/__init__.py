"""Deployment: dense-cell post-processing in NumPy (shared by the PyTorch models and the
exported ones), ONNX export of a trained detector, its int8 quantization, and an ONNX Runtime
detector."""
from .postprocess import cell_detections, nms

__all__ = ["cell_detections", "nms"]
