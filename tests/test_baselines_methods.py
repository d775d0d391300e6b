"""Every method finds a known small target on a cluttered synthetic image; the registry's
input validation; patch utilities; the exact partial SVD machinery; fast IPI / NIPPS / RIPT
equal straightforward implementations; float32 paths keep the float64 points on real
images."""
import subprocess
import sys

import numpy as np
import pytest

import baselines
from baselines.methods import patches as P
from baselines.methods import svd as S
from baselines.methods.ipi import ipi_target
from baselines.methods.nipps import nipps_target
from baselines.methods.reference import ipi_reference, ript_reference
from sirst.dataset import load_dataset
from sirst.image_io import read_gray

ALL = baselines.list_methods()
# image size per method: IPI/NIPPS need enough 50x50 patches for their solvers to move
SIZE = {"ipi": 128}
# plateau-type responses (max / top-K of a 9x9 cell): the arg-max may sit up to 4 px away
TOLERANCE = {"rlcm": 4}


def synthetic(size, target, seed=1, amp=100.0):
    """Smooth sinusoidal clutter + noise + a bright line + a Gaussian (sigma 1) target."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    bg = 80 + 30 * np.sin(xx / 11.0 + 0.4) + 20 * np.cos(yy / 7.0 + xx / 23.0 + 1.3)
    bg += rng.normal(0, 3, (size, size))
    bg[10:size - 10, size // 4:size // 4 + 2] += 25
    ty, tx = target
    bg += amp * np.exp(-((yy - ty) ** 2 + (xx - tx) ** 2) / 2.0)
    return np.clip(bg, 0, 255)


def test_core_methods_registered_with_defaults_and_citations():
    assert set(baselines.CORE_METHODS) <= set(ALL)
    for name in ALL:
        m = baselines.get_method(name)
        assert m.name == name and isinstance(m.defaults, dict) and m.defaults
        assert len(m.citation) > 30 and m.description
    assert baselines.get_method("IPI").defaults["patch"] == 50
    with pytest.raises(KeyError, match="available"):
        baselines.get_method("nope")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", [1, 2])
def test_top_point_within_2px_of_target(name, seed):
    size = SIZE.get(name, 160)
    ty, tx = size // 2 - 7, size // 2 + 9
    image = synthetic(size, (ty, tx), seed=seed)
    s = baselines.get_method(name)(image)
    assert s.shape == image.shape and s.dtype == np.float64 and np.isfinite(s).all()
    pts = baselines.detect_points(s, k=1)
    assert len(pts) == 1, f"{name} found nothing"
    x, y = pts[0, :2]
    tol = TOLERANCE.get(name, 2)
    assert abs(x - tx) <= tol and abs(y - ty) <= tol, (name, (x, y), (tx, ty))


@pytest.mark.parametrize("name", ALL)
def test_bad_inputs_give_zero_maps_or_clear_errors(name):
    m = baselines.get_method(name)
    with pytest.raises(ValueError, match=r"\(4, 5, 3\)"):
        m(np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="2-D"):
        m(np.zeros(7))
    for img in (np.zeros((0, 0)), np.zeros((0, 9)), np.full((64, 64), 7.0),
                np.full((64, 64), np.nan), np.ones((1, 300)),
                np.ones((300, 1)) * np.arange(300)[:, None],
                np.arange(6.0).reshape(2, 3)):
        out = m(img)
        assert out.shape == img.shape and not out.any()
    with pytest.raises(TypeError, match="unknown parameter"):
        m(np.zeros((10, 10)), not_a_param=1)


@pytest.mark.parametrize("name", ["mpcm", "tophat", "lcm", "ipi", "pstnn"])
def test_nan_pixels_replaced_and_uint16_scaled(name):
    size = SIZE.get(name, 160)
    ty, tx = size // 2 - 7, size // 2 + 9
    image = np.rint(synthetic(size, (ty, tx))).astype(np.uint8)
    m = baselines.get_method(name)
    ref = m(image)
    np.testing.assert_allclose(m(image.astype(np.uint16) * 257), ref, rtol=1e-9, atol=1e-9)
    holed = image.astype(np.float64)
    holed[5:8, 5:8] = np.nan
    holed[20, 30] = np.inf
    out = m(holed)
    assert np.isfinite(out).all()
    x, y = baselines.detect_points(out, k=1)[0, :2]
    assert abs(x - tx) <= 2 and abs(y - ty) <= 2


def test_overrides_change_the_result():
    image = synthetic(96, (40, 57))
    m = baselines.get_method("tophat")
    assert not np.array_equal(m(image), m(image, size=9))


def test_import_does_not_load_torch_or_detectron2():
    code = ("import sys, baselines, baselines.methods, baselines.runner, sirst.results; "
            "from sirst.dataset import load_dataset; baselines.list_methods(); "
            "assert len(load_dataset('sirst_v2_mini_test')) > 0; "
            "print('torch' in sys.modules, 'detectron2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_patch_grids():
    assert P.gao_corners(75, 50, 10).tolist() == [0, 10, 20]
    assert P.dai_corners(75, 50, 10).tolist() == [0, 10, 20, 25]
    assert P.dai_corners(50, 50, 10).tolist() == [0]
    assert P.dai_corners(130, 40, 40).tolist() == [0, 40, 80, 90]
    assert len(P.gao_corners(40, 50, 10)) == 0


def test_patch_extraction_and_reconstruction():
    rng = np.random.default_rng(0)
    img = rng.random((67, 81))
    for conv, order in (("gao", "row"), ("dai", "col")):
        rows, cols = P.patch_grid(img.shape, 20, 7, conv)
        pt = P.extract_patches(img, rows, cols, 20, order=order)
        r0, c0 = (rows[1], cols[0]) if order == "col" else (rows[0], cols[1])
        np.testing.assert_array_equal(pt[1], img[r0:r0 + 20, c0:c0 + 20])
        rec = P.reconstruct_mean(pt, img.shape, rows, cols, order=order)
        covered = np.zeros(img.shape, bool)
        for r in rows:
            for c in cols:
                covered[r:r + 20, c:c + 20] = True
        np.testing.assert_allclose(rec[covered], img[covered])
        assert not rec[~covered].any()
    # median reconstruction against a brute-force per-pixel median
    rows, cols = P.patch_grid(img.shape, 20, 7, "gao")
    pt = P.extract_patches(img, rows, cols, 20) + rng.random((len(rows) * len(cols), 20, 20))
    med = P.reconstruct_median(pt, img.shape, rows, cols, 7)
    k = 0
    vals = {}
    for r in rows:
        for c in cols:
            for y in range(20):
                for x in range(20):
                    vals.setdefault((r + y, c + x), []).append(pt[k, y, x])
            k += 1
    brute = np.zeros(img.shape)
    for (y, x), v in vals.items():
        brute[y, x] = np.median(v)
    np.testing.assert_allclose(med, brute)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
def test_gram_triplets_return_every_value_above_threshold(shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((shape[0], 12)) @ rng.standard_normal((12, shape[1]))
    x += 0.01 * rng.standard_normal(shape)
    s_true = np.linalg.svd(x, compute_uv=False)
    thr = 0.5 * (s_true[11] + s_true[12])
    (u, s, vt), r = S.gram_triplets(x, thr)
    assert r == 12 and len(s) == 12
    np.testing.assert_allclose(s, s_true[:12], rtol=1e-8)
    np.testing.assert_allclose((u * s) @ vt, (lambda a: (a[0][:, :12] * a[1][:12]) @ a[2][:12])(
        np.linalg.svd(x, full_matrices=False)), atol=1e-8)


def _tall(rng, n=700, m=90):
    """Tall matrix with a dominant first direction and a slowly decaying spectrum."""
    x = rng.standard_normal((n, m)) @ np.diag(np.linspace(3.0, 0.2, m)) @ np.linalg.qr(
        rng.standard_normal((m, m)))[0]
    x += 40.0 * np.outer(np.ones(n), rng.random(m))
    return x


def test_eigensolvers_return_every_pair_above_threshold():
    rng = np.random.default_rng(4)
    x = _tall(rng)
    k = x.T @ x
    w_true, v_true = np.linalg.eigh(k)
    w_true, v_true = w_true[::-1], v_true[:, ::-1]
    for r in (3, 20, 60):
        lo = 0.5 * (w_true[r - 1] + w_true[r])
        assert S.count_above(k, lo) == r
        k2 = max(r - 2, 1)
        start = np.linalg.qr(v_true[:, :k2] + 1e-3 * rng.standard_normal((90, k2)))[0]
        for w, v in (S.eig_above(k, lo), S.eig_above_krylov(lambda q: k @ q, lo, start, extra=30)):
            assert len(w) == r
            np.testing.assert_allclose(w, w_true[:r], rtol=1e-10)
            np.testing.assert_allclose(np.abs(np.sum(v * v_true[:, :r], axis=0)), 1.0, atol=1e-8)
    w, v = S.eig_above(k, w_true[0] * 2, keep=4)  # nothing above: the keep largest
    np.testing.assert_allclose(w, w_true[:4], rtol=1e-10)
    assert S.eig_above_krylov(lambda q: k @ q, w_true[60], v_true[:, :2], max_cols=20) is None
    tri = S.Tridiagonal(k)
    w, z = tri.pairs(0.0, top=5)
    np.testing.assert_allclose(w, w_true[:5], rtol=1e-10)


@pytest.mark.parametrize("lowp", [False, True])
def test_factor_gram_and_products(lowp):
    rng = np.random.default_rng(5)
    x = _tall(rng)
    basis = S.rough_basis(x, 4)
    fac = S.Factor(x, lowp, basis)
    k = fac.gram()
    exact = x.T @ x
    # float32 with the dominant direction split off: error relative to the remainder
    np.testing.assert_allclose(k, exact, atol=(1e-5 if lowp else 1e-12) * np.abs(exact).max())
    q = rng.standard_normal((90, 3))
    np.testing.assert_allclose(fac.apply(q), exact @ q, rtol=1e-10)
    w_true = np.linalg.eigvalsh(exact)[::-1]
    s, v = S.svt_pairs(fac, np.sqrt(0.5 * (w_true[8] + w_true[9])))
    assert len(s) == 9
    np.testing.assert_allclose(s, np.sqrt(w_true[:9]), rtol=1e-6 if lowp else 1e-12)
    for r in (9, 80):  # low-rank and dense (X @ M) forms
        scale = np.linspace(1.0, 0.1, r)
        vv = np.linalg.qr(rng.standard_normal((90, r)))[0]
        out = fac.low_rank(vv, scale, out=np.empty_like(x))
        np.testing.assert_allclose(out, x @ (vv * scale) @ vv.T,
                                   atol=(1e-5 if lowp else 1e-10) * np.abs(x).max())


def test_spectrum_matches_svd():
    rng = np.random.default_rng(6)
    d = _tall(rng, 300, 60)
    u, s, vt = np.linalg.svd(d, full_matrices=False)
    spec = S.Spectrum(d, lowp=False, k=4)
    spec.cover(s[20])
    assert spec.k >= 20 and spec.s[spec.k] <= s[20]
    np.testing.assert_allclose(spec.s[:spec.k + 1], s[:spec.k + 1], rtol=1e-10)
    coef = np.zeros(spec.k)
    coef[:5] = [3.0, -1.0, 0.5, 0.0, 2.0]
    np.testing.assert_allclose(spec.low_rank(coef, out=np.empty_like(d)),
                               (u[:, :5] * coef[:5]) @ vt[:5], atol=1e-10)


def test_fast_ipi_matches_reference():
    image = synthetic(128, (57, 73))
    info, ref_info = {}, {}
    fast = np.maximum(ipi_target(image, info=info), 0.0)
    ref = ipi_reference(image, info=ref_info)
    assert info["iterations"] == ref_info["iterations"] and info["card"] == ref_info["card"]
    np.testing.assert_allclose(fast, ref, atol=1e-9 * ref.max())


def _nipps_straightforward(image, patch=50, step=10, lam_l=2.0, ratio=0.005, tol=1e-7):
    """NIPPS as written: patch-image p^2 x n built column by column, full SVD per iteration."""
    rows = P.dai_corners(image.shape[0], patch, step)
    cols = P.dai_corners(image.shape[1], patch, step)
    corners = [(r, c) for c in cols for r in rows]
    d = np.stack([image[r:r + patch, c:c + patch].ravel() for r, c in corners], axis=1)
    lam = lam_l / np.sqrt(min(d.shape))
    s = np.linalg.svd(d, compute_uv=False)
    n_keep = max(int(np.argmax(s / s[0] < ratio)), 1) if (s / s[0] < ratio).any() else len(s)
    norm2 = s[0]
    y = d / max(norm2, np.abs(d).max() / lam)
    a, e = np.zeros_like(d), np.zeros_like(d)
    mu, it = 1.25 / norm2, 0
    mu_bar = mu * 1e7
    while True:
        it += 1
        e = np.maximum(d - a + y / mu - lam / mu, 0)
        u, sg, vt = np.linalg.svd(d - e + y / mu, full_matrices=False)
        sg[n_keep:] = np.maximum(sg[n_keep:] - 1 / mu, 0)
        a = (u * sg) @ vt
        z = d - a - e
        y = y + mu * z
        mu = min(1.5 * mu, mu_bar)
        if np.linalg.norm(z) / np.linalg.norm(d) < tol or it >= 1000:
            break
    acc, cnt = np.zeros(image.shape), np.zeros(image.shape)
    for j, (r, c) in enumerate(corners):
        acc[r:r + patch, c:c + patch] += e[:, j].reshape(patch, patch)
        cnt[r:r + patch, c:c + patch] += 1
    return acc / cnt, it


def test_fast_nipps_matches_straightforward_ialm():
    image = synthetic(128, (57, 73))
    info = {}
    fast = nipps_target(image, info=info)
    ref, iterations = _nipps_straightforward(image)
    assert info["iterations"] == iterations
    np.testing.assert_allclose(fast, ref, atol=1e-8 * ref.max())


@pytest.mark.parametrize("target", [ipi_target, nipps_target])
def test_float32_paths_keep_the_float64_points_on_a_real_image(target):
    path = {r["image_id"]: r["file_name"] for r in load_dataset("sirst_v2_mini_test")}["Misc_70"]
    image = read_gray(path).astype(np.float64)
    maps, infos = [], []
    for lowp in (False, True):
        infos.append({})
        maps.append(np.maximum(target(image, info=infos[-1], lowp=lowp), 0.0))
    assert infos[0]["iterations"] == infos[1]["iterations"]
    assert [t[0] for t in infos[0]["trace"]] == [t[0] for t in infos[1]["trace"]]  # ranks
    np.testing.assert_allclose(maps[1], maps[0], atol=1e-4 * maps[0].max())
    p64, p32 = (baselines.detect_points(mp, image, protocol="p1", k=5) for mp in maps)
    np.testing.assert_array_equal(p32[:, :2], p64[:, :2])


@pytest.mark.parametrize("target", [ipi_target, nipps_target])
def test_e_tol_is_an_earlier_stop_on_the_same_iterates(target):
    """The non-published ``e_tol`` stop only truncates the published iteration: its trace is
    a prefix of the full run's, it ends at the first iteration whose relative change of E
    is <= e_tol, and on this real image it keeps the brightest point."""
    path = {r["image_id"]: r["file_name"] for r in load_dataset("sirst_v2_mini_test")}["Misc_70"]
    image = read_gray(path).astype(np.float64)
    full, early = {}, {}
    e_full = np.maximum(target(image, info=full), 0.0)
    e_early = np.maximum(target(image, info=early, e_tol=2e-2), 0.0)
    changes = [t[3] for t in full["trace"]]
    stop = next(i for i, c in enumerate(changes) if c <= 2e-2) + 1
    assert early["stop"] == "e_tol" and early["iterations"] == stop < full["iterations"]
    assert [t[:2] for t in early["trace"]] == [t[:2] for t in full["trace"][:stop]]
    p_full, p_early = (baselines.detect_points(m, image, protocol="p1", k=1)
                       for m in (e_full, e_early))
    np.testing.assert_array_equal(p_early[:, :2], p_full[:, :2])


def test_fast_ript_matches_reference():
    image = synthetic(96, (41, 57))
    fast = baselines.get_method("ript")(image)
    ref = ript_reference(image)
    np.testing.assert_allclose(fast, ref, atol=1e-8 * ref.max())


def test_min_size_follows_the_patch_parameter():
    image = synthetic(64, (30, 30))
    m = baselines.get_method("ipi")
    assert not m(image[:45]).any()  # smaller than the 50 px patch: zero map, no solver call
    out = m(image[:45], patch=30)
    assert out.shape == (45, 64) and np.isfinite(out).all()


def test_pstnn_prox_equals_per_slice_tsvd():
    from baselines.methods.pstnn import prox_pstnn
    rng = np.random.default_rng(5)
    for n3 in (7, 8):
        x = rng.standard_normal((n3, 6, 6)) * 10
        xf = np.fft.fft(x, axis=0)
        out = np.empty_like(xf)
        for k in range(n3):  # naive: every Fourier slice, full SVD
            u, s, vh = np.linalg.svd(xf[k])
            s[2:] = np.maximum(s[2:] - 1.0 / 0.05, 0)
            out[k] = (u * s) @ vh
        naive = np.real(np.fft.ifft(out, axis=0))
        np.testing.assert_allclose(prox_pstnn(x, 2, 0.05), naive, atol=1e-10)


def test_energy_ranks_follow_the_ratio_rule():
    from baselines.methods.nipps import energy_rank
    from baselines.methods.pstnn import pstnn_rank
    rng = np.random.default_rng(6)
    d = rng.standard_normal((80, 5)) @ np.diag([100, 50, 10, 1, 0.1]) @ rng.standard_normal((5, 60))
    s = np.linalg.svd(d, compute_uv=False)
    assert energy_rank(d, 0.005) == int(np.sum(s / s[0] >= 0.005))
    t = rng.random((9, 4, 4))
    t_matlab = np.moveaxis(t, 0, 2)  # (p, p, n3), frontal slice k = patch k
    mat = np.reshape(t_matlab.ravel(order="F"), (9, -1), order="F")  # reshape(T, n3, [])
    st = np.linalg.svd(mat, compute_uv=False)
    assert pstnn_rank(t, 0.1) == max(int(np.sum(st / st[0] >= 0.1)), 1)
