"""NIPPS - non-negative IPI with partial sum minimisation of singular values (spec 3.6).

Same iterates as a straightforward IALM with a full SVD per iteration, computed as in IPI
(``baselines.methods.ipi``): the patch-image is made tall (n >= m) by transposing if needed;
while E = 0 (the first ~10 iterations: lam/mu is large) every iterate is a function of D's
SVD and the IALM reduces to scalar recursions on D's singular values, the common factor of
all singular directions outside the held leading ones included (:class:`_Spectral`); then
every iteration gets the singular triplets of X = D - E + Y/mu above 1/mu (and the N largest)
from X^T X (:func:`~.svd.svt_pairs`; float32 Gram/products with the dominant directions in
float64 on large images, block Krylov at low rank), and forms PSSV(X) = X V diag(s'/s) V^T
either from the r selected vectors (2 n m r) or, when r > m/2 (the full-rank phase of the
last iterations), as one product X @ M with M (m, m) = V diag(s'/s) V^T (n m^2).
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional

import numpy as np

from ..registry import register
from .patches import extract_patches, patch_grid, reconstruct_mean
from .svd import DEFLATE, LOWP_MIN_SIZE, Factor, Spectrum, svt_pairs


def energy_rank(d: np.ndarray, ratio: float, spec: Optional[Spectrum] = None) -> int:
    """Count of leading singular values of ``d`` with s_i / s_1 >= ratio (at least 1;
    min(shape) when none falls below), exact (Gram eigenvalues). ``spec``: D's
    :class:`~.svd.Spectrum` when already computed (d tall)."""
    if spec is None:
        spec = Spectrum(d if d.shape[0] >= d.shape[1] else np.ascontiguousarray(d.T), False)
    if spec.s[0] <= 0:
        return 1
    spec.cover(ratio * spec.s[0] * (1.0 - 1e-12))
    below = np.nonzero(spec.s / spec.s[0] < ratio)[0]
    if len(below) == 0:
        return len(spec.s)
    return max(int(below[0]), 1)


def _pssv_scale(s: np.ndarray, thr: float, keep: int) -> np.ndarray:
    """s' / s for PSSV: the ``keep`` largest singular values unchanged, the others
    soft-thresholded by ``thr``."""
    out = np.ones_like(s)
    tail = s[keep:]
    out[keep:] = np.divide(np.maximum(tail - thr, 0.0), tail, out=np.zeros_like(tail),
                           where=tail > 0)
    return out


class _Spectral:
    """The IALM while E = 0: A = sum a_i u_i v_i^T and Y = sum y_i u_i v_i^T on D's singular
    pairs; outside the ``spec.k`` held ones a_i = 0 and y_i = gamma s_i."""

    def __init__(self, spec: Spectrum, y_scale: float):
        self.spec = spec
        self.a = np.zeros(spec.k)
        self.y = spec.s[:spec.k] * y_scale
        self.gamma = y_scale

    def _held(self) -> np.ndarray:
        grow = self.spec.k - len(self.a)
        if grow:
            s_new = self.spec.s[len(self.a):self.spec.k]
            self.a = np.append(self.a, np.zeros(grow))
            self.y = np.append(self.y, self.gamma * s_new)
        return self.spec.s[:self.spec.k]

    def e_input(self, mu: float, out: np.ndarray) -> np.ndarray:
        """out = D - A + Y/mu (n, m) = c D + held low-rank part."""
        s = self._held()
        c = 1.0 + self.gamma / mu
        self.spec.low_rank(s - self.a + self.y / mu - c * s, out=out)
        out += c * self.spec.dmat
        return out

    def step(self, mu: float, thr: float, keep: int, d_norm2: float):
        """PSSV, Z and Y updates of one iteration with E = 0: (rank, ||Z||_F^2)."""
        spec = self.spec
        while True:  # outside the held pairs, x_i = (1 + gamma/mu) s_i must stay <= thr and
            s = self._held()  # below the keep largest
            x = s + self.y / mu
            order = np.argsort(-np.abs(x), kind="stable")
            tail = spec.s[spec.k] * (1.0 + self.gamma / mu) if spec.k < spec.m else 0.0
            kth = abs(x[order[keep - 1]]) if 0 < keep <= len(x) else np.inf
            if spec.k == spec.m or (tail <= thr and tail <= kth and spec.k > keep):
                break
            spec.cover(0.5 * spec.s[spec.k])
        a = np.zeros_like(x)
        top, rest = order[:keep], order[keep:]
        a[top] = x[top]
        a[rest] = np.copysign(np.maximum(np.abs(x[rest]) - thr, 0.0), x[rest])
        rank = int(np.count_nonzero(a))
        z = s - a
        z2 = float(np.dot(z, z)) + max(d_norm2 - float(np.dot(s, s)), 0.0)
        self.a = a
        self.y += mu * z
        self.gamma += mu
        return rank, z2

    def dense(self, a_out: np.ndarray, y_out: np.ndarray) -> None:
        """Write A and Y as dense (n, m) arrays."""
        s = self._held()
        self.spec.low_rank(self.a, out=a_out)
        self.spec.low_rank(self.y - self.gamma * s, out=y_out)
        y_out += self.gamma * self.spec.dmat


def ialm_pssv(d: np.ndarray, lam: float, n_keep: Optional[int] = None, tol: float = 1e-7,
              max_iter: int = 1000, rho: float = 1.5, info: Optional[Dict] = None,
              ratio: float = 0.005, lowp: Optional[bool] = None,
              e_tol: Optional[float] = None) -> np.ndarray:
    """Non-negative sparse part E of D = A + E by inexact ALM with PSSV (keep the ``n_keep``
    largest singular values; None: :func:`energy_rank` with ``ratio``). ``d``: (n, m)
    float64, n >= m. Returns E (n, m) >= 0; ``info`` receives iterations, n_keep, the stop
    reason and a per-iteration trace (rank, relative residual, seconds, relative change of
    E). ``e_tol``: an extra, *non-published* stop once ||E_new - E|| <= e_tol ||E_new||
    (None: off, the published solver)."""
    n, m = d.shape
    if n < m:
        raise ValueError("ialm_pssv expects a tall matrix (transpose it)")
    lowp = n * m >= LOWP_MIN_SIZE if lowp is None else lowp
    spec = Spectrum(d, lowp)
    if n_keep is None:
        n_keep = energy_rank(d, ratio, spec)
    norm2 = float(spec.s[0])
    norm_inf = float(np.abs(d).max()) / lam
    mu = 1.25 / norm2
    mu_bar = mu * 1e7
    d_norm2 = float(np.vdot(d, d))
    d_norm = np.sqrt(d_norm2)
    spectral: Optional[_Spectral] = _Spectral(spec, 1.0 / max(norm2, norm_inf))
    a = np.empty_like(d)
    e = np.zeros_like(d)
    x = np.empty_like(d)
    y = None
    work32 = np.empty(d.shape, np.float32) if lowp else None
    basis = spec.v[:, :DEFLATE]
    v_prev = None
    e_old = np.zeros_like(d) if e_tol is not None or info is not None else None
    e_change = 1.0  # ||E_new - E|| / ||E_new|| (1 while E = 0)
    reason, it = "max_iter", 0
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        thr = 1.0 / mu
        fresh = False  # x holds D - A + Y/mu
        if spectral is not None:
            spectral.e_input(mu, out=x)
            if float(x.max()) <= lam / mu:  # E stays 0
                rank, z2 = spectral.step(mu, thr, n_keep, d_norm2)
                err = np.sqrt(z2) / d_norm
            else:  # leave the spectral phase
                y = np.empty_like(d)
                spectral.dense(a, y)
                v_prev = spec.v[:, :max(int(np.count_nonzero(spectral.a)), n_keep, 1)]
                spectral, fresh = None, True
        if spectral is None:
            # E = max(D - A + Y/mu - lam/mu, 0); X = D - E + Y/mu
            if fresh:
                np.subtract(x, lam / mu, out=e)
                np.maximum(e, 0.0, out=e)
                x += a
            else:
                np.multiply(y, 1.0 / mu, out=x)
                x += d
                np.subtract(x, a, out=e)
                e -= lam / mu
                np.maximum(e, 0.0, out=e)
            if e_old is not None:
                np.subtract(e_old, e, out=e_old)
                e_norm = float(np.sqrt(np.vdot(e, e)))
                e_change = float(np.sqrt(np.vdot(e_old, e_old))) / e_norm if e_norm > 0 else 1.0
                np.copyto(e_old, e)
            x -= e
            fac = Factor(x, lowp, basis, work32, a)
            s, v = svt_pairs(fac, thr, keep=n_keep, start=v_prev)
            scale = _pssv_scale(s, thr, n_keep)
            nz = (scale > 0) & (s > 0)
            s, v, scale = s[nz], v[:, nz], scale[nz]
            rank = len(s)
            fac.low_rank(v, scale, out=a, work32=work32)  # A = PSSV(X)
            v_prev = v
            if lowp and rank:
                basis = v[:, :DEFLATE]
            # Z = D - A - E; Y += mu Z
            np.subtract(d, a, out=x)
            x -= e
            err = float(np.sqrt(np.vdot(x, x))) / d_norm
            x *= mu
            y += x
        mu = min(rho * mu, mu_bar)
        if info is not None:
            info.setdefault("trace", []).append(
                (rank, float(f"{err:.3g}"), round(time.perf_counter() - t0, 2),
                 float(f"{e_change:.3g}")))
        if err < tol:
            reason = "tol"
            break
        if e_tol is not None and e_change <= e_tol:
            reason = "e_tol"
            break
    if info is not None:
        info.update(iterations=it, n_keep=n_keep, stop=reason)
    return e


def nipps_target(image: np.ndarray, patch: int = 50, step: int = 10, lam_l: float = 2.0,
                 ratio: float = 0.005, tol: float = 1e-7, max_iter: int = 1000,
                 info: Optional[Dict] = None, lowp: Optional[bool] = None,
                 e_tol: Optional[float] = None,
                 solver: Optional[Callable[..., np.ndarray]] = None) -> np.ndarray:
    """Non-negative target image E (H, W) of NIPPS (mean reconstruction, Dai grid). ``info``,
    ``lowp`` and ``e_tol``: see :func:`ialm_pssv`; ``solver``: a function with its signature
    (default :func:`ialm_pssv`; the PyTorch path passes its own)."""
    h, w = image.shape
    rows, cols = patch_grid((h, w), patch, step, "dai")
    d = extract_patches(image, rows, cols, patch, order="col").reshape(-1, patch * patch)
    lam = lam_l / np.sqrt(min(d.shape))
    wide = d.shape[0] < d.shape[1]
    e = (solver or ialm_pssv)(np.ascontiguousarray(d.T) if wide else d, lam, None, tol,
                              max_iter, info=info, ratio=ratio, lowp=lowp, e_tol=e_tol)
    if wide:
        e = e.T
    return reconstruct_mean(e.reshape(-1, patch, patch), (h, w), rows, cols, order="col")


@register("nipps", citation="Y. Dai, Y. Wu, Y. Song, J. Guo, \"Non-negative infrared patch-image "
          "model: Robust target-background separation via partial sum minimization of singular "
          "values,\" Infrared Physics & Technology, 81:182-194, 2017.", min_size="patch",
          torch_impl="baselines.torch_solvers.nipps:nipps")
def nipps(image: np.ndarray, patch: int = 50, step: int = 10, lam_l: float = 2.0,
          ratio: float = 0.005, tol: float = 1e-7, max_iter: int = 1000,
          e_tol: Optional[float] = None, *,
          solver: Optional[Callable[..., np.ndarray]] = None) -> np.ndarray:
    """NIPPS: non-negative target image, IALM + PSSV on the 0-255 patch-image.

    Patch 50, step 10 (Dai grid with forced border patches), lam = lam_l / sqrt(min(m, n)),
    N = number of singular values with s_i / s_1 >= ratio, mean reconstruction. ``e_tol``
    (not published, off by default): also stop once the relative change of E per iteration
    is at most ``e_tol``. ``solver``: see :func:`nipps_target`.
    """
    return nipps_target(image, patch, step, lam_l, ratio, tol, max_iter, e_tol=e_tol,
                        solver=solver)
