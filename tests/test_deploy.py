"""Deployment: the NumPy post-processor against torchvision's NMS, and an ONNX export of a
freshly initialised OSCAR, FCOS-RFLA and (Detectron2's) RetinaNet and Faster R-CNN whose ONNX
Runtime outputs and detections equal PyTorch's on real SIRST-V2 images of two sizes, and
their int8 versions."""
import os

import numpy as np
import onnx
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from helpers import ROOT, oscar_cfg
from torchvision.ops import nms as tv_nms

from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.data import read_image_bgr
from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.deploy import cell_detections, nms
from deepinfrared_d2.deploy.compare import candidate_differences, matched_differences
from deepinfrared_d2.deploy.onnx_export import ExportGraph, export_onnx, exportable
from deepinfrared_d2.deploy.onnx_runtime import OnnxDetector
from deepinfrared_d2.deploy.quantize import output_convs, quantize_int8

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


# The CPU recipes' backbone at half its width, on the CPU.
HALF_WIDTH = ["MODEL.DEVICE", "cpu", "MODEL.FLEX_RESNET.STEM_CHANNELS", "16",
              "MODEL.FLEX_RESNET.BASE_CHANNELS", "16", "MODEL.FLEX_FPN.OUT_CHANNELS", "32"]
# Config file and test-time overrides of each detector built from a CPU-recipe YAML.
YAML_DETECTORS = {
    "retinanet": ("projects/Detectron2Baselines/configs/retinanet_R18_FPN_cpu.yaml", [
        # every anchor a candidate, 100 per level
        "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0", "MODEL.RETINANET.TOPK_CANDIDATES_TEST",
        "100", "TEST.DETECTIONS_PER_IMAGE", "60"]),
    "faster_rcnn": ("projects/Detectron2Baselines/configs/faster_rcnn_R18_FPN_cpu.yaml", [
        # every RoI a candidate
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.RPN.PRE_NMS_TOPK_TEST", "300",
        "MODEL.RPN.POST_NMS_TOPK_TEST", "200", "TEST.DETECTIONS_PER_IMAGE", "60"]),
    "fcos": ("projects/FCOS/configs/fcos_rfla_R18_FPN_cpu.yaml", [
        # FCOS-RFLA; every point a candidate, 100 per level: P3 has more, P7 fewer
        "MODEL.FCOS.FEAT_CHANNELS", "32", "MODEL.FCOS.TEST_SCORE_THRESH", "0.0",
        "MODEL.FCOS.TEST_NMS_PRE", "100", "MODEL.FCOS.TEST_MAX_PER_IMAGE", "60"]),
}


def fresh_model(detector: str):
    """A freshly initialised half-width detector (seeded) with detections to compare."""
    torch.manual_seed(3)
    if detector == "oscar":
        cfg = oscar_cfg(**{"MODEL.FLEX_RESNET.BASE_CHANNELS": "16",
                           "MODEL.FLEX_RESNET.STEM_CHANNELS": "16",
                           "MODEL.OSCAR.STACKED_CONVS": "2", "MODEL.OSCAR.HEAD_INIT_STD": "0.1"})
    else:
        config, overrides = YAML_DETECTORS[detector]
        cfg = get_cfg(os.path.join(ROOT, config), HALF_WIDTH + overrides)
    model = build_model(cfg).eval()
    if detector == "faster_rcnn":  # wider classifiers, so that scores do not all tie
        with torch.no_grad():
            for layer in (model.proposal_generator.rpn_head.objectness_logits,
                          model.roi_heads.box_predictor.cls_score):
                layer.weight.add_(torch.randn_like(layer.weight) * 0.1)
    elif detector != "oscar":  # a wider head init, so that scores do not all tie at the prior
        with torch.no_grad():  # (RetinaNet: its classifier; wide box deltas would exp() away)
            for name, p in model.head.named_parameters():
                if detector == "fcos" or "cls" in name:
                    p.add_(torch.randn_like(p) * 0.1)
    return cfg, model


