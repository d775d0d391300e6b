"""DeepInfrared-D2: a Detectron2 plugin for single-frame infrared small target detection."""
from setuptools import find_packages, setup

setup(
    name="deepinfrared-d2",
    version="0.1.0",
    description="SIRST-V2 catalog, NoCo maps, the mNoCoAP evaluator, OSCAR and classical "
    "baselines for Detectron2.",
    python_requires=">=3.9",
    packages=find_packages(include=["deepinfrared_d2", "deepinfrared_d2.*", "baselines",
                                    "baselines.*"])
    + ["oscar"],
    package_dir={"oscar": "projects/OSCAR/oscar"},
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "opencv-python-headless>=4.8",
        "pycocotools>=2.0.7",
        "fvcore>=0.1.5",
        "iopath>=0.1.7",
        "tqdm",
    ],
    extras_require={"test": ["pytest>=7"]},
)
