"""Exact partial SVDs for the low-rank solvers (spec 5.2).

IPI and NIPPS need, in every iteration, *every* singular triplet of a tall matrix X (n, m),
n >= m, above a threshold (no randomised approximation: a missed or underestimated value
near the threshold changes the iterates and the rank-based stops). They get them from the
Gram matrix K = X^T X (m, m):

* :class:`Factor` holds X for one iteration: K (one syrk, cached), K Q without forming K,
  and the SVT/PSSV product X V diag(f) V^T. Large matrices go through float32 with the
  leading right singular subspace split off first (``basis``, float64), so the float32
  rounding scales with the small remainder of X rather than with its dominant
  (mean-intensity) component.
* :func:`svt_pairs` returns the singular values above the threshold and their right vectors:
  block Krylov (:func:`eig_above_krylov`) from the previous iteration's vectors while the rank
  is small, otherwise :func:`eig_above` in float64: Householder tridiagonalisation (LAPACK
  ``sytrd``), MRRR eigenpairs of the tridiagonal matrix (``stemr``) and a blocked
  application of the reflectors to the selected vectors only (faster than ``syevr``).
* :func:`count_above` counts the eigenvalues above a value from the inertia of K - value I.
* :class:`Spectrum` holds the leading singular triplets of a fixed matrix D (the patch-image),
  extended on demand, for the solvers' phase where every iterate is a function of D's SVD.

:func:`gram_triplets` and :func:`low_rank` serve RIPT's small unfoldings.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

Triplet = Tuple[np.ndarray, np.ndarray, np.ndarray]

LOWP_MIN_SIZE = 4_000_000  # entries of X from which Factor uses float32 (640x512 images and up)
DEFLATE = 16  # leading singular directions kept in float64 by Factor


# --------------------------------------------------------------------------- eigenpairs


def _apply_reflectors(c: np.ndarray, tau: np.ndarray, z: np.ndarray, block: int = 64
                      ) -> np.ndarray:
    """Q @ z for Q = H_0 H_1 ... H_{m-2} stored by ``sytrd`` (lower): z (m, r), in place.

    Blocks of ``block`` reflectors are applied as I - V T V^T (compact WY form), last block
    first.
    """
    m = c.shape[0]
    for j0 in range(((m - 2) // block) * block, -1, -block):
        j1 = min(j0 + block, m - 1)
        v = np.tril(c[j0 + 1:, j0:j1], -1)
        np.fill_diagonal(v, 1.0)
        vtv = v.T @ v
        t = np.zeros((j1 - j0, j1 - j0))
        for i, ti in enumerate(tau[j0:j1]):
            t[i, i] = ti
            if i:
                t[:i, i] = -ti * (t[:i, :i] @ vtv[:i, i])
        zz = z[j0 + 1:]
        zz -= v @ (t @ (v.T @ zz))
    return z


def eig_above(k: np.ndarray, lo: float, keep: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the symmetric ``k`` (m, m) with eigenvalue > ``lo``, and at least the
    ``keep`` largest: (w (r,) descending, v (m, r)). ``k`` is not modified."""
    tri = Tridiagonal(k)
    w, z = tri.pairs(lo, keep)
    return w, tri.back_transform(z)


class Tridiagonal:
    """Householder tridiagonalisation Q^T K Q = T of a symmetric K (m, m) (LAPACK ``sytrd``,
    lower), kept so that eigenpairs can be drawn from it repeatedly."""

    def __init__(self, k: np.ndarray):
        m = self.m = k.shape[0]
        self.dense = k if m < 3 else None
        if self.dense is not None:
            return
        lwork = int(lapack.dsytrd_lwork(m, lower=1)[0])
        self.c, self.d, e, self.tau, info = lapack.dsytrd(k, lower=1, lwork=lwork)
        if info:
            raise np.linalg.LinAlgError(f"dsytrd failed ({info})")
        self.e = np.append(e, 0.0)
        self.top = 2.0 * float(np.max(np.abs(self.d)) + 2.0 * np.max(np.abs(self.e))) + 1.0  # > all

    def _stemr(self, *args) -> Tuple[int, np.ndarray, np.ndarray]:
        r, w, z, info = lapack.dstemr(self.d, self.e.copy(), *args)
        if info:
            raise np.linalg.LinAlgError(f"dstemr failed ({info})")
        return r, w, z

    def pairs(self, lo: float, keep: int = 0, top: Optional[int] = None
              ) -> Tuple[np.ndarray, np.ndarray]:
        """Eigenpairs of T: every eigenvalue > ``lo`` and at least the ``keep`` largest, or
        exactly the ``top`` largest; (w descending, z (m, r)). Vectors in T's basis: map
        them with :meth:`back_transform`."""
        m = self.m
        if self.dense is not None:
            w, z = np.linalg.eigh(self.dense)
            sel = np.arange(m) >= m - top if top is not None else w > lo
            if top is None:
                sel[m - min(keep, m):] = True
            return w[sel][::-1].copy(), np.ascontiguousarray(z[:, sel][:, ::-1])
        if top is None:
            r, w, z = self._stemr(1, lo, max(self.top, lo + 1.0), 0, 0)
            if r < min(keep, m):
                top = min(keep, m)
        if top is not None:
            r, w, z = self._stemr(2, 0.0, 0.0, m - min(top, m) + 1, m)
        return w[:r][::-1].copy(), z[:, :r][:, ::-1].copy()

    def back_transform(self, z: np.ndarray) -> np.ndarray:
        """Q z for vectors z (m, r) of T (in place when ``z`` is writable and contiguous)."""
        if self.dense is not None or z.shape[1] == 0:
            return z
        return _apply_reflectors(self.c, self.tau, z)


