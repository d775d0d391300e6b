"""Annotations that would silently change a number: unknown class names, masks and boxes that
disagree, a split naming a missing image. On small corrupted copies of real SIRST-V2 files."""
import logging
import os
import shutil
import sys

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from helpers import ROOT, sirst_copy
from PIL import Image

from deepinfrared_d2.data import DatasetFileError, load_sirst_v2, register_sirst_v2
from deepinfrared_d2.evaluation import NoCoEvaluator
from deepinfrared_d2.evaluation.ground_truth import MASK_BOX_CHECK_ENV, mask_box_mismatch

sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_detections  # noqa: E402


def _ids():
    records = DatasetCatalog.get("sirst_v2_test_full")
    targets = [r["image_id"] for r in records if r["annotations"]][:2]
    return targets, next(r["image_id"] for r in records if not r["annotations"])


def _unlinked(path):
    """Replace a symlink of ``sirst_copy`` by a private copy, to edit it."""
    src = os.path.realpath(path)
    os.unlink(path)
    shutil.copy(src, path)
    return path


def _register(root, prefix, **kw):
    for name in [n for n in DatasetCatalog.list() if n.startswith(prefix + "_")]:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_sirst_v2(str(root), prefix=prefix, **kw)
    return f"{prefix}_s"


def test_every_shipped_image_passes_the_mask_box_cross_check():
    records = DatasetCatalog.get("sirst_v2_trainvaltest_full")
    assert len(records) == 1024
    assert not mask_box_mismatch(records).any()


def test_an_unknown_class_name_is_an_error_naming_the_file_and_the_name(tmp_path, sirst_root,
                                                                       capsys):
    (target, _), background = _ids()
    root = sirst_copy(tmp_path, sirst_root, [target, background])
    good = load_sirst_v2(str(root), "s")
    assert good[1]["annotations"] == []  # SIRST-V2's own placeholder (no <bndbox>) is fine

    xml = _unlinked(root / "annotations/bboxes" / f"{target}.xml")
    xml.write_text(xml.read_text().replace("<name>Target</name>", "<name>target</name>", 1))
    with pytest.raises(DatasetFileError, match=rf"{target}.xml: object 0: class name 'target'"):
        load_sirst_v2(str(root), "s")
    assert load_sirst_v2(str(root), "s", case_insensitive_names=True) == good

    # the CLI says the same in one line, exit 2, before evaluating anything
    results = tmp_path / "dets.json"
    results.write_text(f'[{{"image_id": "{target}", "point": [1, 2], "score": 0.5}}]')
    name = _register(root, "badclass")
    assert eval_detections.main(["--dataset", name, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and f"{target}.xml" in err and "'target'" in err
    assert len(err.strip().splitlines()) == 1
    name = _register(root, "badclass_ci", case_insensitive_names=True)
    assert eval_detections.main(["--dataset", name, "--results", str(results)]) == 0

    xml.write_text(xml.read_text().replace("<name>target</name>", "<name>Plane</name>", 1))
    with pytest.raises(DatasetFileError, match=r"class name 'Plane' is not one of .*\['Target'\]"):
        load_sirst_v2(str(root), "s", case_insensitive_names=True)


@pytest.mark.parametrize("break_what", ["mask_without_box", "box_without_mask"])
def test_masks_and_boxes_that_disagree_stop_the_evaluation_naming_the_image(
        tmp_path, sirst_root, monkeypatch, caplog, break_what):
    (target, other), background = _ids()
    root = sirst_copy(tmp_path, sirst_root, [target, other, background])
    masks = root / "annotations/masks"
    mask = masks / f"{background if break_what == 'mask_without_box' else target}_pixels0.png"
    with Image.open(mask) as m:
        blank = Image.new("L", m.size)
    os.unlink(mask)  # a symlink into the shared data: replace, never write through it
    if break_what == "mask_without_box":  # the background's mask gains a 3x3 target
        bad, expect = background, "has target pixels but the annotation has no box"
        blank.paste(255, (10, 10, 13, 13))
    else:  # a target image with an empty mask
        bad, expect = target, "is empty but the annotation has"
    blank.save(mask)
    name = _register(root, f"maskcheck_{break_what}")
    ev = NoCoEvaluator(name, distributed=False)
    ev.add(target, [0.5], points=[[1.0, 1.0]])
    pattern = rf"{bad}.png: its mask .*{bad}_pixels0.png {expect}"
    with pytest.raises(DatasetFileError, match=pattern):
        ev.evaluate()

    monkeypatch.setenv(MASK_BOX_CHECK_ENV, "warn")
    ev = NoCoEvaluator(name, distributed=False)
    ev.add(target, [0.5], points=[[1.0, 1.0]])
    with caplog.at_level(logging.WARNING):
        assert "mNoCoAP" in ev.evaluate()["noco"]
    assert f"{bad}_pixels0.png {expect}" in caplog.text

    monkeypatch.setenv(MASK_BOX_CHECK_ENV, "maybe")
    with pytest.raises(ValueError, match=f"{MASK_BOX_CHECK_ENV}='maybe'"):
        NoCoEvaluator(name, distributed=False).evaluate()


def test_a_split_naming_a_missing_image_names_the_image(tmp_path, sirst_root):
    (target, _), _ = _ids()
    root = sirst_copy(tmp_path, sirst_root, [target])
    (root / "splits" / "s.txt").write_text(f"{target}\nMisc_nowhere\n")
    with pytest.raises(DatasetFileError, match=r"mixed/Misc_nowhere.png: image file not found"):
        load_sirst_v2(str(root), "s")
