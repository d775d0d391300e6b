"""IPI - infrared patch-image model, Gao's APG solver (spec 3.5), fast implementation.

Same iterates as the straightforward port (``baselines.methods.reference``: a full SVD of
G_A in every iteration), computed differently:

* The patch-image is built transposed (patches x p^2) as one copy of a strided view, and
  transposed once more if that leaves it wide, so that the solver always sees a tall D
  (n, m), n >= m (RPCA is invariant to transposition).
* **Spectral phase.** While E = 0 (typically the first 10-20 iterations) every iterate is a
  function of D's SVD: G_A = (Y_A + D) / 2 has D's singular vectors, and the APG reduces to
  scalar recursions on D's singular values (:class:`~.svd.Spectrum`, exact leading triplets
  from D^T D, tridiagonalised once). Each iteration only checks, with one low-rank product,
  that the soft threshold of G_E = (D - Y_A) / 2 is still empty.
* **Dense phase.** Once E != 0, G_A is formed densely and its singular triplets above mu/2
  come from the Gram matrix G_A^T G_A (:class:`~.svd.Factor`; float32 with the dominant
  directions split off in float64 on large images) and its float64 eigendecomposition
  restricted to eigenvalues > (mu/2)^2 (:func:`~.svd.eig_above`). Near the rank cap the rank is
  first counted from the inertia of G_A^T G_A - (mu/2)^2 I (:func:`~.svd.count_above`), so the
  final iteration needs no eigenvectors. E is updated on its support only; dense iterates live
  in preallocated buffers; the stopping criterion uses
  ||S_A||^2 + ||S_E||^2 = 2 ||(A_new - Y_A) - (E_new - Y_E)||^2 (valid for tau = 2).
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..registry import register
from .patches import extract_patches, patch_grid, reconstruct_median
from .svd import DEFLATE, LOWP_MIN_SIZE, Factor, Spectrum, count_above, svt_pairs

TAU = 2.0  # Lipschitz constant of the RPCA problem (fixed in Gao's code)


class _Sparse:
    """A dense (n, m) buffer holding a sparse matrix, with its flat support ``idx``."""

    def __init__(self, shape: Tuple[int, int]):
        self.dense = np.zeros(shape)
        self.idx = np.zeros(0, np.int64)

    def assign(self, idx: np.ndarray, vals: np.ndarray) -> None:
        flat = self.dense.reshape(-1)
        flat[self.idx] = 0.0
        flat[idx] = vals
        self.idx = idx

    def values(self) -> np.ndarray:
        return self.dense.reshape(-1)[self.idx]


def _relative_change(new: _Sparse, old: _Sparse) -> float:
    """||new - old||_F / ||new||_F of two sparse iterates (1.0 when new = 0)."""
    v_new, v_old = new.values(), old.values()
    n2 = float(np.dot(v_new, v_new))
    if n2 <= 0.0:
        return 1.0
    cross = float(np.dot(v_new, old.dense.reshape(-1)[new.idx]))
    d2 = n2 + float(np.dot(v_old, v_old)) - 2.0 * cross
    return float(np.sqrt(max(d2, 0.0) / n2))


def _soft_support(ge: np.ndarray, thr: float) -> Tuple[np.ndarray, np.ndarray]:
    """Flat support and values of soft(ge, thr) (signed soft threshold)."""
    idx = np.flatnonzero((ge > thr) | (ge < -thr))
    vals = ge.reshape(-1)[idx]
    vals -= np.copysign(thr, vals)
    return idx, vals


class _SpectralState:
    """A_k, A_{k-1} as coefficients on D's singular pairs u_i v_i^T (E = 0 so far)."""

    def __init__(self, spec: Spectrum):
        self.spec = spec
        self.a = np.zeros(spec.k)
        self.a_prev = np.zeros(spec.k)

    def step(self, beta: float, thr_a: float, thr_e: float, buf: np.ndarray):
        """One APG iteration. Returns (rank, crit numerator^2, ||[A_new, E_new]||^2, E_new
        support or None); ``buf`` receives G_E when E_new != 0."""
        spec = self.spec
        spec.cover(2.0 * thr_a)  # tail singular values of G_A = s_i / 2 stay <= thr_a
        grow = spec.k - len(self.a)
        if grow:
            self.a = np.append(self.a, np.zeros(grow))
            self.a_prev = np.append(self.a_prev, np.zeros(grow))
        y = self.a + beta * (self.a - self.a_prev)
        x = 0.5 * (spec.s[:spec.k] + y)
        a_new = np.copysign(np.maximum(np.abs(x) - thr_a, 0.0), x)
        rank = int(np.count_nonzero(np.abs(x) > thr_a))
        spec.low_rank(y, out=buf)  # Y_A
        np.subtract(spec.dmat, buf, out=buf)
        buf *= 0.5  # G_E = (D - Y_A) / 2
        if max(float(buf.max()), -float(buf.min())) <= thr_e:
            self.a_prev, self.a = self.a, a_new
            return rank, 2.0 * float(np.sum((a_new - y) ** 2)), float(np.sum(a_new ** 2)), None
        return rank, None, None, (y, a_new)


