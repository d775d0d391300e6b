"""Where the low-rank methods run: the NumPy path or the PyTorch path on a GPU or the CPU.

``cpu``        the NumPy/SciPy implementation (the reference; every method has it);
``cuda``       the PyTorch implementation on the current CUDA device (float64);
``cpu-torch``  the same PyTorch implementation on the CPU (float64; tests and timings).

Only the methods with a PyTorch implementation (``Method.torch_impl``: IPI, NIPPS, RIPT,
PSTNN) use the device; every other method runs its NumPy code whatever the device. ``auto``
(the command-line default) is ``cuda`` when torch is installed and sees a GPU, else ``cpu``.
Importing this module does not import torch; resolving ``auto`` or ``cuda`` does.
"""
from __future__ import annotations

from typing import Optional

DEVICES = ("cpu", "cuda", "cpu-torch")
CHOICES = ("auto",) + DEVICES


class DeviceError(ValueError):
    """An unknown device, or ``cuda`` on a machine without a usable GPU."""


def cuda_available() -> bool:
    """torch is installed and sees a CUDA device (imports torch)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: Optional[str]) -> str:
    """``auto``/None -> ``cuda`` or ``cpu``; checks the name and that ``cuda`` is usable."""
    name = (device or "auto").lower()
    if name not in CHOICES:
        raise DeviceError(f"unknown device {device!r}; use one of {CHOICES}")
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    if name == "cuda" and not cuda_available():
        raise DeviceError("device 'cuda' requested, but torch is missing or sees no GPU "
                          "(torch.cuda.is_available() is False); use --device cpu")
    if name == "cpu-torch":
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise DeviceError("device 'cpu-torch' needs torch installed") from exc
    return name


def machine_line() -> str:
    """One line naming the machine behind a timing: CPU model, cores, torch's CPU capability
    and the GPU (imports torch when installed)."""
    import os
    import platform

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    line = f"CPU: {model}, {os.cpu_count()} cores"
    try:
        import torch
    except ImportError:
        return line + " (torch not installed)"
    line += f", torch {torch.__version__} CPU capability {torch.backends.cpu.get_cpu_capability()}"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return line + f"; GPU: {gpu}"
