"""NoCo ground-truth maps (OSCAR spec 2.1) and their cached sparse form."""
import os
import re

import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from helpers import sirst_copy

from deepinfrared_d2.data import load_sirst_v2, read_gray
from deepinfrared_d2.evaluation import load_noco_ground_truth, noco_map
from deepinfrared_d2.evaluation.ground_truth import (
    build_noco_ground_truth,
    fingerprint,
    record_boxes,
)


def test_spec_test_vector():
    img = ((np.arange(20 * 24).reshape(20, 24) * 37 + 11) % 256).astype(np.uint8)
    m = noco_map(img, [(3, 4, 9, 8), (6.7, 5.2, 12.9, 11.99), (0, 0, 4, 3)])
    assert m.dtype == np.float64 and m.shape == (20, 24)
    assert m.sum() == pytest.approx(85.51277599153744, abs=1e-12)
    assert np.count_nonzero(m) == 303
    assert m.max() == pytest.approx(0.9989641849663091, abs=1e-15)
    expected = {(5, 5): 0.019978626913454298, (7, 8): 0.5056485380693664,
                (0, 0): 0.01584768285703907, (2, 3): 0.39223015071171696,
                (10, 14): 0.4529555692140922, (4, 2): 0.11186026946170206}
    for (r, c), v in expected.items():
        assert m[r, c] == pytest.approx(v, abs=1e-15)


def test_window_values_by_hand_and_later_boxes_overwrite():
    img = np.zeros((12, 12), dtype=np.uint8)
    img[5, 5] = 200  # a one-pixel target
    m = noco_map(img, [(5, 5, 6, 6)])
    # 3x3 window; only the target pixel has contrast: K = 200 / 200.01 there, 0 elsewhere.
    g_centre = np.exp(-0.0)  # linspace(-1.5, 1.5, 3) = [-1.5, 0, 1.5] -> d = 0 at the centre
    k = 200 / (200 + 0.01)
    assert m[5, 5] == pytest.approx(g_centre * k / (g_centre * k + 0.001))
    assert np.count_nonzero(m) == 1 and m[4:7, 4:7].sum() == m[5, 5]
    # A later box whose window covers the first target overwrites its peak entirely.
    img[6, 6] = 250
    both = noco_map(img, [(5, 5, 6, 6), (6, 6, 7, 7)])
    second = noco_map(img, [(6, 6, 7, 7)])
    assert both[5, 5] == second[5, 5] < 0.1 < noco_map(img, [(6, 6, 7, 7), (5, 5, 6, 6)])[5, 5]
    assert noco_map(img, []).max() == 0.0
    rgb = np.stack([img, img // 2, img * 0], axis=2)
    assert np.array_equal(noco_map(rgb, [(5, 5, 6, 6)]), noco_map(rgb.mean(axis=2), [(5, 5, 6, 6)]))
    with pytest.raises(ValueError, match="degenerate box"):
        noco_map(img, [(3, 3, 3.9, 5)])


def test_sparse_ground_truth_equals_dense_maps_on_real_images(sirst_root):
    records = [r for r in DatasetCatalog.get("sirst_v2_test_full") if r["annotations"]][:6]
    records += [r for r in DatasetCatalog.get("sirst_v2_test_full") if not r["annotations"]][:2]
    gt = build_noco_ground_truth(records, progress=False)
    for i, r in enumerate(records):
        dense = noco_map(read_gray(r["file_name"]), record_boxes(r))
        assert np.array_equal(gt.dense_map(i), dense)
        rows, cols = np.nonzero(dense >= 0)
        sel = np.random.default_rng(i).choice(len(rows), 500)
        got = gt.lookup(np.full(500, i), rows[sel], cols[sel])
        assert np.array_equal(got, dense[rows[sel], cols[sel]])


def test_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path, sirst_root):
    ids = [r["image_id"] for r in DatasetCatalog.get("sirst_v2_test_full") if r["annotations"]][:2]
    root = sirst_copy(tmp_path, sirst_root, ids, link=False)
    records = load_sirst_v2(str(root), "s")
    key = fingerprint(records)
    first = load_noco_ground_truth(records, "cache_test", progress=False)
    cached = [f for f in os.listdir(os.environ["DEEPIR_CACHE_DIR"]) if f.startswith("cache_test-")]
    assert cached == [f"cache_test-{key[:16]}.npz"]
    assert load_noco_ground_truth(load_sirst_v2(str(root), "s"), "cache_test") is first

    xml = root / "annotations/bboxes" / f"{ids[0]}.xml"
    xml.write_text(re.sub(r"<xmin>(\d+)", lambda m: f"<xmin>{int(m.group(1)) - 1}",
                          xml.read_text(), 1))
    assert fingerprint(load_sirst_v2(str(root), "s")) != key
    img = root / "mixed" / f"{ids[1]}.png"
    os.utime(img, ns=(0, 0))
    assert fingerprint(records) != key
