"""The classical methods; importing this package registers them all."""
from . import fkrw, ipi, local_contrast, morphology, nipps, pstnn, ript, wldm  # noqa: F401