def apg_rpca(d: np.ndarray, lam: float, tol: float = 1e-6, max_iter: int = 1000,
             info: Optional[Dict] = None, lowp: Optional[bool] = None,
             e_tol: Optional[float] = None) -> np.ndarray:
    """Sparse part E of D = A + E by Gao's APG (continuation mu <- max(0.9 mu, 0.005 s4),
    mu0 = s2, rank-stability and 0.3 min(m, n) stops). ``d``: (n, m) float64, n >= m, not
    modified. ``lowp``: float32 Gram matrices and products (default: for large D). Returns E
    (n, m); ``info`` receives iterations, rank, card, the stop reason and a per-iteration
    trace (rank, card, seconds, relative change of E). ``e_tol``: an extra, *non-published*
    stop once ||E_new - E|| <= e_tol ||E_new|| (None: off, the published solver)."""
    n, m = d.shape
    if n < m:
        raise ValueError("apg_rpca expects a tall matrix (transpose it)")
    lowp = n * m >= LOWP_MIN_SIZE if lowp is None else lowp
    spec = Spectrum(d, lowp)
    sv = np.concatenate([spec.s[:4], np.zeros(max(0, 4 - len(spec.s)))])
    mu, mu_bar = float(sv[1]), 0.005 * float(sv[3])
    cap = int(np.floor(0.3 * min(m, n)))  # rank_a > 0.3 min(m, n) stops the solver
    spectral: Optional[_SpectralState] = _SpectralState(spec)
    g = np.empty_like(d)
    h = np.empty_like(d)
    a_cur = a_prev = None
    e_cur, e_new = _Sparse(d.shape), _Sparse(d.shape)
    work32 = np.empty(d.shape, np.float32) if lowp else None
    basis = spec.v[:, :DEFLATE]
    v_prev = None  # right singular vectors of the previous SVT (Krylov start)
    t_k = t_km1 = 1.0
    pre_rank, pre_card, counter = 0, 0, 0
    reason, it, card, rank_a, ranks = "max_iter", 0, 0, 0, [0, 0]
    e_change = 1.0  # ||E_new - E|| / ||E_new|| (1 while E = 0)
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        beta = (t_km1 - 1.0) / t_k
        thr_a, thr_e = mu / TAU, lam * mu / TAU
        capped = False
        if spectral is not None:
            rank_a, num2, fro2, dense = spectral.step(beta, thr_a, thr_e, h)
            card = 0
            if dense is not None:  # E_new != 0: leave the spectral phase (h holds G_E)
                y, a_new = dense
                a_prev, a_cur = np.empty_like(d), np.empty_like(d)
                spec.low_rank(spectral.a, out=a_cur)
                spec.low_rank(a_new, out=a_prev)  # A_new
                idx, vals = _soft_support(h, thr_e)
                e_new.assign(idx, vals)
                card = len(idx)
                # W = (A_new - Y_A) - E_new = A_new - E_new + 2 G_E - D
                spec.low_rank(y, out=g)
                np.subtract(a_prev, g, out=g)
                g.reshape(-1)[idx] -= vals
                num2 = 2.0 * float(np.vdot(g, g))
                fro2 = float(np.sum(a_new ** 2) + np.dot(vals, vals))
                v_prev = spec.v[:, :max(rank_a, 1)]
                spectral = None
        else:
            # G_A = (Y_A + D - Y_E) / 2
            np.subtract(a_cur, a_prev, out=g)
            g *= beta
            g += a_cur
            g += d
            gf = g.reshape(-1)  # Y_E = (1 + beta) E_k - beta E_{k-1}, on their supports
            gf[e_cur.idx] -= (1.0 + beta) * e_cur.values()
            gf[e_new.idx] += beta * e_new.values()  # e_new holds E_{k-1} here
            g *= 0.5
            fac = Factor(g, lowp, basis, work32, h)
            grow = max(ranks[1] - ranks[0], 0)
            if ranks[1] + 1.5 * grow > cap:  # probably the last iteration: count first
                rank_a = count_above(fac.gram(), thr_a * thr_a)
                capped = rank_a > cap
            if not capped:
                s, v = svt_pairs(fac, thr_a, start=v_prev)
                rank_a = len(s)
            np.subtract(d, g, out=h)  # G_E
            idx, vals = _soft_support(h, thr_e)
            e_new.assign(idx, vals)
            card = len(idx)
            e_change = _relative_change(e_new, e_cur)
            if not capped:
                shrink = np.maximum(s - thr_a, 0.0)
                fac.low_rank(v, shrink / s, out=a_prev, work32=work32)  # A_new
                # W = A_new - E_new + 2 G_E - D = G_E - G_A + A_new - E_new
                h -= g
                h += a_prev
                h.reshape(-1)[idx] -= vals
                num2 = 2.0 * float(np.vdot(h, h))
                fro2 = float(np.dot(shrink, shrink) + np.dot(vals, vals))
                v_prev = v
                if lowp and rank_a:
                    basis = v[:, :DEFLATE]
        ranks = [ranks[1], rank_a]
        if info is not None:
            info.setdefault("trace", []).append(
                (rank_a, card, round(time.perf_counter() - t0, 2), float(f"{e_change:.3g}")))
        if capped:  # rank cap reached: E_new is final and A_new would never be used
            e_cur, e_new = e_new, e_cur
            reason = "rank_cap"
            break
        converged = np.sqrt(num2) / (TAU * max(1.0, np.sqrt(fro2))) <= tol
        if converged:
            reason = "tol"
        elif e_tol is not None and e_change <= e_tol:
            converged, reason = True, "e_tol"
        mu = max(0.9 * mu, mu_bar)
        t_km1, t_k = t_k, 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t_k * t_k))
        if a_cur is not None:
            a_prev, a_cur = a_cur, a_prev
        e_cur, e_new = e_new, e_cur
        if pre_rank == rank_a:
            counter += 1
            if counter > 10 and abs(card - pre_card) < 20 and not converged:
                converged, reason = True, "rank_stable"
        else:
            counter = 0
            pre_card = card
        pre_rank = rank_a
        if rank_a > cap and not converged:
            converged, reason = True, "rank_cap"
        if converged:
            break
    if info is not None:
        info.update(iterations=it, rank=rank_a, card=card, stop=reason)
    return e_cur.dense


