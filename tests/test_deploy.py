"""Deployment: the NumPy post-processor against torchvision's NMS, and an ONNX export of a
freshly initialised OSCAR whose ONNX Runtime outputs and detections equal PyTorch's on real
SIRST-V2 images of two sizes."""
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from helpers import oscar_cfg
from torchvision.ops import nms as tv_nms

from deepinfrared_d2.data import read_image_bgr
from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.deploy import nms
from deepinfrared_d2.deploy.compare import matched_differences
from deepinfrared_d2.deploy.onnx_export import ExportGraph, export_onnx
from deepinfrared_d2.deploy.onnx_runtime import OnnxDetector

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(5))
def test_nms_equals_torchvision(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 60, (300, 2)).astype(np.float32)
    wh = rng.uniform(-2, 12, (300, 2)).astype(np.float32)  # some inverted boxes, like OSCAR's
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert np.array_equal(nms(boxes, scores, 0.5), expected)
    assert np.array_equal(nms(boxes, scores, 0.5, max_keep=7), expected[:7])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A freshly initialised half-width OSCAR (seeded) and its ONNX file."""
    torch.manual_seed(3)
    cfg = oscar_cfg(**{"MODEL.FLEX_RESNET.BASE_CHANNELS": "16",
                       "MODEL.FLEX_RESNET.STEM_CHANNELS": "16", "MODEL.OSCAR.STACKED_CONVS": "2",
                       "MODEL.OSCAR.HEAD_INIT_STD": "0.1"})
    model = build_model(cfg).eval()
    path = str(tmp_path_factory.mktemp("onnx") / "oscar.onnx")
    export_onnx(cfg, model, path, sample_size=(128, 160))
    return cfg, model, path


def test_onnx_runtime_equals_pytorch_on_real_images(exported, sirst_root):
    cfg, model, path = exported
    detector = OnnxDetector(path, threads=1)
    records = {r["image_id"]: r for r in DatasetCatalog.get("sirst_v2_mini_test")}
    sizes = set()
    for image_id in ("Misc_70", "Misc_96"):
        record = records[image_id]
        bgr = read_image_bgr(record["file_name"])
        sizes.add(bgr.shape[:2])
        # dense outputs: same graph, same numbers up to float rounding
        image = detector.preprocess(bgr)
        with torch.no_grad():
            ref = [t.numpy() for t in ExportGraph(model).eval()(torch.from_numpy(image))]
        got = detector.dense(image)
        assert [g.shape for g in got] == [r.shape for r in ref]
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-3)  # boxes, pixels
        np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=1e-5)
        np.testing.assert_allclose(got[2], ref[2], rtol=0, atol=1e-5)
        # detections: the PyTorch model's inference vs ONNX Runtime + the shared post-processor
        with torch.no_grad():
            inst = model([NoCoDatasetMapper(cfg, is_train=False)(record)])[0]["instances"]
        boxes, scores, classes = detector(bgr)
        assert len(scores) == len(inst) == cfg.MODEL.OSCAR.TEST_MAX_PER_IMAGE
        box_diff, score_diff = matched_differences(boxes, scores, inst.pred_boxes.tensor.numpy(),
                                                   inst.scores.numpy())
        assert box_diff <= 1e-3 and score_diff <= 1e-5
        assert np.array_equal(classes, inst.pred_classes.numpy())
    assert len(sizes) == 2  # one graph, two input sizes


def test_matched_differences_pair_near_ties_in_either_order():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], np.float32)
    scores = np.array([0.5, 0.5 + 1e-7], np.float32)
    assert matched_differences(boxes, scores, boxes[::-1], scores[::-1]) == (0.0, 0.0)
    box_diff, _ = matched_differences(boxes, scores, boxes + 0.25, scores)
    assert box_diff == pytest.approx(0.25)


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="model.onnx: cannot be loaded"):
        OnnxDetector(str(bad))