def _orth(w: np.ndarray, basis: Optional[np.ndarray] = None) -> np.ndarray:
    """Orthonormal basis of the columns of ``w`` (dependent columns dropped), after removing
    their components along the orthonormal ``basis`` (classical Gram-Schmidt, twice)."""
    if basis is not None and basis.shape[1]:
        for _ in range(2):
            w -= basis @ (basis.T @ w)
    q, r = np.linalg.qr(w)
    diag = np.abs(np.diag(r))
    return q[:, diag > 1e-10 * max(float(diag.max(initial=0.0)), 1e-300)]


def eig_above_krylov(apply: Callable[[np.ndarray], np.ndarray], lo: float, start: np.ndarray,
                     keep: int = 0, extra: int = 8, tol: float = 1e-11, max_cols: int = 600,
                     seed: int = 0) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Like :func:`eig_above` for the symmetric positive semi-definite operator ``apply``
    (Q (m, b) -> K Q), by block Krylov: Rayleigh-Ritz on span{Q, KQ, K^2 Q, ...}, Q =
    ``start`` (m, s) plus ``extra`` Gaussian columns, full reorthogonalisation. Cheap when few
    eigenvalues exceed ``lo`` and ``start`` approximates their eigenvectors (the previous
    iteration's). Accepted only when every wanted Ritz pair and the next one have residuals
    <= tol * ||K|| and the residual bounds separate them from ``lo``; None otherwise (also
    once the basis would exceed ``max_cols`` columns)."""
    m = start.shape[0]
    rng = np.random.default_rng(seed)
    q = _orth(np.hstack([start, rng.standard_normal((m, extra))]))
    basis, kb = q, apply(q)
    while True:
        h = basis.T @ kb
        th, s = np.linalg.eigh(0.5 * (h + h.T))
        th, s = th[::-1], s[:, ::-1]
        want = max(int(np.count_nonzero(th > lo)), min(keep, m))
        j = min(want + 1, len(th))  # the wanted pairs and the first unwanted one
        y = basis @ s[:, :j]
        rho = np.linalg.norm(kb @ s[:, :j] - y * th[:j], axis=0)
        if (want < len(th) and bool(np.all(rho <= tol * th[0]))
                and th[want] + rho[want] < lo
                and (want <= keep or th[want - 1] - rho[want - 1] > lo)):
            return th[:want].copy(), np.ascontiguousarray(y[:, :want])
        if want >= m or basis.shape[1] + q.shape[1] > max_cols:
            return None
        q = _orth(kb[:, basis.shape[1] - q.shape[1]:].copy(), basis)
        if q.shape[1] == 0:
            return None
        basis, kb = np.hstack([basis, q]), np.hstack([kb, apply(q)])


def count_above(k: np.ndarray, lo: float) -> int:
    """Number of eigenvalues of the symmetric ``k`` greater than ``lo`` (Sylvester inertia of
    the Bunch-Kaufman factorisation of k - lo I)."""
    shifted = k - lo * np.eye(k.shape[0])
    _, dm, _ = sla.ldl(shifted, lower=True, hermitian=True, overwrite_a=True,
                       check_finite=False)
    diag, off = np.diag(dm).copy(), np.append(np.diag(dm, -1), 0.0)
    count, i = 0, 0
    while i < len(diag):
        if off[i] != 0.0:  # 2x2 block
            det = diag[i] * diag[i + 1] - off[i] * off[i]
            count += 1 if det < 0 else (2 if diag[i] + diag[i + 1] > 0 else 0)
            i += 2
        else:
            count += int(diag[i] > 0)
            i += 1
    return count


# --------------------------------------------------------------------------- the matrix X


class Factor:
    """One tall matrix X (n, m), n >= m, for the Gram-route SVD: K = X^T X, K Q and X W.

    float64 (small X, or ``lowp=False``): plain products. float32 (``lowp=True``, once K is
    needed): with B = ``basis`` (m, d) orthonormal and P = X B (n, d) in float64,
    X = X_perp + P B^T where X_perp (float32, written into ``work32``; ``work`` is float64
    scratch) is nearly orthogonal to the dominant directions; K = X_perp^T X_perp (float32
    syrk) + the float64 cross terms, and X W likewise. K is computed once and cached.
    """

    def __init__(self, x: np.ndarray, lowp: bool, basis: Optional[np.ndarray] = None,
                 work32: Optional[np.ndarray] = None, work: Optional[np.ndarray] = None):
        self.x = x
        self.lowp = lowp and basis is not None and basis.shape[1] > 0
        self.basis, self.work32, self.work = basis, work32, work
        self.split = False
        self._gram: Optional[np.ndarray] = None

    def apply(self, q: np.ndarray) -> np.ndarray:
        """K q = X^T (X q) (m, b), float64, without forming K."""
        return self.x.T @ (self.x @ q)

    def _split(self) -> None:
        x, b = self.x, self.basis
        self.p = x @ b
        tmp = self.work if self.work is not None else np.empty_like(x)
        np.matmul(self.p, b.T, out=tmp)
        self.xp = self.work32 if self.work32 is not None else np.empty(x.shape, np.float32)
        np.subtract(x, tmp, out=self.xp, casting="same_kind")
        self.split = True

    def gram(self) -> np.ndarray:
        """K = X^T X, (m, m) float64."""
        if self._gram is not None:
            return self._gram
        if not self.lowp:
            self._gram = self.x.T @ self.x
            return self._gram
        self._split()
        k = (self.xp.T @ self.xp).astype(np.float64)
        b, p = self.basis, self.p
        cross = (self.xp.T @ p.astype(np.float32)).astype(np.float64)  # X_perp^T P, (m, d)
        k += cross @ b.T
        k += b @ cross.T
        k += b @ (p.T @ p) @ b.T
        self._gram = k
        return k

    def low_rank(self, v: np.ndarray, scale: np.ndarray, out: np.ndarray,
                 work32: Optional[np.ndarray] = None) -> np.ndarray:
        """out = X V diag(scale) V^T (n, m) float64, V (m, r) orthonormal. ``work32`` (n, m)
        float32 scratch, may be the ``work32`` given to the constructor (the Factor is spent
        afterwards)."""
        vs = v * scale
        dense = 2 * v.shape[1] > v.shape[0]  # X @ M, M = V diag(scale) V^T, is cheaper
        if not self.split:
            if dense:
                return np.matmul(self.x, vs @ v.T, out=out)
            return np.matmul(self.x @ vs, v.T, out=out)
        # dominant part P B^T V diag(scale) V^T in float64, the remainder in float32
        np.matmul(self.p, (self.basis.T @ vs) @ v.T, out=out)
        rest = work32 if work32 is not None else np.empty(out.shape, np.float32)
        if dense:  # row blocks: ``rest`` may be X_perp's own buffer
            m32 = (vs @ v.T).astype(np.float32)
            for i in range(0, out.shape[0], 2048):
                rest[i:i + 2048] = self.xp[i:i + 2048] @ m32
        else:
            np.matmul(self.xp @ vs.astype(np.float32), v.T.astype(np.float32), out=rest)
        out += rest
        return out


KRYLOV_IMPLICIT = 12  # previous rank up to which svt_pairs tries Krylov on X^T X unformed
KRYLOV_EXPLICIT = 40  # ... and then on the formed Gram matrix


def svt_pairs(fac: Factor, thr: float, keep: int = 0, start: Optional[np.ndarray] = None
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Singular values of X above ``thr`` (and the ``keep`` largest), descending, and their
    right singular vectors: (s (r,), v (m, r)). ``start``: the previous iteration's vectors;
    when few, block Krylov from them (on X^T X applied as two products, then on the Gram
    matrix) replaces the tridiagonalisation of the Gram matrix."""
    lo = thr * thr
    m = fac.x.shape[1]
    out = None
    if start is not None and 4 * start.shape[1] < m and start.shape[1] <= KRYLOV_EXPLICIT:
        extra = max(8, start.shape[1])
        if start.shape[1] <= KRYLOV_IMPLICIT and fac._gram is None:
            out = eig_above_krylov(fac.apply, lo, start, keep, extra,
                                   max_cols=12 * (start.shape[1] + extra))
        if out is None:
            k = fac.gram()
            out = eig_above_krylov(lambda q: k @ q, lo, start, keep, extra)
    if out is None and start is not None and 2 * start.shape[1] >= m:
        out = _eig_above_dense(fac.gram(), lo, keep)
    w, v = out if out is not None else eig_above(fac.gram(), lo, keep)
    return np.sqrt(np.maximum(w, 0.0)), v


def _eig_above_dense(k: np.ndarray, lo: float, keep: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`eig_above` through the full divide-and-conquer eigendecomposition (``syevd``):
    faster once more than about half of the eigenpairs are wanted (m = 2500, one core: 2.9 s
    against 3.8 s for 2000 pairs, 4.0 s for all)."""
    w, v = np.linalg.eigh(k)
    sel = w > lo
    sel[len(w) - min(keep, len(w)):] = True
    return w[sel][::-1].copy(), np.ascontiguousarray(v[:, sel][:, ::-1])


def rough_basis(x: np.ndarray, d: int = DEFLATE, seed: int = 0) -> np.ndarray:
    """Orthonormal (m, d) approximation of the leading right singular subspace of x (n, m):
    randomised range finder with two power iterations (only used to split off the dominant
    part of x in :class:`Factor`, so its accuracy only matters for the rounding error)."""
    d = min(d, x.shape[1])
    omega = np.random.default_rng(seed).standard_normal((x.shape[1], d + 8))
    q = np.linalg.qr(x.T @ (x @ omega))[0]
    q = np.linalg.qr(x.T @ (x @ q))[0]
    return np.ascontiguousarray(q[:, :d])


class Spectrum:
    """Leading singular triplets of a fixed tall matrix D (n, m), exact (Gram matrix,
    tridiagonalised once), extended on demand.

    ``s``: the ``k`` held singular values followed by the next one (an upper bound for all
    the others; absent when k = m); ``v`` (m, k): right singular vectors; ``f`` (n, k) =
    D v = U diag(s).
    """

    def __init__(self, d: np.ndarray, lowp: bool, k: int = 8):
        self.dmat = d
        self.m = d.shape[1]
        self.tri = Tridiagonal(Factor(d, lowp, rough_basis(d) if lowp else None).gram())
        self.s = np.zeros(0)
        self.v = np.zeros((self.m, 0))
        self.f = np.zeros((d.shape[0], 0))
        self._grow(k)

    @property
    def k(self) -> int:
        return self.v.shape[1]

    def _grow(self, k: int) -> None:
        k = min(k, self.m)
        w, z = self.tri.pairs(0.0, top=min(k + 1, self.m))
        old = self.k
        vnew = self.tri.back_transform(np.ascontiguousarray(z[:, old:k]))
        self.s = np.sqrt(np.maximum(w, 0.0))
        self.v = np.hstack([self.v, vnew])
        self.f = np.hstack([self.f, self.dmat @ vnew])

    def cover(self, lo: float) -> None:
        """Hold every singular value > ``lo``."""
        while self.k < self.m and self.s[self.k] > lo:
            self._grow(2 * self.k)

    def low_rank(self, coef: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = sum_i coef_i u_i v_i^T (n, m), coef (k,) (trailing zeros skipped)."""
        nz = np.flatnonzero(coef)
        q = int(nz[-1]) + 1 if len(nz) else 0
        if q == 0:
            out[...] = 0.0
            return out
        s = self.s[:q]
        scale = np.divide(coef[:q], s, out=np.zeros(q), where=s > 0)
        return np.matmul(self.f[:, :q], scale[:, None] * self.v[:, :q].T, out=out)


# --------------------------------------------------------------------------- RIPT helpers


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


def low_rank(u: np.ndarray, s: np.ndarray, vt: np.ndarray,
             out: Optional[np.ndarray] = None) -> np.ndarray:
    """(U * s) @ Vt, written into ``out`` when given."""
    if out is None:
        return (u * s) @ vt
    if len(s) == 0:
        out[...] = 0.0
        return out
    return np.matmul(u * s, vt, out=out)