def ipi_target(image: np.ndarray, patch: int = 50, step: int = 10, lam: Optional[float] = None,
               tol: float = 1e-6, max_iter: int = 1000, info: Optional[Dict] = None,
               lowp: Optional[bool] = None, e_tol: Optional[float] = None,
               solver: Optional[Callable[..., np.ndarray]] = None) -> np.ndarray:
    """Signed target image E (H, W) of IPI (median reconstruction, Gao grid). ``info``,
    ``lowp`` and ``e_tol``: see :func:`apg_rpca`; ``solver``: a function with its signature
    (default :func:`apg_rpca`; the PyTorch path passes its own)."""
    h, w = image.shape
    rows, cols = patch_grid((h, w), patch, step, "gao")
    if len(rows) == 0 or len(cols) == 0:
        return np.zeros((h, w))
    d = extract_patches(image, rows, cols, patch).reshape(-1, patch * patch)
    lo, hi = float(d.min()), float(d.max())
    if hi <= lo:
        return np.zeros((h, w))
    d -= lo
    d *= 1.0 / (hi - lo)
    if lam is None:
        lam = 1.0 / np.sqrt(max(h, w))
    wide = d.shape[0] < d.shape[1]
    e = (solver or apg_rpca)(np.ascontiguousarray(d.T) if wide else d, lam, tol, max_iter, info,
                             lowp, e_tol)
    if wide:
        e = e.T
    return reconstruct_median(e.reshape(-1, patch, patch), (h, w), rows, cols, step)


@register("ipi", citation="C. Gao, D. Meng, Y. Yang, Y. Wang, X. Zhou, A. G. Hauptmann, "
          "\"Infrared Patch-Image Model for Small Target Detection in a Single Image,\" IEEE "
          "Trans. Image Process., 22(12):4996-5009, 2013.", min_size="patch",
          torch_impl="baselines.torch_solvers.ipi:ipi")
def ipi(image: np.ndarray, patch: int = 50, step: int = 10, lam: Optional[float] = None,
        tol: float = 1e-6, max_iter: int = 1000, e_tol: Optional[float] = None, *,
        solver: Optional[Callable[..., np.ndarray]] = None) -> np.ndarray:
    """IPI: max(E, 0), E the APG sparse part of the [0, 1]-normalised patch-image.

    Patch 50, step 10 (Gao grid, uncovered border stays 0), lam = 1/sqrt(max(H, W)) when
    None, median reconstruction. ``e_tol`` (not published, off by default): also stop once
    the relative change of E per iteration is at most ``e_tol``. ``solver``: see
    :func:`ipi_target`.
    """
    return np.maximum(ipi_target(image, patch, step, lam, tol, max_iter, e_tol=e_tol,
                                 solver=solver), 0.0)