@pytest.fixture(scope="module", params=["oscar", "fcos", "retinanet", "faster_rcnn"])
def exported(request, tmp_path_factory):
    """A fresh model and its ONNX file."""
    cfg, model = fresh_model(request.param)
    path = str(tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    export_onnx(cfg, model, path, sample_size=(128, 160))
    return cfg, model, path


def two_real_images():
    """Dataset dicts of two mini_test images of different sizes."""
    records = {r["image_id"]: r for r in DatasetCatalog.get("sirst_v2_mini_test")}
    return [records["Misc_70"], records["Misc_96"]]


def test_onnx_runtime_equals_pytorch_on_real_images(exported, sirst_root):
    cfg, model, path = exported
    detector = OnnxDetector(path, threads=1)
    sizes = set()
    for record in two_real_images():
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
        assert len(scores) == len(inst) > 0
        box_diff, score_diff = matched_differences(boxes, scores, inst.pred_boxes.tensor.numpy(),
                                                   inst.scores.numpy())
        assert box_diff <= 1e-3 and score_diff <= 1e-5
        assert np.array_equal(classes, inst.pred_classes.numpy())
    assert len(sizes) == 2  # one graph, two input sizes


def test_detections_have_sorted_corners_and_keep_their_centre():
    boxes = np.array([[10, 20], [10, 20], [6, 24], [14, 24]], np.float32)[:, None]  # (4, 1, 2)
    prob = np.array([[[0.9, 0.8]]], np.float32)
    found, scores, _ = cell_detections(boxes, prob, np.ones_like(prob), image_size=(32, 32),
                                       original_size=(32, 32), score_thresh=0.05, nms_pre=10,
                                       nms_thresh=0.5, max_per_image=10)
    assert found.tolist() == [[6, 10, 10, 14], [20, 20, 24, 24]]  # x2 < x1 inverted back
    assert scores.tolist() == pytest.approx([0.9, 0.8])


@pytest.fixture(scope="module")
def detectron2_models():
    return {name: fresh_model(name)[1] for name in ("faster_rcnn", "retinanet")}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("detector", ["faster_rcnn", "retinanet"])
def test_cell_detections_repeat_detectron2s_postprocessing(detector, seed, detectron2_models):
    """The adapters' post-processing (their ``clip`` order) against Detectron2's own code (R-CNN:
    ``fast_rcnn_inference``; RetinaNet: ``inference_single_image``; then
    ``detector_postprocess``) on boxes that cross the border or lie outside it, two classes, an
    input resized from the original image."""
    from detectron2.modeling.postprocessing import detector_postprocess
    from detectron2.modeling.roi_heads.fast_rcnn import fast_rcnn_inference_single_image
    from detectron2.structures import Boxes

    rng = np.random.default_rng(seed)
    num, classes, (h, w), original = 400, 2, (60, 80), (45, 100)
    xy = rng.uniform(-20, 90, (num, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(1, 15, (num, 2))], axis=1)
    # IoU 0.6 as predicted, 0.2 once clipped to the image: R-CNN keeps both, RetinaNet one
    boxes[:2] = [[-10, 5, 2, 15], [-10, 5, 10, 15]]
    prob = rng.dirichlet(np.ones(classes + 1), num).astype(np.float32)[:, :classes]
    prob[:2] = [[0.9, 0.05], [0.8, 0.1]]
    model = detectron2_models[detector]
    params = exportable(model).postprocess_params()
    if detector == "faster_rcnn":
        params.update(score_thresh=0.05, nms_pre=num * classes, nms_thresh=0.5, max_per_image=50)
        with_background = np.concatenate([prob, 1 - prob.sum(1, keepdims=True)], axis=1)
        ref = fast_rcnn_inference_single_image(
            torch.from_numpy(np.tile(boxes, classes)), torch.from_numpy(with_background),
            (h, w), 0.05, 0.5, 50)[0]
    else:  # boxes as anchors with zero deltas; the adapter's top-k candidates as cells
        ref = model.inference_single_image([Boxes(torch.from_numpy(boxes))],
                                           [torch.from_numpy(prob.copy())],
                                           [torch.zeros(num, 4)], (h, w))
        top = torch.from_numpy(prob).flatten().topk(params["nms_pre"])[1].numpy()
        anchor, cls = top // classes, top % classes
        prob = np.eye(classes, dtype=np.float32)[cls] * prob[anchor, cls, None]
        boxes = boxes[anchor]
    ref = detector_postprocess(ref, *original)
    cell_boxes = np.repeat(boxes, classes, axis=0).T[:, None]  # (4, 1, N*K): (box, class) cells
    cell_prob = (prob[:, :, None] * np.eye(classes, dtype=np.float32)).reshape(-1, classes)
    cell_prob = cell_prob.T[:, None]
    found, scores, found_classes = cell_detections(
        cell_boxes, cell_prob, np.ones_like(cell_prob), image_size=(h, w), original_size=original,
        **params)
    assert 0 < len(scores) == len(ref) < params["max_per_image"]
    np.testing.assert_allclose(found, ref.pred_boxes.tensor.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(scores, ref.scores.numpy(), rtol=1e-6, atol=0)
    np.testing.assert_array_equal(found_classes, ref.pred_classes.numpy())


def test_matched_differences_pair_near_ties_in_either_order():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], np.float32)
    scores = np.array([0.5, 0.5 + 1e-7], np.float32)
    assert matched_differences(boxes, scores, boxes[::-1], scores[::-1]) == (0.0, 0.0)
    box_diff, _ = matched_differences(boxes, scores, boxes + 0.25, scores)
    assert box_diff == pytest.approx(0.25)


