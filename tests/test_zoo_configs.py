"""Every config of the FCOS and Detectron2Baselines projects builds, lowers its loss on real
SIRST-V2 crops, infers on real images at native resolution and is scored by NoCoEvaluator;
the paper configs hold the recipes of OSCAR spec 8.2 / 8.3, and the CPU recipes share
everything but their stated differences.

Widths are shrunk by config overrides (R18 instead of R50, 32-channel FPNs and heads) so
that each config takes seconds; the code paths are those of the full configs.
"""
import math
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from helpers import ROOT

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.engine import build_lr_scheduler, build_optimizer
from deepinfrared_d2.evaluation import NoCoEvaluator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FCOS_DIR = os.path.join(ROOT, "projects", "FCOS", "configs")
D2_DIR = os.path.join(ROOT, "projects", "Detectron2Baselines", "configs")
CONFIGS = {
    "fcos_rfla_R50_FPN_kld_1x": FCOS_DIR, "fcos_R50_FPN_1x": FCOS_DIR,
    "fcos_rfla_R18_FPN_cpu": FCOS_DIR, "fcos_R18_FPN_cpu": FCOS_DIR,
    "faster_rcnn_R50_FPN_1x": D2_DIR, "faster_rcnn_R50_FPN_1x_80cls": D2_DIR,
    "faster_rcnn_R50_FPN_small_anchors_1x": D2_DIR, "faster_rcnn_R18_FPN_cpu": D2_DIR,
    "retinanet_R50_FPN_1x": D2_DIR, "retinanet_R50_FPN_small_anchors_1x": D2_DIR,
    "retinanet_R18_FPN_cpu": D2_DIR,
}
TINY_R50 = {"MODEL.RESNETS.DEPTH": "18", "MODEL.RESNETS.RES2_OUT_CHANNELS": "64",
            "MODEL.FLEX_FPN.OUT_CHANNELS": "32"}
TINY_CPU = {"MODEL.FLEX_RESNET.STEM_CHANNELS": "16", "MODEL.FLEX_RESNET.BASE_CHANNELS": "16",
            "MODEL.FLEX_FPN.OUT_CHANNELS": "32"}
# small heads, and every candidate kept at test time (untrained scores are low)
TINY_HEAD = {
    "FCOS": {"MODEL.FCOS.FEAT_CHANNELS": "32", "MODEL.FCOS.TEST_SCORE_THRESH": "0.0",
             "MODEL.FCOS.TEST_MAX_PER_IMAGE": "20"},
    "GeneralizedRCNN": {"MODEL.ROI_BOX_HEAD.FC_DIM": "64", "MODEL.RPN.POST_NMS_TOPK_TRAIN": "200",
                        "MODEL.RPN.POST_NMS_TOPK_TEST": "200",
                        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": "128",
                        "MODEL.ROI_HEADS.SCORE_THRESH_TEST": "0.0",
                        "TEST.DETECTIONS_PER_IMAGE": "20"},
    "RetinaNet": {"MODEL.RETINANET.SCORE_THRESH_TEST": "0.0", "TEST.DETECTIONS_PER_IMAGE": "20"},
}
CROPS = {"INPUT.TARGET_CROP.ENABLED": "True", "INPUT.TARGET_CROP.SIZE": "(96, 96)",
         "INPUT.TARGET_CROP.TARGET_PROB": "1.0", "INPUT.RESIZE_MODE_TEST": "none"}


def zoo_cfg(name, tiny=True, **overrides):
    """The config ``name`` on CPU; with ``tiny``, shrunk widths, 96x96 training crops around a
    target (each config's own resize rule) and native-resolution testing."""
    path = os.path.join(CONFIGS[name], f"{name}.yaml")
    opts = {"MODEL.DEVICE": "cpu"}
    if tiny:
        arch = get_cfg(path).MODEL.META_ARCHITECTURE
        opts.update({**(TINY_CPU if name.endswith("_cpu") else TINY_R50), **TINY_HEAD[arch],
                     **CROPS})
    opts.update(overrides)
    return get_cfg(path, [x for kv in opts.items() for x in kv])


@pytest.fixture(scope="module")
def train_records():
    """4 trainval images with a target wider and taller than 8 px: every assigner (vanilla
    FCOS needs a stride-8 point inside the box) has positives on their crops."""
    return [r for r in DatasetCatalog.get("sirst_v2_trainval_full")
            if any(a["bbox"][2] - a["bbox"][0] > 8 and a["bbox"][3] - a["bbox"][1] > 8
                   for a in r["annotations"])][:4]


