"""DeepInfrared-D2: SIRST-V2 catalog, NoCo maps and the mNoCoAP evaluator for Detectron2.

Importing the package registers every SIRST-V2 split as ``sirst_v2_<split>`` (lazily).
"""
from . import data  # noqa: F401  (registers datasets)

__version__ = "0.1.0"