def test_candidate_lists_are_compared_whatever_the_order_of_near_ties():
    boxes = np.array([[0, 5, 9], [0, 5, 9], [1, 6, 10], [1, 6, 10]], np.float32)[None, :, None]
    prob = np.array([[0.5, 0.5 + 1e-7, 0.01]], np.float32)[None, :, None]  # (1, K=1, 1, N=3)
    ref = (boxes, prob, np.ones_like(prob))
    swapped = tuple(a[..., [1, 0, 2]] for a in ref)
    assert candidate_differences(swapped, ref, score_thresh=0.05) == (0.0, 0.0, 0.0)
    moved = boxes.copy()
    moved[0, :, 0, 1] += 0.25  # a kept candidate moves
    assert candidate_differences((moved, prob, ref[2]), ref, 0.05)[0] == pytest.approx(0.25)
    moved = boxes.copy()
    moved[0, :, 0, 2] += 3  # below the threshold: post-processing never sees it
    assert candidate_differences((moved, prob, ref[2]), ref, 0.05)[0] == 0.0
    grid = tuple(a.reshape(1, -1, 3, 1) for a in ref)  # cells: compared one by one
    assert candidate_differences(tuple(a[:, :, ::-1] for a in grid), grid, 0.05)[0] == 9.0


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="model.onnx: cannot be loaded"):
        OnnxDetector(str(bad))


def test_int8_quantizes_every_convolution_but_the_predictors(exported, sirst_root, tmp_path):
    cfg, model, path = exported
    images = [read_image_bgr(r["file_name"]) for r in two_real_images()]
    proto = onnx.load(quantize_int8(path, str(tmp_path / "int8.onnx"), images))
    made_by = {out: node.op_type for node in proto.graph.node for out in node.output}
    convs = [node for node in proto.graph.node if node.op_type == "Conv"]
    predictors = set(output_convs(onnx.load(path)))
    assert 0 < len(predictors) < len(convs)
    for node in convs:  # int8 weights reach a Conv through a DequantizeLinear
        assert (made_by.get(node.input[1]) == "DequantizeLinear") == (node.name not in predictors)
    detector = OnnxDetector(str(tmp_path / "int8.onnx"), threads=1)
    assert detector.meta["quantization"]["calibration_images"] == 2
    assert len(detector(images[0])[1]) > 0


def test_int8_oscar_follows_the_float_model(sirst_root, tmp_path):
    cfg, model = fresh_model("oscar")
    path = export_onnx(cfg, model, str(tmp_path / "oscar.onnx"), sample_size=(128, 160))
    images = [read_image_bgr(r["file_name"]) for r in two_real_images()]
    int8 = OnnxDetector(quantize_int8(path, str(tmp_path / "int8.onnx"), images), threads=1)
    float32 = OnnxDetector(path, threads=1)
    for image in images:
        x = float32.preprocess(image)
        for a, b in zip(float32.dense(x), int8.dense(x)):  # boxes, select_prob, score_factor
            assert not np.array_equal(a, b) and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8
    with pytest.raises(ValueError, match="no calibration images"):
        quantize_int8(path, str(tmp_path / "none.onnx"), [])