@pytest.fixture(scope="module")
def test_records():
    return DatasetCatalog.get("sirst_v2_mini_test")


def train_steps(model, cfg, batch, steps=6):
    """``steps`` iterations on one batch with the config's own optimizer at a quarter of
    BASE_LR (no warmup here); the total losses. Detectron2's RetinaNet divides by an EMA of
    the positive count that starts at 100: it is pinned there, so that the losses of one batch
    compare."""
    cfg = cfg.clone()
    cfg.SOLVER.BASE_LR /= 4
    optimizer = build_optimizer(cfg, model)
    totals = []
    with EventStorage():
        for _ in range(steps):
            if cfg.MODEL.META_ARCHITECTURE == "RetinaNet":
                model.loss_normalizer = 100.0
            losses = model(batch)
            assert all(torch.isfinite(v) for v in losses.values()), losses
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            totals.append(total.item())
    return totals


@pytest.mark.parametrize("name", CONFIGS)
def test_config_trains_infers_at_native_resolution_and_is_evaluated(name, train_records,
                                                                      test_records):
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = zoo_cfg(name)
    model = build_model(cfg).train()
    batch = [NoCoDatasetMapper(cfg, is_train=True)(r) for r in train_records]
    assert all(len(d["instances"]) for d in batch) and "noco_map" not in batch[0]
    totals = train_steps(model, cfg, batch)
    assert totals[-1] < totals[0], totals

    model.eval()
    inputs = [NoCoDatasetMapper(cfg, is_train=False)(r) for r in test_records]
    assert all(tuple(d["image"].shape[1:]) == (d["height"], d["width"]) for d in inputs)
    with torch.no_grad():
        outputs = model(inputs)
    for d, out in zip(inputs, outputs):
        inst = out["instances"]
        assert inst.image_size == (d["height"], d["width"]) and 0 < len(inst) <= 20
        boxes = inst.pred_boxes.tensor
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= d["width"]).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= d["height"]).all()
        assert ((inst.scores >= 0) & (inst.scores <= 1)).all()
    evaluator = NoCoEvaluator("sirst_v2_mini_test", box_ap=False)
    evaluator.reset()
    evaluator.process(inputs, outputs)
    metrics = evaluator.evaluate()
    assert 0.0 <= metrics["noco"]["mNoCoAP"] <= 1.0
    assert all(math.isfinite(v) for v in metrics["irstd"].values())


