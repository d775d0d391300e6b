"""tools/benchmark_train_step.py and benchmark_models.py's back-ends and breakdown run end to
end on a tiny OSCAR (the figures themselves are for the tools to report, not for tests)."""
import glob
import importlib.util
import json
import os

import pytest
from helpers import ROOT

from baselines.__main__ import main as baselines_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = os.path.join(ROOT, "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml")
TINY = ["MODEL.FLEX_RESNET.BASE_CHANNELS", "16", "MODEL.FLEX_RESNET.STEM_CHANNELS", "16",
        "MODEL.FLEX_FPN.OUT_CHANNELS", "32", "MODEL.OSCAR.FEAT_CHANNELS", "16",
        "MODEL.OSCAR.GN_GROUPS", "8", "MODEL.OSCAR.STACKED_CONVS", "1",
        "INPUT.TARGET_CROP.SIZE", "(64, 64)", "SOLVER.IMS_PER_BATCH", "2",
        "DATALOADER.NUM_WORKERS", "0", "DATASETS.TRAIN", "('sirst_v2_mini_trainval',)"]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_train_step_variants_side_by_side(capsys, sirst_root):
    tool = load_tool("benchmark_train_step")
    assert tool.main(["--config-file", CONFIG, "--variants", "fp32"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert tool.main(["--config-file", CONFIG, "--iters", "1", "--warmup", "1", "--json",
                      "--variants", "float32", "channels_last",
                      "float32:INPUT.TARGET_CROP.SIZE=(32,32)", "--", *TINY]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("CPU: ") and "capability" in out[0] and "load average" in out[0]
    rows = [json.loads(line) for line in out if line.startswith("{")]
    assert [r["variant"] for r in rows[:3]] == ["float32", "channels_last",
                                                "float32:INPUT.TARGET_CROP.SIZE=(32,32)"]
    assert all(r["s_per_iter"] > 0 for r in rows)
    assert rows[3]["variant"] == "data: one batch, main process"
    assert any(line.startswith("data loader's share") for line in out)


def test_models_back_ends_and_breakdown(capsys, sirst_root):
    tool = load_tool("benchmark_models")
    assert tool.main(["--config-file", CONFIG, "--input-size", "64", "96", "--runs", "1",
                      "--backends", "eager", "channels_last", "onnxruntime", "onnxruntime_int8",
                      "--breakdown", "--json", *TINY]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["ms_per_image"]) == {"eager", "channels_last", "onnxruntime",
                                           "onnxruntime_int8"}
    assert all(v["ms_min"] > 0 for v in result["ms_per_image"].values())
    parts = result["breakdown_ms"]
    assert {"backbone.bottom_up", "backbone.lateral_convs", "backbone.fpn_convs",
            "head.refine_cls_convs", "head.coarse_cls_convs", "decoding (dense_detections)",
            "post-processing (cell_detections)"} <= set(parts)
    assert "capability" in result["cpu"]


def test_zoo_table_has_a_row_per_cpu_recipe_with_its_shipped_run(capsys, sirst_root, tmp_path):
    tool = load_tool("benchmark_zoo")
    assert tool.main(["--runs", "1", "--image-size", "64", "80",
                      "--classical-output", str(tmp_path / "tophat")]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split("|") for line in out if line.startswith("| ")][1:]
    configs = sorted(glob.glob(os.path.join(ROOT, "projects/*/configs/*_cpu.yaml")))
    # the classical reference row last: the figure `python -m baselines run` gives the same run
    classical = rows.pop()
    assert baselines_cli(["run", "--method", "tophat", "--dataset", "sirst_v2_test_full",
                          "--output", str(tmp_path / "tophat"), "--no-progress"]) == 0
    with open(tmp_path / "tophat" / "run.json") as f:
        expected = json.load(f)["evaluation"]["noco"]["mNoCoAP"]
    assert classical[1].strip().startswith("tophat (classical")
    assert classical[5].strip() == f"{expected:.4f}" and float(classical[4]) > 0
    assert len(rows) == len(configs) >= 5
    shipped = 0
    for row, config in zip(rows, configs):
        name = os.path.splitext(os.path.basename(config))[0]
        assert f"({name})" in row[1] and f"configs/{name}.yaml" in row[8]
        assert float(row[3]) > 0 and float(row[4]) > 0  # GFLOPs, ms/image
        folder = os.path.join(os.path.dirname(os.path.dirname(config)), "model_zoo", name)
        if os.path.isdir(folder):
            shipped += 1
            with open(os.path.join(folder, "metrics.json")) as f:
                last = [e for e in map(json.loads, f) if "noco/mNoCoAP" in e][-1]
            assert row[5].strip() == f"{last['noco/mNoCoAP']:.4f}" and float(row[6]) > 0
        else:
            assert row[5].strip() == "not trained yet"
    assert shipped >= 1 and out[-1].startswith("ms/image: this CPU, ")
