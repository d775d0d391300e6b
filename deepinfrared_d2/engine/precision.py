"""What ``SOLVER.AMP`` / ``TEST.AMP`` mean on a CPU: bfloat16 only where the CPU computes it.

CPUs without bfloat16 instructions (AVX2-only parts: AMD Zen 2/3, most Intel desktops) run
bfloat16 autocast through emulation: on a 2-core AVX2 AMD EPYC one forward+backward of a 3x3
conv (8x32x128x128) took 4.85 s under bfloat16 autocast against 0.12 s in float32 (issue 14).
So ``MODEL.CPU_AMP_DTYPE = "auto"`` picks bfloat16 only where the hardware has AVX512-BF16 or
AMX-BF16 (x86) or BF16 (Arm) *and* oneDNN may use it, float32 otherwise. The choice is made
once per process, from the CPU, and logged in one line.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import FrozenSet, Optional

import torch

__all__ = ["CPUInfo", "cpu_info", "native_bfloat16", "cpu_autocast_dtype", "amp_dtype",
           "describe_cpu", "CPU_AMP_CHOICES", "EMULATED_BF16_COST"]

logger = logging.getLogger(__name__)  # in OUTPUT_DIR/log.txt through engine.setup_cfg

CPU_AMP_CHOICES = ("auto", "bfloat16", "float32")
# Hardware flags (torch.cpu.get_capabilities() / /proc/cpuinfo names) that compute bfloat16.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# The measured cost of emulated bfloat16, quoted by the warning (issue 14).
EMULATED_BF16_COST = ("a 3x3 conv forward+backward took 4.85 s under bfloat16 autocast against "
                      "0.12 s in float32 (40x) on a 2-core AVX2 AMD EPYC")


@dataclass(frozen=True)
class CPUInfo:
    """What decides the CPU precision.

    capability: ``torch.backends.cpu.get_cpu_capability()`` ("AVX2", "AVX512", ...).
    flags: the CPU's bfloat16-related hardware flags that are present (see NATIVE_BF16_FLAGS).
    onednn_bf16: oneDNN may run bfloat16 kernels (False e.g. under ONEDNN_MAX_CPU_ISA=AVX2).
    model: the CPU model name, for the log line.
    """

    capability: str
    flags: FrozenSet[str]
    onednn_bf16: bool
    model: str = "unknown CPU"


def _proc_cpuinfo() -> tuple:
    """(flags, model name) from /proc/cpuinfo (Linux), empty when unreadable."""
    flags, model = set(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                elif key == "model name" and not model:
                    model = value.strip()
    except OSError:
        pass
    return flags, model


@functools.lru_cache(maxsize=None)
def cpu_info() -> CPUInfo:
    """This process's CPU (detected once): capability, bfloat16 flags, oneDNN's bf16 support."""
    proc_flags, model = _proc_cpuinfo()
    caps = dict(torch.cpu.get_capabilities()) if hasattr(torch.cpu, "get_capabilities") else {}
    present = {f for f in NATIVE_BF16_FLAGS if caps.get(f) is True or f in proc_flags}
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    return CPUInfo(capability=torch.backends.cpu.get_cpu_capability(), flags=frozenset(present),
                   onednn_bf16=onednn, model=model or str(caps.get("cpu_name", "unknown CPU")))


def native_bfloat16(info: CPUInfo) -> bool:
    """True when the CPU computes bfloat16 in hardware and oneDNN may use it."""
    return bool(info.flags) and info.onednn_bf16


def cpu_autocast_dtype(setting: str, info: Optional[CPUInfo] = None) -> Optional[torch.dtype]:
    """The autocast dtype of an AMP-enabled CPU run: ``torch.bfloat16`` or None (float32).

    setting: ``MODEL.CPU_AMP_DTYPE``: "auto" (bfloat16 where native, else float32),
    "bfloat16" or "float32" (forced). Logs the choice once per (setting, CPU); forcing
    bfloat16 on a CPU without it warns with the measured cost of emulation.
    """
    if setting not in CPU_AMP_CHOICES:
        raise ValueError(f"MODEL.CPU_AMP_DTYPE must be one of {CPU_AMP_CHOICES}, got {setting!r}")
    info = info or cpu_info()
    native = native_bfloat16(info)
    dtype = torch.bfloat16 if setting == "bfloat16" or (setting == "auto" and native) else None
    _log_choice(setting, info, native, dtype)
    return dtype


def amp_dtype(cfg, enabled: bool, device: str) -> Optional[torch.dtype]:
    """Autocast dtype for a run with ``enabled`` = SOLVER.AMP.ENABLED or TEST.AMP.ENABLED:
    None (float32), float16 on CUDA, ``cpu_autocast_dtype(MODEL.CPU_AMP_DTYPE)`` on a CPU."""
    if not enabled:
        return None
    if device == "cuda":
        return torch.float16
    return cpu_autocast_dtype(cfg.MODEL.CPU_AMP_DTYPE)


@functools.lru_cache(maxsize=None)
def _log_choice(setting: str, info: CPUInfo, native: bool, dtype: Optional[torch.dtype]) -> None:
    has = ", ".join(sorted(info.flags)) or "no AVX512-BF16/AMX-BF16"
    choice = "bfloat16 autocast" if dtype is not None else "float32"
    logger.info(f"CPU precision: {info.model}, capability {info.capability}, {has}, oneDNN "
                f"bfloat16 {'yes' if info.onednn_bf16 else 'no'} -> AMP runs in {choice} "
                f"(MODEL.CPU_AMP_DTYPE={setting}; force with MODEL.CPU_AMP_DTYPE bfloat16|float32)")
    if dtype is not None and not native:
        logger.warning(f"MODEL.CPU_AMP_DTYPE=bfloat16 on a CPU without native bfloat16 "
                       f"(capability {info.capability}): bfloat16 is emulated and much slower "
                       f"than float32 ({EMULATED_BF16_COST}); use MODEL.CPU_AMP_DTYPE auto")


def describe_cpu(info: Optional[CPUInfo] = None) -> str:
    """One line for benchmark output: CPU model, capability, bfloat16, threads, load average."""
    import os

    info = info or cpu_info()
    bf16 = ("native bfloat16 (" + ", ".join(sorted(info.flags)) + ")" if native_bfloat16(info)
            else "no native bfloat16")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{info.model}, capability {info.capability}, {bf16}, {os.cpu_count()} logical "
            f"CPUs, {torch.get_num_threads()} torch threads, load average {load}")