def lr_at(cfg, iterations, param_name=None):
    """Learning rate of the first parameter group (or of the group holding ``param_name``)
    at each iteration, from the config's optimizer and scheduler on a tiny model."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    group = next(g for g in optimizer.param_groups
                 if param_name is None or model.get_parameter(param_name) in g["params"])
    out = {}
    for t in range(max(iterations) + 1):
        if t in iterations:
            out[t] = group["lr"]
        optimizer.step()
        scheduler.step()
    return out


def test_fcos_rfla_paper_recipe():
    cfg = zoo_cfg("fcos_rfla_R50_FPN_kld_1x", tiny=False)
    r, f = cfg.MODEL.RESNETS, cfg.MODEL.FCOS
    assert (r.DEPTH, r.STRIDE_IN_1X1, r.NORM, cfg.MODEL.BACKBONE.FREEZE_AT) == (
        50, True, "FrozenBN", 2)
    assert cfg.MODEL.FLEX_FPN.TOP_BLOCK == "LastLevelP6P7"
    assert (f.ASSIGNER, f.RFLA.MODE, list(f.RFLA.TOPK), f.RFLA.RATIO, f.CENTERNESS_CLAMP) == (
        "rfla", "faithful", [6, 1], 0.9, 0.01)
    assert [t * f.RFLA.FRACTION for t in f.RFLA.TRF] == [45.5, 133.5, 213.5, 277.5, 405.5]
    assert (f.FOCAL_LOSS_GAMMA, f.TEST_NMS_PRE, f.TEST_MAX_PER_IMAGE) == (2.0, 3000, 3000)
    s = cfg.SOLVER
    assert (s.OPTIMIZER, s.MOMENTUM, s.WEIGHT_DECAY, s.BIAS_LR_FACTOR, s.WEIGHT_DECAY_BIAS) == (
        "SGD", 0.9, 1e-4, 2.0, 0.0)
    assert (s.CLIP_GRADIENTS.ENABLED, s.CLIP_GRADIENTS.CLIP_TYPE, s.CLIP_GRADIENTS.CLIP_VALUE) == (
        True, "full_model", 35.0)
    assert (s.MAX_ITER, s.IMS_PER_BATCH, s.AMP.ENABLED, cfg.TEST.EVAL_PERIOD) == (
        6924, 4, False, 577)
    # spec 8.2: 1.667e-3 until 4615, 1.667e-4 for 4616-4999, 5e-4 until 6346, then 5e-5
    expected = {0: 0.005 / 3, 4615: 0.005 / 3, 4616: 0.0005 / 3, 4999: 0.0005 / 3,
                5000: 5e-4, 6346: 5e-4, 6347: 5e-5, 6923: 5e-5}
    lrs = lr_at(cfg, list(expected), "0.weight")
    assert lrs == pytest.approx(expected, rel=1e-9)
    bias_lrs = lr_at(cfg, [0, 5000], "0.bias")  # biases: lr x 2, no weight decay
    assert bias_lrs == pytest.approx({0: 0.01 / 3, 5000: 1e-3}, rel=1e-9)


def test_faster_rcnn_paper_recipe():
    cfg = zoo_cfg("faster_rcnn_R50_FPN_1x", tiny=False)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 1
    assert zoo_cfg("faster_rcnn_R50_FPN_1x_80cls", tiny=False).MODEL.ROI_HEADS.NUM_CLASSES == 80
    r = cfg.MODEL.RESNETS
    assert (r.DEPTH, r.STRIDE_IN_1X1, r.NORM, r.NORM_EVAL) == (50, False, "BN", True)
    assert cfg.MODEL.PROPOSAL_GENERATOR.NAME == "MMDetRPN"
    assert list(cfg.MODEL.RPN.IOU_THRESHOLDS) == [0.3, 0.7]
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == [[32], [64], [128], [256], [512]]
    s = cfg.SOLVER
    assert (s.OPTIMIZER, s.BASE_LR, s.CLIP_GRADIENTS.ENABLED, s.AMP.ENABLED) == (
        "SGD", 0.01, False, False)
    # linear warmup over 500 iterations from 0.001, x0.1 at epochs 9 and 12
    expected = {0: 1e-5, 250: 0.01 * (1 - 0.5 * 0.999), 500: 0.01, 4615: 0.01, 4616: 1e-3,
                6347: 1e-4}
    assert lr_at(cfg, list(expected)) == pytest.approx(expected, rel=1e-9)


def test_80_class_head_is_built_and_its_classes_are_pooled(test_records):
    torch.manual_seed(0)
    cfg = zoo_cfg("faster_rcnn_R50_FPN_1x_80cls")
    model = build_model(cfg).eval()
    assert model.roi_heads.box_predictor.cls_score.out_features == 81
    record = next(r for r in test_records if r["annotations"])
    inputs = [NoCoDatasetMapper(cfg, is_train=False)(record)]
    with torch.no_grad():
        inst = model(inputs)[0]["instances"]
    assert len(inst) and ((inst.pred_classes >= 0) & (inst.pred_classes < 80)).all()
    # the model's detections plus the GT boxes at score 1 (so that mNoCoAP > 0), labelled with
    # the model's classes and 80 - 1 for the GT boxes
    gt = torch.tensor([a["bbox"] for a in record["annotations"]], dtype=torch.float32)
    boxes = Instances(inst.image_size, pred_boxes=Boxes(torch.cat([inst.pred_boxes.tensor, gt])),
                      scores=torch.cat([inst.scores, torch.ones(len(gt))]),
                      pred_classes=torch.cat([inst.pred_classes,
                                              torch.full((len(gt),), 79)]))

    def mnocoap(classes):
        evaluator = NoCoEvaluator("sirst_v2_mini_test", box_ap=False)
        relabelled = boxes[:]
        relabelled.pred_classes = classes
        evaluator.process(inputs, [{"instances": relabelled}])
        return evaluator.evaluate()["noco"]["mNoCoAP"]

    # the metric pools the classes: any labelling of the same boxes scores the same
    pooled = mnocoap(boxes.pred_classes)
    assert pooled > 0 and mnocoap(torch.zeros_like(boxes.pred_classes)) == pooled


# The CPU recipes state the paper model's settings again (a config has one _BASE_): they may
# differ only where their comments say so.
CPU_DIFFERENCES = {
    ("faster_rcnn_R18_FPN_cpu", "faster_rcnn_R50_FPN_small_anchors_1x"): {
        "ROI_BOX_HEAD.FC_DIM", "RPN.PRE_NMS_TOPK_TRAIN", "ROI_HEADS.BATCH_SIZE_PER_IMAGE"},
    ("retinanet_R18_FPN_cpu", "retinanet_R50_FPN_small_anchors_1x"): {"RETINANET.NORM"},
}
SHARED_MODEL_NODES = ("ANCHOR_GENERATOR", "PROPOSAL_GENERATOR", "RPN", "ROI_HEADS",
                      "ROI_BOX_HEAD", "RETINANET")


def flat(node, prefix=""):
    out = {}
    for key, value in node.items():
        if hasattr(value, "items"):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize("cpu,paper", list(CPU_DIFFERENCES))
def test_cpu_recipe_keeps_the_paper_model(cpu, paper):
    a = flat({k: zoo_cfg(cpu, tiny=False).MODEL[k] for k in SHARED_MODEL_NODES})
    b = flat({k: zoo_cfg(paper, tiny=False).MODEL[k] for k in SHARED_MODEL_NODES})
    assert {k for k in a if a[k] != b[k]} == CPU_DIFFERENCES[(cpu, paper)]


@pytest.mark.parametrize("name", [n for n in CONFIGS if n.endswith("_cpu")]
                         + ["oscar_R18_FPN_P2_192_cpu"])
def test_cpu_recipes_share_data_solver_and_backbone(name):
    path = (os.path.join(ROOT, "projects", "OSCAR", "configs", f"{name}.yaml")
            if name.startswith("oscar") else os.path.join(CONFIGS[name], f"{name}.yaml"))
    cfg, base = get_cfg(path), get_cfg(os.path.join(ROOT, "configs", "Base-SIRST-V2-CPU.yaml"))
    assert cfg.SOLVER == base.SOLVER and cfg.TEST == base.TEST
    for key in ("RESIZE_MODE_TRAIN", "RESIZE_MODE_TEST", "TARGET_CROP"):
        assert cfg.INPUT[key] == base.INPUT[key]
    for key in ("STEM_CHANNELS", "BASE_CHANNELS", "DEPTH", "DEEP_STEM"):
        assert cfg.MODEL.FLEX_RESNET[key] == base.MODEL.FLEX_RESNET[key]
    assert cfg.MODEL.BACKBONE.NAME == base.MODEL.BACKBONE.NAME
    assert cfg.MODEL.FLEX_FPN.OUT_CHANNELS == base.MODEL.FLEX_FPN.OUT_CHANNELS


def test_oscar_cpu_recipe_departs_from_the_shared_one_only_in_crops_batch_schedule_towers():
    configs = os.path.join(ROOT, "projects", "OSCAR", "configs")
    own = flat(get_cfg(os.path.join(configs, "oscar_R18_FPN_P2_cpu.yaml")))
    shared = flat(get_cfg(os.path.join(configs, "oscar_R18_FPN_P2_192_cpu.yaml")))
    assert {k for k in own if own[k] != shared[k]} == {
        "INPUT.TARGET_CROP.SIZE", "SOLVER.IMS_PER_BATCH", "SOLVER.EPOCH_ITERS", "SOLVER.MAX_ITER",
        "SOLVER.CHECKPOINT_PERIOD", "MODEL.OSCAR.STACKED_CONVS", "OUTPUT_DIR"}
    # about the same crop pixels per iteration, so the per-step price stays the shared one's
    pixels = [math.prod(c["INPUT.TARGET_CROP.SIZE"]) * c["SOLVER.IMS_PER_BATCH"]
              for c in (own, shared)]
    assert 0.85 < pixels[0] / pixels[1] < 1.0


# The figures of projects/*/README.md (tools/benchmark_models.py --input-size 512 512)
PARAMS = {"fcos_rfla_R50_FPN_kld_1x": 32_058_059, "faster_rcnn_R50_FPN_1x": 41_345_237,
          "faster_rcnn_R50_FPN_1x_80cls": 41_750_112, "retinanet_R50_FPN_1x": 36_326_893,
          "fcos_rfla_R18_FPN_cpu": 3_314_491, "faster_rcnn_R18_FPN_cpu": 3_888_581,
          "retinanet_R18_FPN_cpu": 3_448_093}


@pytest.mark.parametrize("name", PARAMS)
def test_parameter_counts_of_the_readme(name):
    model = build_model(zoo_cfg(name, tiny=False))
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def test_benchmark_tool_counts_fcos_forward_dense(capsys):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "benchmark_models", os.path.join(ROOT, "tools", "benchmark_models.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(["--config-file", os.path.join(FCOS_DIR, "fcos_rfla_R18_FPN_cpu.yaml"),
               "--input-size", "512", "512", "--no-timing", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["params"] == PARAMS["fcos_rfla_R18_FPN_cpu"]
    assert round(result["gflops"], 2) == 4.59  # backbone + FPN + head (forward_dense)
