"""Partial SVDs for the low-rank solvers (spec 5.2): singular triplets above a threshold,
either by a warm-started randomised range finder with adaptive rank (low ranks) or by the
eigendecomposition of the small Gram matrix restricted to eigenvalues above thr^2 (high
ranks, or when one side of the matrix is small); plus SVT / partial-sum SVT (PSSV)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.linalg as sla

Triplet = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _orth(y: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(y, mode="reduced")
    return q


def top_singular_values(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The ``k`` largest singular values of ``x`` (descending), accurate to ~1e-10 relative.

    Exact SVD for small matrices, otherwise a randomised range finder with 6 power
    iterations and 10 oversampling columns.
    """
    m = min(x.shape)
    k = min(k, m)
    if m <= 3 * (k + 10) or x.size <= 250_000:
        return np.linalg.svd(x, compute_uv=False)[:k]
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((x.shape[1], k + 10))
    q = _orth(x @ omega)
    for _ in range(6):
        q = _orth(x @ _orth(x.T @ q))
    return np.linalg.svd(q.T @ x, compute_uv=False)[:k]


def gram_triplets(x: np.ndarray, thr: float, keep: int = 0,
                  max_rank: Optional[int] = None, expected_rank: int = 0
                  ) -> Tuple[Optional[Triplet], int]:
    """Exact triplets with singular value > thr (and the ``keep`` largest) of x (n, m) via the
    Gram matrix of its smaller side. Returns (triplets, rank); triplets is None when
    ``max_rank`` is given and exceeded (only eigenvalues computed then)."""
    n, m = x.shape
    small = x.T @ x if m <= n else x @ x.T
    k = small.shape[0]
    if max_rank is not None:
        w = sla.eigh(small, eigvals_only=True, driver="evr", check_finite=False)
        rank = int(np.count_nonzero(w > thr * thr))
        if rank > max_rank:
            return None, rank
    t2 = thr * thr
    if expected_rank > 0.3 * k:  # most of the spectrum: divide and conquer on everything
        w, v = np.linalg.eigh(small)
        sel = w > t2
        if sel.sum() < min(keep, k):
            sel[k - min(keep, k):] = True
        w, v = w[sel], v[:, sel]
    else:
        w, v = sla.eigh(small, driver="evr", check_finite=False, subset_by_value=(t2, np.inf))
    if len(w) < min(keep, k):
        w, v = sla.eigh(small, driver="evr", check_finite=False,
                        subset_by_index=(k - min(keep, k), k - 1))
    w, v = w[::-1], v[:, ::-1]
    r = max(int(np.count_nonzero(w > t2)), min(keep, k))
    s = np.sqrt(np.maximum(w[:r], 0.0))
    v = v[:, :r]
    safe = np.where(s > 0, s, 1.0)
    if m <= n:  # v: right singular vectors
        u = (x @ v) / safe
        return (u, s, np.ascontiguousarray(v.T)), r
    vt = (v.T @ x) / safe[:, None]
    return (np.ascontiguousarray(v), s, vt), r


class PartialSVD:
    """Singular triplets of ``x`` (n, m) down to a threshold, for iterative solvers.

    ``triplets(x, thr, keep)`` returns (U, s, Vt) holding every singular value > ``thr`` (and
    at least the ``keep`` largest). It predicts the rank from the previous call; when a
    randomised SVD of that rank is cheaper than the Gram route it runs one (Halko et al.:
    test matrix = previous right singular vectors + Gaussian columns, ``n_power`` power
    iterations, rank doubled until the smallest computed value is <= thr), otherwise the
    exact Gram-matrix eigendecomposition (:func:`gram_triplets`).
    """

    def __init__(self, oversample: int = 10, n_power: int = 1, seed: int = 0):
        self.oversample = oversample
        self.n_power = n_power
        self.rng = np.random.default_rng(seed)
        self.v_prev: Optional[np.ndarray] = None  # (m, r)
        self.rank = 0

    def _randomised(self, x: np.ndarray, l: int) -> Triplet:
        m = x.shape[1]
        cols = []
        if self.v_prev is not None and self.v_prev.shape[0] == m:
            cols.append(self.v_prev[:, :l])
        extra = l - (cols[0].shape[1] if cols else 0)
        if extra > 0:
            cols.append(self.rng.standard_normal((m, extra)))
        q = _orth(x @ (np.hstack(cols) if len(cols) > 1 else cols[0]))
        for _ in range(self.n_power):
            q = _orth(x @ _orth(x.T @ q))
        ub, s, vt = np.linalg.svd(q.T @ x, full_matrices=False)
        return q @ ub, s, vt

    @staticmethod
    def _costs(n: int, m: int, l: int) -> Tuple[float, float]:
        lo, hi = min(n, m), max(n, m)
        gram = hi * lo * lo + 3.0 * lo ** 3 + 2.0 * n * m * l
        rand = 12.0 * n * m * l + 10.0 * hi * l * l  # 4 products, 2 QRs (measured weights)
        return rand, gram

    def triplets(self, x: np.ndarray, thr: float, keep: int = 0,
                 max_rank: Optional[int] = None) -> Tuple[Optional[Triplet], int]:
        """((U, s, Vt), rank): all singular values > thr (and the ``keep`` largest),
        descending. With ``max_rank``, returns (None, rank) as soon as rank > max_rank is
        certain."""
        n, m = x.shape
        k = max(int(1.5 * self.rank) + 5, keep + 5)
        while True:
            l = k + self.oversample
            rand, gram = self._costs(n, m, l)
            if l >= min(n, m) or rand >= gram:
                trip, r = gram_triplets(x, thr, keep, max_rank if (
                    max_rank is not None and k > 0.8 * max_rank) else None, expected_rank=k)
                if trip is None:
                    return None, r
                u, s, vt = trip
                break
            u, s, vt = self._randomised(x, l)
            if s[-1] <= thr and len(s) > keep:
                r = max(int(np.count_nonzero(s > thr)), min(keep, len(s)))
                u, s, vt = u[:, :r], s[:r], vt[:r]
                break
            if max_rank is not None and l > max_rank + 1 and s[max_rank] > thr:
                return None, int(np.count_nonzero(s > thr))
            k *= 2
        r = len(s)
        self.v_prev = vt[:r].T.copy()
        self.rank = r
        return (u, s, vt), r

    def svt(self, x: np.ndarray, thr: float, keep: int = 0) -> Triplet:
        """Shrunk triplets: the ``keep`` largest singular values unchanged, the others
        soft-thresholded by ``thr`` (keep = 0: SVT; keep = N: PSSV). Zero values dropped."""
        (u, s, vt), _ = self.triplets(x, thr, keep)
        s2 = s.copy()
        s2[keep:] = np.maximum(s2[keep:] - thr, 0.0)
        nz = s2 > 0
        return u[:, nz], s2[nz], vt[nz]


def low_rank(u: np.ndarray, s: np.ndarray, vt: np.ndarray,
             out: Optional[np.ndarray] = None) -> np.ndarray:
    """(U * s) @ Vt, written into ``out`` when given."""
    if out is None:
        return (u * s) @ vt
    if len(s) == 0:
        out[...] = 0.0
        return out
    return np.matmul(u * s, vt, out=out)
