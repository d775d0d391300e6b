#!/usr/bin/env python3
"""Build a pure-Python ``detectron2`` wheel from the ``pb1-detectron2==0.6`` sdist.

The sdist holds the unchanged Python sources of upstream Detectron2 v0.6 but no C++/CUDA
sources, so its own ``setup.py`` cannot build. This script, as a distribution would:

1. downloads the sdist from PyPI (pinned by SHA-256) unless it is already cached;
2. applies the small compatibility patches listed in ``PATCHES`` / ``NUMPY_ALIASES`` below
   (each one fails loudly if its target text is not found, so a changed sdist is noticed);
3. adds ``detectron2/_C.py``, a placeholder for the C++ extension that raises a clear error
   naming the missing op (deformable conv, rotated boxes, fast COCOeval);
4. writes its own pure-Python ``setup.py`` and builds ``detectron2-0.6+pure-py3-none-any.whl``.

The wheel installs as the distribution ``detectron2`` (so ``pip show detectron2`` and
``pip uninstall detectron2`` work). Usage::

    python third_party/detectron2/build_wheel.py --out .cache/wheels
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

SDIST_PROJECT = "pb1-detectron2"
SDIST_NAME = "pb1-detectron2-0.6.tar.gz"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
WHEEL_VERSION = "0.6+pure"

# (file, old text, new text, why). Each must match exactly once.
PATCHES = [
    (
        "detectron2/data/transforms/transform.py",
        "interp=Image.LINEAR",
        "interp=Image.BILINEAR",
        "Pillow 10 removed the Image.LINEAR alias (same filter as BILINEAR).",
    ),
    (
        "detectron2/model_zoo/model_zoo.py",
        "import pkg_resources\n",
        "",
        "setuptools 80+ no longer ships pkg_resources.",
    ),
    (
        "detectron2/model_zoo/model_zoo.py",
        'cfg_file = pkg_resources.resource_filename(\n        "detectron2.model_zoo", os.path.join("configs", config_path)\n    )',
        'cfg_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", config_path)',
        "Locate bundled model-zoo configs without pkg_resources.",
    ),
    (
        "detectron2/modeling/meta_arch/retinanet.py",
        "norm_name = str(type(get_norm(norm, 1)))",
        "norm_name = str(type(get_norm(norm, 32)))",
        "Probing the norm type with 1 channel builds GroupNorm(32, 1), which raises in torch>=1.13 "
        "(breaks RetinaNet/FCOS with NORM='GN').",
    ),
    (
        "detectron2/layers/nms.py",
        "    return torch.ops.detectron2.nms_rotated(boxes, scores, iou_threshold)",
        "    try:\n"
        "        op = torch.ops.detectron2.nms_rotated\n"
        "    except (AttributeError, RuntimeError):\n"
        "        from detectron2 import _C\n"
        "\n"
        "        op = _C.nms_rotated  # pure-Python build: raises an error naming the missing op\n"
        "    return op(boxes, scores, iou_threshold)",
        "The rotated NMS op lives in the C++ extension: fail with the placeholder's clear message "
        "instead of an opaque '_OpNamespace' AttributeError.",
    ),
]

# numpy 1.24 removed these aliases; replace them by what they always meant.
NUMPY_ALIASES = {"np.bool": "bool", "np.int": "np.int64", "np.float": "np.float64", "np.str": "str"}
_ALIAS_RE = re.compile(r"\bnp\.(bool|int|float|str)\b(?!_)")

PLACEHOLDER_C = '''"""Placeholder for Detectron2's C++/CUDA extension (pure-Python build).

