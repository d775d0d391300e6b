"""SIRST-V2 catalog, decoding and bad-input errors, on the real dataset."""
import os
import shutil

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode
from helpers import sirst_copy
from PIL import Image

from deepinfrared_d2.data import (
    DatasetFileError,
    load_sirst_v2,
    mask_component_boxes,
    read_gray,
    read_image_bgr,
    read_mask,
    register_irstd_mask_dataset,
)


def split_ids(root, split):
    with open(os.path.join(root, "splits", f"{split}.txt")) as f:
        return [line.strip() for line in f if line.strip()]


def test_every_split_file_is_registered_with_its_exact_image_count(sirst_root):
    splits = sorted(f[:-4] for f in os.listdir(os.path.join(sirst_root, "splits"))
                    if f.endswith(".txt"))
    assert {"trainval_full", "test_full", "test_v1", "mini_test"} <= set(splits)
    for split in splits:
        name = f"sirst_v2_{split}"
        assert name in DatasetCatalog.list()
        records = DatasetCatalog.get(name)
        assert [r["image_id"] for r in records] == split_ids(sirst_root, split)
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == ["Target"] and meta.evaluator_type == "noco"
        assert meta.split == split and meta.root == sirst_root


def test_test_full_records_in_detectron2_form_backgrounds_kept(sirst_root):
    records = DatasetCatalog.get("sirst_v2_test_full")
    assert len(records) == 256
    assert sum(len(r["annotations"]) for r in records) == 150
    assert sum(not r["annotations"] for r in records) == 131
    for r in records:
        assert set(r) == {"file_name", "image_id", "height", "width", "annotations",
                          "sem_seg_file_name"}
        assert os.path.basename(r["file_name"]) == r["image_id"] + ".png"
        for a in r["annotations"]:
            assert a["bbox_mode"] == BoxMode.XYXY_ABS and a["category_id"] == 0
            x1, y1, x2, y2 = a["bbox"]
            assert 0 <= x1 < x2 <= r["width"] and 0 <= y1 < y2 <= r["height"]
    assert len(DatasetCatalog.get("sirst_v2_trainval_full")) == 768


def test_boxes_are_the_shifted_xml_boxes_and_match_single_target_masks(sirst_root):
    records = DatasetCatalog.get("sirst_v2_test_full")
    single = [r for r in records if len(r["annotations"]) == 1][:15]
    agree = 0
    for r in single:
        mask_boxes = mask_component_boxes(read_mask(r["sem_seg_file_name"]))
        agree += len(mask_boxes) == 1 and list(mask_boxes[0]) == r["annotations"][0]["bbox"]
    assert agree >= 14  # spec 1.2: 429 of 430 single-target images agree pixel-exactly


def _images_by_mode(root, limit=400):
    found = {}
    for name in sorted(os.listdir(os.path.join(root, "mixed")))[:limit * 3]:
        path = os.path.join(root, "mixed", name)
        with Image.open(path) as im:
            found.setdefault(im.mode, path)
    return found


def test_every_png_mode_decodes_to_bgr_for_the_model_and_luma_for_the_metric(sirst_root):
    modes = _images_by_mode(sirst_root)
    assert {"L", "RGB", "RGBA", "P"} <= set(modes)
    for mode, path in modes.items():
        bgr = read_image_bgr(path)
        gray = read_gray(path)
        with Image.open(path) as im:
            w, h = im.size
            rgb = np.asarray(im.convert("RGB"))
        assert bgr.shape == (h, w, 3) and bgr.dtype == np.uint8, mode
        assert gray.shape == (h, w) and gray.dtype == np.uint8, mode
        assert np.array_equal(bgr[:, :, ::-1], rgb), mode  # alpha dropped, palette expanded
        if mode == "L":
            assert np.array_equal(gray, bgr[:, :, 0])
        # Luma of OpenCV's grey decode: 0.299 R + 0.587 G + 0.114 B, within a rounding step.
        luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        assert np.abs(gray - luma).max() <= 1.0, mode


def _with_target(n=2):
    return [r["image_id"] for r in DatasetCatalog.get("sirst_v2_test_full") if r["annotations"]][:n]


