"""DeepInfrared-D2: a Detectron2 plugin for single-frame infrared small target detection."""
import os

from setuptools import find_packages, setup

TEST_MARKER = "# --- test ---"


def requirements():
    """(runtime, test) requirement lines of requirements.txt, the one dependency list."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
    runtime, test = [], []
    current = runtime
    with open(path) as f:
        for line in f:
            if line.strip() == TEST_MARKER:
                current = test
            req = line.split("#", 1)[0].strip()
            if req:
                current.append(req)
    return runtime, test


RUNTIME, TEST = requirements()

setup(
    name="deepinfrared-d2",
    version="0.1.0",
    description="SIRST-V2 catalog, NoCo maps, the mNoCoAP evaluator, OSCAR and classical "
    "baselines for Detectron2.",
    python_requires=">=3.9",
    packages=find_packages(include=["deepinfrared_d2", "deepinfrared_d2.*", "baselines",
                                    "baselines.*", "sirst", "sirst.*"])
    + ["oscar", "fcos"],
    package_dir={"oscar": "projects/OSCAR/oscar", "fcos": "projects/FCOS/fcos"},
    install_requires=RUNTIME,
    extras_require={"test": TEST},
)
