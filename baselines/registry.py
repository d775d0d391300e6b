"""Method registry and the single input-validation wrapper every method goes through.

A *method* maps a grey image (float64, H x W, intensities in 0-255 units) to a target map of
the same shape (float64, larger = more target-like). Methods are registered by lower-case name
with their published default parameters and citation; :func:`get_method` returns a
:class:`Method` whose call validates the input once, here, for every method:

* the image must be 2-D (``ValueError`` naming the shape otherwise);
* ``uint8``/``bool``/other integer and float images are used as they are (0-255 units);
  ``uint16`` images are scaled linearly by 255/65535 into 0-255 (documented; methods with
  absolute constants - RIPT, PSTNN, FKRW - assume 0-255 data);
* non-finite pixels (NaN, +-Inf) are replaced by the median of the finite pixels;
* empty images, images with no finite pixel, constant images and images smaller than the
  method's ``min_size`` (e.g. the patch size of the low-rank methods) give an all-zero map
  immediately, without calling the method;
* the output is checked to have the input's shape and any non-finite value is set to 0.

``method(image, device=...)`` selects the implementation (``baselines.devices``): ``"cpu"``
(default) the NumPy code; ``"cuda"`` / ``"cpu-torch"`` the PyTorch implementation of the
same algorithm (``Method.torch_impl``, imported only then) where the method has one.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = ["Method", "register", "get_method", "list_methods", "prepare_image",
           "parse_param_items"]

_REGISTRY: Dict[str, "Method"] = {}


def prepare_image(image: Any) -> np.ndarray:
    """Validate and convert an image to float64 (H, W) in 0-255 units (see module docstring).

    Raises ``ValueError`` for anything that is not a 2-D numeric array.
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D grey image (H, W), got an array of shape {arr.shape}"
                         + (" (convert colour images to grey first, e.g. cv2.IMREAD_GRAYSCALE)"
                            if arr.ndim == 3 else ""))
    if arr.dtype == np.uint16:
        out = arr.astype(np.float64) * (255.0 / 65535.0)
    elif arr.dtype.kind in "biuf":
        out = arr.astype(np.float64)
    else:
        raise ValueError(f"expected a numeric image, got dtype {arr.dtype}")
    if out.size and not np.isfinite(out).all():
        finite = np.isfinite(out)
        fill = float(np.median(out[finite])) if finite.any() else 0.0
        out = np.where(finite, out, fill)
    return out


def _convert(method: str, key: str, default: Any, value: Any) -> Any:
    """``value`` as the type of ``default`` (see ``Method.params``)."""
    where = f"{method}: parameter {key}={value!r}"
    if isinstance(default, tuple):
        if not isinstance(value, (tuple, list)) or not value:
            raise ValueError(f"{where} must be a non-empty tuple like its default {default!r}")
        return tuple(_convert(method, f"{key}[{i}]", default[0], v) for i, v in enumerate(value))
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{where} must be text like its default {default!r}")
        return value
    if default is None and value is None:
        return None
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if isinstance(default, bool) or not (default is None or isinstance(default, (int, float))):
        return value  # no rule for other kinds of default
    if not number or not np.isfinite(value):
        kind = "an integer" if isinstance(default, int) else "a finite number"
        raise ValueError(f"{where} must be {kind} like its default {default!r}")
    if isinstance(default, int):
        if value != int(value):
            raise ValueError(f"{where} must be an integer like its default {default!r}")
        value = int(value)
        if default >= 1 and value < 1:
            raise ValueError(f"{where} must be at least 1 (its default is {default!r})")
        return value
    value = float(value)
    if (default is None or default > 0) and value <= 0:
        raise ValueError(f"{where} must be positive (its default is {default!r})")
    return value


