"""Argument checks shared by every command-line tool (torch-free).

A user error (a count below 1, an output path that is a file, ...) is one line on stderr and
exit code 2, before any work starts::

    ap = ArgumentParser(description=...)
    ap.add_argument("--k", type=count, default=5)
    ap.add_argument("--workers", type=workers, default=1)      # 0 = all cores
    ap.add_argument("--output", type=output_dir, required=True)
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import NoReturn

EXIT_USAGE = 2  # exit code of every user error


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (``prog: error: ...``), exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def count(text: str) -> int:
    """An integer >= 1."""
    n = _int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def count_or_zero(text: str) -> int:
    """An integer >= 0 (0 usually means "all" or "none"; the option's help says which)."""
    n = _int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} must be at least 0")
    return n


def finite_float(text: str) -> float:
    """A finite float."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers(text: str) -> int:
    """Worker processes: 1 .. the available cores; 0 = all cores; more are capped (noted)."""
    n = _int(text)
    cores = available_cores()
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} must be at least 0 (0 = all {cores} cores)")
    if n > cores:
        print(f"note: {n} workers capped at the {cores} available cores", file=sys.stderr)
    return min(n, cores) if n else cores


def check_output_dir(path: str) -> str:
    """Create the folder ``path`` if needed; raise ``ValueError`` when it is a file or cannot
    be created or written to."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"output folder {path} is a file")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the output folder {path} ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to the output folder {path}")
    return path


def output_dir(text: str) -> str:
    """argparse type: an output folder, created now (see ``check_output_dir``)."""
    try:
        return check_output_dir(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(text: str) -> str:
    """argparse type: an output file whose folder is created now; not an existing folder."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"output file {text} is a folder")
    output_dir(os.path.dirname(os.path.abspath(text)))
    if os.path.exists(text) and not os.access(text, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write to the output file {text}")
    return text


def fail(message: str) -> NoReturn:
    """End the program on a user error: ``error: <message>`` on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def input_file(text: str) -> str:
    """argparse type: an existing file."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text