def test_bad_input_raises_errors_naming_the_file(tmp_path, sirst_root):
    ids = _with_target(2)
    root = sirst_copy(tmp_path, sirst_root, ids)
    assert len(load_sirst_v2(str(root), "s")) == 2

    with pytest.raises(DatasetFileError, match="dataset root .* not found"):
        load_sirst_v2(str(tmp_path / "nowhere"), "s")
    with pytest.raises(DatasetFileError, match="unknown split 'nope'.*'s'"):
        load_sirst_v2(str(root), "nope")

    xml = root / "annotations/bboxes" / f"{ids[0]}.xml"
    text = open(os.path.join(sirst_root, "annotations/bboxes", f"{ids[0]}.xml")).read()
    xml.unlink()
    xml.write_text(text[: len(text) // 2])
    with pytest.raises(DatasetFileError, match=f"{ids[0]}.xml: malformed XML"):
        load_sirst_v2(str(root), "s")
    xml.write_text("")
    with pytest.raises(DatasetFileError, match=f"{ids[0]}.xml: malformed XML"):
        load_sirst_v2(str(root), "s")
    xml.write_text("<annotation><size><width>3</width><height>3</height></size></annotation>")
    with pytest.raises(DatasetFileError, match="no <object> element"):
        load_sirst_v2(str(root), "s")
    xml.write_text(text.replace("<xmin>", "<xmin>abc", 1))
    with pytest.raises(DatasetFileError, match="bndbox> needs numeric"):
        load_sirst_v2(str(root), "s")
    xml.unlink()
    with pytest.raises(DatasetFileError, match=f"{ids[0]}.xml: annotation file not found"):
        load_sirst_v2(str(root), "s")
    xml.write_text(text)

    img = root / "mixed" / f"{ids[1]}.png"
    img.unlink()
    with pytest.raises(DatasetFileError, match=f"{ids[1]}.png: image file not found"):
        load_sirst_v2(str(root), "s")
    img.write_bytes(b"not a png")
    with pytest.raises(DatasetFileError, match=f"{ids[1]}.png: not a readable image"):
        load_sirst_v2(str(root), "s")
    with pytest.raises(DatasetFileError, match=f"{ids[1]}.png: cannot be decoded"):
        read_image_bgr(str(img))
    img.unlink()
    os.symlink(os.path.join(sirst_root, "mixed", f"{ids[1]}.png"), img)

    mask = root / "annotations/masks" / f"{ids[1]}_pixels0.png"
    mask.unlink()
    Image.new("L", (7, 5)).save(mask)
    with pytest.raises(DatasetFileError, match=f"{ids[1]}_pixels0.png: mask is 7x5 but its image"):
        load_sirst_v2(str(root), "s")


def test_mask_components_are_8_connected_in_raster_order_of_first_pixel():
    m = np.zeros((8, 10), dtype=np.uint8)
    m[5:7, 0:2] = 1  # component whose first pixel comes third
    m[1, 6] = m[2, 7] = 1  # diagonal neighbours: one component (8-connectivity), first
    m[2, 2:4] = 255  # second
    m[4, 9] = 1  # between the two others in raster order
    boxes = mask_component_boxes(m)
    assert boxes.dtype == np.float32
    assert boxes.tolist() == [[6, 1, 8, 3], [2, 2, 4, 3], [9, 4, 10, 5], [0, 5, 2, 7]]
    assert mask_component_boxes(np.zeros((4, 4))).shape == (0, 4)


def test_mask_only_irstd_dataset_in_basicirstd_layout(tmp_path, sirst_root):
    """NUAA/NUDT/IRSTD-1k style: images/, masks/, a split file of ids; boxes from masks."""
    ids = _with_target(3)
    root = tmp_path / "NUDT-like"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "img_idx").mkdir()
    for i in ids:
        os.symlink(os.path.join(sirst_root, "mixed", f"{i}.png"), root / "images" / f"{i}.png")
        shutil.copy(os.path.join(sirst_root, "annotations/masks", f"{i}_pixels0.png"),
                    root / "masks" / f"{i}.png")
    (root / "img_idx" / "test.txt").write_text("\n".join(ids))
    register_irstd_mask_dataset("irstd_like_test", str(root), "img_idx/test.txt")
    records = DatasetCatalog.get("irstd_like_test")
    assert [r["image_id"] for r in records] == ids
    for r in records:
        expect = mask_component_boxes(cv2.imread(r["sem_seg_file_name"], cv2.IMREAD_GRAYSCALE))
        assert [a["bbox"] for a in r["annotations"]] == expect.tolist()
    assert MetadataCatalog.get("irstd_like_test").evaluator_type == "noco"
    with pytest.raises(ValueError, match="already registered"):
        register_irstd_mask_dataset("irstd_like_test", str(root), "img_idx/test.txt")
