"""The shared results layer (sirst.results) and the package layering around it."""
import ast
import json
import os
import random

import numpy as np
import pytest
from helpers import ROOT

from sirst.results import (
    ResultsFileError,
    detections_to_records,
    group_records,
    load_results_file,
    write_results_file,
)


def test_detections_round_trip_through_records():
    boxes = np.array([[10.0, 20.0, 15.0, 26.0], [1.5, 2.5, 4.5, 3.5]])  # XYXY_ABS
    points = np.array([[12.0, 23.0], [3.0, 3.0]])
    records = detections_to_records("a", np.array([0.25, 0.75]), boxes, points)
    assert records[0] == {"image_id": "a", "point": [12.0, 23.0], "score": 0.25,
                          "bbox": [10.0, 20.0, 5.0, 6.0]}  # XYWH in the file
    d = group_records(records)["a"]
    assert d.scores.tolist() == [0.75, 0.25]  # best first
    np.testing.assert_array_equal(d.boxes, boxes[::-1])
    np.testing.assert_array_equal(d.points, points[::-1])
    only_boxes = group_records(detections_to_records("b", [0.5], boxes[:1]))["b"]
    np.testing.assert_array_equal(only_boxes.centres(), [[12.5, 23.0]])


def test_results_files_are_written_in_one_canonical_order(tmp_path):
    records = (detections_to_records("x", [0.1, 0.9, 0.5], points=[[0, 0], [1, 1], [2, 2]])
               + detections_to_records("y", [0.3, 0.3], points=[[5, 5], [6, 6]]))
    write_results_file(str(tmp_path / "a.json"), records, image_ids=["y", "x"])
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    # ties keep their given order, so shuffling is only canonical across images and scores
    shuffled.sort(key=lambda r: r["point"] == [6, 6])
    write_results_file(str(tmp_path / "b.json"), shuffled, image_ids=["y", "x"])
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    written = load_results_file(str(tmp_path / "a.json"))
    assert [(r["image_id"], r["score"]) for r in written] == [
        ("y", 0.3), ("y", 0.3), ("x", 0.9), ("x", 0.5), ("x", 0.1)]


def test_the_loader_names_the_file_and_the_record(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"image_id": "a", "point": [1, 2], "score": 0.5},
                                {"image_id": "a", "point": [1], "score": 0.5}]))
    with pytest.raises(ResultsFileError, match=r"bad.json: record 1: 'point' must be 2"):
        load_results_file(str(path))


def _imported_modules(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


@pytest.mark.parametrize("package, forbidden", [("data", "evaluation"), ("evaluation", "data")])
def test_data_and_evaluation_do_not_import_each_other(package, forbidden):
    folder = os.path.join(ROOT, "deepinfrared_d2", package)
    for name in os.listdir(folder):
        if name.endswith(".py"):
            for module in _imported_modules(os.path.join(folder, name)):
                parts = (module[2:] if module.startswith("..") else
                         module[len("deepinfrared_d2."):] if module.startswith("deepinfrared_d2.")
                         else "").split(".")
                assert parts[0] != forbidden, f"{package}/{name} imports {module}"
