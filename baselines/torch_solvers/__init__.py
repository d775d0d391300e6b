"""PyTorch implementations of the low-rank solvers (IPI, NIPPS, RIPT, PSTNN) for
``device="cuda"`` (or ``"cpu-torch"``), selected through ``Method(image, device=...)``.

Each module runs the *same algorithm with the same stopping rules* as the NumPy method it
mirrors (same patch grid, parameters, initialisation, updates, thresholds and stops), in
float64, and reuses the NumPy code around the solver (patch extraction, priors,
reconstruction): only the iteration moves to torch. The singular value thresholding is
exact: full eigendecompositions of the small Gram matrix (``common.svt``) or, for PSTNN,
batched SVDs of the Fourier slices. Nothing here is imported by ``import baselines``.
"""
