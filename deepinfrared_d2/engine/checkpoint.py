"""``SIRSTCheckpointer``: Detectron2's checkpointer that never unpickles code and says what it
loaded.

Every tool loads weights through it (training, ``--eval-only``, ``tools/demo.py``,
``tools/convert_pretrained.py``):

- files are read with ``torch.load(weights_only=True)`` (``.pkl``: an unpickler that only
  rebuilds numpy arrays and plain data); anything else is ``CheckpointError("not a
  checkpoint: <path>")``, never advice to unpickle it;
- one log line reports how many model keys were loaded, and which were missing, unexpected
  or of another shape;
- ``require_all=True`` (evaluation, demo) refuses a checkpoint that leaves any model
  parameter or buffer unloaded, naming a few; otherwise (training, fine-tuning) a warning
  says which parts start from scratch.
"""
from __future__ import annotations

import collections
import logging
import os
import pickle
import re
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer

__all__ = ["CheckpointError", "SIRSTCheckpointer", "load_checkpoint_file"]

logger = logging.getLogger(__name__)

# numpy arrays and scalars, as pickled by numpy 1.x (numpy.core) and 2.x (numpy._core)
_NUMPY_GLOBALS = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
                  for n in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype"),
                                                          ("_codecs", "encode"),
                                                          ("collections", "OrderedDict")}
# keys whose absence changes nothing (a counter, not a weight)
_HARMLESS_MISSING = ("num_batches_tracked",)
_FROM_CONFIG = ("pixel_mean", "pixel_std")  # set from MODEL.PIXEL_MEAN/STD when absent


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, not a checkpoint, or does not fit the model."""


class _ArraysUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only (Detectron2 ``.pkl`` model-zoo files)."""

    def find_class(self, module: str, name: str):
        dtype_class = module == "numpy.dtypes" and name.endswith("DType")
        if (module, name) in _NUMPY_GLOBALS or dtype_class:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def _numpy_safe_globals() -> List[Any]:
    from numpy._core import multiarray

    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def load_checkpoint_file(path: str) -> Any:
    """The object stored in a checkpoint file, read without running code from it.

    ``.pkl``: plain data and numpy arrays; anything else: ``torch.load(weights_only=True)``
    (tensors, plain data, numpy arrays) on the CPU. Raises ``CheckpointError`` naming the file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        if path.endswith(".pkl"):
            with open(path, "rb") as f:
                return _ArraysUnpickler(f, encoding="latin1").load()
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        if isinstance(e, (PermissionError, IsADirectoryError)):
            raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror}") from None
        raise CheckpointError(f"not a checkpoint: {path}") from None
    except Exception as e:  # noqa: BLE001  (arbitrary bytes fail in arbitrary ways)
        # torch's message advises weights_only=False, i.e. running the file's code: not repeated
        found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL|refusing to load "
                          r"the global) (\S+)", str(e))
        raise CheckpointError(f"not a checkpoint: {path}" + (
            f" (it holds Python objects, not only tensors: {found.group(1)})" if found else "")
        ) from None


def _examples(keys: Sequence[str], n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _modules(model_keys: Sequence[str], unloaded: Sequence[str]) -> str:
    """``backbone.fpn_convs (8), head (68)``: the largest modules none of whose keys loaded,
    with their key counts, in model order."""
    unloaded = set(unloaded)
    total, missing = collections.Counter(), collections.Counter()
    for k in model_keys:
        parts = k.split(".")
        for i in range(1, len(parts) + 1):
            total[".".join(parts[:i])] += 1
            missing[".".join(parts[:i])] += k in unloaded
    groups: Dict[str, int] = {}
    for k in model_keys:
        if k in unloaded:
            parts = k.split(".")
            top = next(p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                       if missing[p] == total[p])
            groups[top] = groups.get(top, 0) + 1
    return ", ".join(f"{g} ({c})" for g, c in groups.items())


class SIRSTCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` with safe reading, a one-line load report and, with
    ``require_all=True``, a refusal of checkpoints that leave model weights unloaded."""

    def __init__(self, model, save_dir: str = "", *, require_all: bool = False,
                 **checkpointables):
        super().__init__(model, save_dir, **checkpointables)
        self.require_all = require_all
        self._path = ""

    def load(self, path: str, *args, **kwargs) -> Dict[str, Any]:
        if not path and self.require_all:
            raise CheckpointError("no checkpoint given (MODEL.WEIGHTS is empty): the model would "
                                  "keep its random initial weights")
        if path and "://" not in path and not os.path.isfile(path):
            raise CheckpointError(f"checkpoint not found: {path}")
        self._path = path
        return super().load(path, *args, **kwargs)

    def _load_file(self, filename: str) -> Dict[str, Any]:
        data = load_checkpoint_file(filename)
        if not isinstance(data, dict):
            raise CheckpointError(f"not a checkpoint: {filename} (holds a "
                                  f"{type(data).__name__}, not a dict of weights)")
        if filename.endswith(".pkl") and not ("model" in data and "__author__" in data):
            # Caffe2 / Detectron1 model zoo layout, converted as DetectionCheckpointer does
            data = data.get("blobs", data)
            data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
            data = {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
        elif filename.endswith(".pyth") and "model_state" in data:  # pycls
            data = {"model": {k: v for k, v in data["model_state"].items()
                              if not k.endswith("num_batches_tracked")},
                    "__author__": "pycls", "matching_heuristics": True}
        elif "model" not in data:
            data = {"model": data}
        weights = data["model"]
        if not isinstance(weights, dict) or not all(
                isinstance(v, (torch.Tensor, np.ndarray)) for v in weights.values()):
            raise CheckpointError(f"not a checkpoint: {filename} (its 'model' entry is not a "
                                  "dict of tensors)")
        return data

    def _log_incompatible_keys(self, incompatible) -> None:
        # the weights a checkpoint must hold: not BN's batch counters, nor the input
        # normalisation buffers Detectron2 takes from the config
        weights = [k for k in self.model.state_dict() if not k.endswith(_HARMLESS_MISSING)
                   and k not in _FROM_CONFIG]
        missing = [k for k in incompatible.missing_keys if k in set(weights)]
        shapes = [k for k, *_ in incompatible.incorrect_shapes]
        unexpected = incompatible.unexpected_keys
        logger.info(
            f"Loaded {self._path}: {len(weights) - len(missing) - len(shapes)} of {len(weights)} "
            f"model weights matched, {len(missing)} missing"
            + (f" ({_examples(missing)})" if missing else "")
            + f", {len(unexpected)} unexpected"
            + (f" ({_examples(unexpected)})" if unexpected else "")
            + (f", {len(shapes)} of another shape ({_examples(shapes)})" if shapes else ""))
        unloaded = missing + shapes
        if not unloaded:
            return
        if self.require_all:
            raise CheckpointError(f"{self._path} leaves {len(unloaded)} of {len(weights)} model "
                                  f"weights unloaded (e.g. {_examples(unloaded)}): it was not "
                                  "saved from this model/config")
        logger.warning("%s does not hold %d of %d model weights; these start from scratch: %s",
                       self._path, len(unloaded), len(weights), _modules(weights, unloaded))