@dataclass
class Method:
    """A registered method: ``method(image, **overrides) -> target map (H, W) float64``.

    Attributes: ``name``, ``citation``, ``description``, ``defaults`` (a copy of the default
    keyword parameters), ``min_size`` (images whose smaller side is below it give an all-zero
    map; an int, or the name of the parameter holding it, e.g. "patch"), ``torch_impl``
    ("module:function" of the PyTorch implementation, called as ``f(image, device=...,
    **params)``; None when the method has none).
    """

    name: str
    func: Callable[..., np.ndarray]
    citation: str
    description: str
    _defaults: Mapping[str, Any] = field(repr=False)
    min_size: Union[int, str] = 3
    torch_impl: Optional[str] = None

    @property
    def defaults(self) -> Dict[str, Any]:
        return dict(self._defaults)

    def params(self, **overrides: Any) -> Dict[str, Any]:
        """Defaults updated with ``overrides``; unknown names raise ``TypeError``.

        Each override is converted to the type of its default (an int default takes ints, a
        float default numbers, a tuple default a non-empty tuple of its elements' type, a
        ``None`` default a number or None) and a parameter whose default is positive must stay
        positive (sizes, iteration counts, tolerances); anything else raises ``ValueError``
        naming the method, the parameter and the value.
        """
        unknown = sorted(set(overrides) - set(self._defaults))
        if unknown:
            raise TypeError(f"{self.name}: unknown parameter(s) {unknown}; "
                            f"valid: {sorted(self._defaults)}")
        p = dict(self._defaults)
        p.update({k: _convert(self.name, k, self._defaults[k], v) for k, v in overrides.items()})
        return p

    def implementation(self, device: str = "cpu") -> Callable[..., np.ndarray]:
        """The function computing the map on ``device`` (see the module docstring)."""
        from .devices import DEVICES
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; use one of {DEVICES}")
        if device == "cpu" or self.torch_impl is None:
            return self.func
        module, _, name = self.torch_impl.partition(":")
        func = getattr(importlib.import_module(module), name)

        def on_device(image: np.ndarray, **params: Any) -> np.ndarray:
            return func(image, device=device, **params)
        return on_device

    def __call__(self, image: Any, device: str = "cpu", **overrides: Any) -> np.ndarray:
        params = self.params(**overrides)
        func = self.implementation(device)
        img = prepare_image(image)
        h, w = img.shape
        min_size = params[self.min_size] if isinstance(self.min_size, str) else self.min_size
        if img.size == 0 or min(h, w) < max(int(min_size), 3) or img.max() == img.min():
            return np.zeros((h, w), np.float64)
        out = np.asarray(func(img, **params), dtype=np.float64)
        if out.shape != img.shape:
            raise RuntimeError(f"{self.name} returned shape {out.shape} for an image of shape "
                               f"{img.shape}")
        if not np.isfinite(out).all():
            out = np.where(np.isfinite(out), out, 0.0)
        return out


def register(name: str, citation: str, min_size: Union[int, str] = 3,
             torch_impl: Optional[str] = None):
    """Decorator registering ``func(image, **params)`` under ``name`` (``torch_impl``: see
    :class:`Method`).

    The method's parameters and their published defaults are the function's parameters
    after the image (stated once, in its signature); keyword-only parameters (after ``*``)
    are implementation hooks for the library's own callers (e.g. the ``solver`` the PyTorch
    path passes), not method parameters. The first line of the docstring is the method's
    short description.
    """

    def deco(func: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        params = [p for p in list(inspect.signature(func).parameters.values())[1:]  # after image
                  if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        missing = [p.name for p in params if p.default is inspect.Parameter.empty]
        if missing:
            raise TypeError(f"method {name!r}: parameter(s) {missing} need a default")
        defaults = {p.name: p.default for p in params}
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Method(name=name, func=func, citation=citation,
                                 description=doc[0] if doc else "", _defaults=defaults,
                                 min_size=min_size, torch_impl=torch_impl)
        return func

    return deco


def _load() -> None:
    from . import methods  # noqa: F401  (registers everything)


def list_methods() -> List[str]:
    """Names of all registered methods (sorted)."""
    _load()
    return sorted(_REGISTRY)


def get_method(name: str) -> Method:
    """The registered :class:`Method` called ``name`` (case-insensitive)."""
    _load()
    key = name.lower()
    if key not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; available: {sorted(_REGISTRY)}")
    return _REGISTRY[key]


def parse_param_items(items: Sequence[str]) -> Dict[str, Any]:
    """``["lam=0.05", "variant=unsigned"]`` -> ``{"lam": 0.05, "variant": "unsigned"}``
    (values read as Python literals where they parse as one, else kept as strings)."""
    params: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects NAME=VALUE, got {item!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params