This detectron2 was installed as a pure-Python wheel (see DeepInfrared-D2's
third_party/detectron2/build_wheel.py). Everything runs except the few ops implemented only
in C++: deformable convolution, rotated-box IoU / RoIAlignRotated, and the fast COCOeval
(use ``COCOEvaluator(..., use_fast_impl=False)``). Install detectron2 from source to get them.
"""


def get_compiler_version() -> str:
    return "none (pure-Python detectron2 build, no C++ extension)"


def get_cuda_version() -> str:
    return "none (pure-Python detectron2 build, no C++ extension)"


def has_cuda() -> bool:
    return False


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotImplementedError(
        f"detectron2._C.{name} is not available: this detectron2 is a pure-Python build without "
        "the C++/CUDA extension (needed by deformable conv, rotated boxes and the fast COCOeval). "
        "Use COCOEvaluator(use_fast_impl=False), avoid the op, or install detectron2 from source "
        "(see README: 'Detectron2 from source')."
    )
'''

SETUP_PY = f'''from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="{WHEEL_VERSION}",
    author="FAIR (pure-Python packaging by DeepInfrared-D2)",
    url="https://github.com/facebookresearch/detectron2",
    description="Detectron2 v0.6 Python sources (from pb1-detectron2==0.6) with compatibility "
    "patches and a placeholder for the C++ extension.",
    license="Apache-2.0",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={{"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]}},
    python_requires=">=3.8",
    install_requires=[
        "Pillow>=7.1", "matplotlib", "pycocotools>=2.0.2", "termcolor>=1.1", "yacs>=0.1.8",
        "tabulate", "cloudpickle", "tqdm>4.29.0", "tensorboard", "fvcore>=0.1.5,<0.1.6",
        "iopath>=0.1.7,<0.1.10", "omegaconf>=2.1", "hydra-core>=1.1",
    ],
)
'''


def index_urls() -> list[str]:
    """The package indexes pip is configured with (env, pip config), PyPI by default.

    ``pip download`` cannot fetch this sdist (its metadata declares a direct-URL extra), so the
    file is looked up on the indexes' simple pages, as pip would.
    """
    urls = []
    env = os.environ
    if env.get("PIP_INDEX_URL"):
        urls.append(env["PIP_INDEX_URL"])
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True).stdout
    conf = dict(re.findall(r"^\S*?\.?(index-url|extra-index-url)='(.*)'$", listing, re.M))
    if "index-url" in conf:
        urls.append(conf["index-url"])
    if not urls:
        from pip._internal.models.index import PyPI

        urls.append(PyPI.simple_url)
    urls += env.get("PIP_EXTRA_INDEX_URL", "").split() + conf.get("extra-index-url", "").split()
    return list(dict.fromkeys(urls))


def find_sdist_url() -> str:
    """URL of ``SDIST_NAME`` on the first configured index that lists it."""
    tried = []
    for index in index_urls():
        page = index.rstrip("/") + f"/{SDIST_PROJECT}/"
        try:
            with urllib.request.urlopen(page, timeout=60) as r:
                html = r.read().decode("utf-8", "replace")
        except (OSError, ValueError) as e:
            tried.append(f"{page} ({e})")
            continue
        for href in re.findall(r'href="([^"]+)"', html):
            if href.split("#")[0].endswith("/" + SDIST_NAME) or href.split("#")[0] == SDIST_NAME:
                return urllib.parse.urljoin(page, href.split("#")[0])
        tried.append(f"{page} (no {SDIST_NAME})")
    sys.exit("error: could not find " + SDIST_NAME + " on any package index: " + "; ".join(tried))


def fetch_sdist(cache: Path) -> Path:
    """Return the path of the verified sdist, downloading it into ``cache`` if needed."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / SDIST_NAME
    if not path.exists():
        url = find_sdist_url()
        print(f"downloading {url}", flush=True)
        tmp = path.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
        tmp.rename(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        path.unlink()
        sys.exit(f"error: {path} has SHA-256 {digest}, expected {SDIST_SHA256}; removed it, retry.")
    return path


def apply_patches(src: Path) -> list[str]:
    """Apply every compatibility patch in place under ``src``; return a log of what changed."""
    log = []
    for rel, old, new, why in PATCHES:
        f = src / rel
        text = f.read_text()
        if text.count(old) != 1:
            sys.exit(f"error: patch target not found exactly once in {rel}: {old!r}")
        f.write_text(text.replace(old, new))
        log.append(f"{rel}: {why}")
    for f in sorted((src / "detectron2").rglob("*.py")):
        text = f.read_text()
        new_text, n = _ALIAS_RE.subn(lambda m: NUMPY_ALIASES["np." + m.group(1)], text)
        if n:
            f.write_text(new_text)
            log.append(f"{f.relative_to(src)}: {n} removed numpy alias(es) (numpy>=1.24)")
    (src / "detectron2" / "_C.py").write_text(PLACEHOLDER_C)
    log.append("detectron2/_C.py: placeholder for the C++ extension")
    return log


def build(out: Path, cache: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    sdist = fetch_sdist(cache)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / "pb1-detectron2-0.6"
        keep = src.parent / "build"
        keep.mkdir()
        shutil.copytree(src / "detectron2", keep / "detectron2")
        shutil.copy(src / "LICENSE", keep / "LICENSE")
        for line in apply_patches(keep):
            print("  patched", line)
        (keep / "setup.py").write_text(SETUP_PY)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
             "-w", str(out), str(keep)],
            check=True,
        )
    wheels = sorted(out.glob("detectron2-0.6+pure-*.whl"))
    if not wheels:
        sys.exit(f"error: no detectron2 wheel was written to {out}")
    print(f"built {wheels[-1]}")
    return wheels[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(".cache/wheels"), help="wheel output folder")
    ap.add_argument("--cache", type=Path, default=Path(".cache/sdist"), help="sdist cache folder")
    args = ap.parse_args()
    build(args.out, args.cache)


if __name__ == "__main__":
    main()
