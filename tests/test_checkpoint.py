"""SIRSTCheckpointer: safe reading, the one-line load report, refusal of partial checkpoints
for evaluation, and what training from a partial checkpoint starts from scratch."""
import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, oscar_cfg

from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.engine import CheckpointError, SIRSTCheckpointer, SIRSTTrainer

sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_net  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU_CONFIG = os.path.join(ROOT, "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml")


def export_refused(*args) -> str:
    """Run tools/export_model.py with ``args``; it must refuse with exit code 2 and no
    traceback. Returns its stderr."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/export_model.py"), *args],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    return r.stderr


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SIRSTTrainer.build_model(oscar_cfg())


def _fresh():
    torch.manual_seed(1)
    return SIRSTTrainer.build_model(oscar_cfg())


def test_a_full_checkpoint_loads_with_a_one_line_report(tmp_path, model, caplog):
    SIRSTCheckpointer(model, str(tmp_path)).save("full")
    other = _fresh()
    with caplog.at_level(logging.INFO, logger="deepinfrared_d2.engine.checkpoint"):
        SIRSTCheckpointer(other, require_all=True).load(str(tmp_path / "full.pth"))
    assert "full.pth: 172 of 172 model weights matched, 0 missing, 0 unexpected" in caplog.text
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k

    # Detectron2's .pkl model-zoo format (numpy arrays), as tools/convert_pretrained.py writes
    blob = {"model": {k: v.numpy() for k, v in model.state_dict().items()}, "__author__": "test",
            "matching_heuristics": False}
    with open(tmp_path / "full.pkl", "wb") as f:
        pickle.dump(blob, f)
    other = _fresh()
    SIRSTCheckpointer(other, require_all=True).load(str(tmp_path / "full.pkl"))
    assert torch.equal(other.state_dict()["head.scales.0.scale"],
                       model.state_dict()["head.scales.0.scale"])


def test_a_partial_checkpoint_is_refused_for_evaluation_and_reported_for_training(
        tmp_path, model, caplog):
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    state["old_head.weight"] = torch.zeros(3)
    torch.save({"model": state}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial.pth leaves \d+ of 172 model weights "
                                              r"unloaded \(e.g. head\.coarse"):
        SIRSTCheckpointer(_fresh(), require_all=True).load(str(tmp_path / "partial.pth"))
    caplog.clear()  # the refused load above reports too once an earlier test set INFO level
    with caplog.at_level(logging.INFO, logger="deepinfrared_d2.engine.checkpoint"):
        SIRSTCheckpointer(_fresh()).load(str(tmp_path / "partial.pth"))
    report = [r.getMessage() for r in caplog.records if "model weights matched" in r.getMessage()]
    assert len(report) == 1 and "unexpected (old_head.weight)" in report[0]
    assert caplog.text.rstrip().endswith("these start from scratch: head (46)")


def test_training_from_a_partial_checkpoint_says_what_starts_from_scratch(tmp_path, model, caplog):
    torch.save({"model": {k: v for k, v in model.state_dict().items()
                          if k.startswith("backbone.bottom_up.")}}, tmp_path / "backbone.pth")
    cfg = oscar_cfg(**{"DATASETS.TRAIN": "('sirst_v2_mini_trainval',)", "DATASETS.TEST": "()",
                       "DATALOADER.NUM_WORKERS": "0", "OUTPUT_DIR": str(tmp_path / "out"),
                       "MODEL.WEIGHTS": str(tmp_path / "backbone.pth")})
    trainer = SIRSTTrainer(cfg)
    with caplog.at_level(logging.INFO, logger="deepinfrared_d2.engine.checkpoint"):
        trainer.resume_or_load(resume=False)
    assert "backbone.pth does not hold 62 of 172 model weights; these start from scratch: " \
           "backbone.lateral_convs (8), backbone.fpn_convs (8), head (46)" in caplog.text


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_files_that_are_not_checkpoints_are_never_unpickled(tmp_path, suffix):
    marker = tmp_path / "pwned"
    cases = {"random": np.random.default_rng(0).bytes(4096), "empty": b"",
             "evil": pickle.dumps({"model": {"a": _Evil(str(marker))}})}
    torch.save({"model": {"a": _Evil(str(marker))}}, tmp_path / "evil_torch.pth")
    for name, data in cases.items():
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=f"not a checkpoint: {path}") as e:
            SIRSTCheckpointer(_fresh()).load(str(path))
        assert "weights_only" not in str(e.value)
        if name == "evil" and suffix == ".pkl":  # (a bare pickle is no torch file at all)
            assert "posix.system" in str(e.value) or "os.system" in str(e.value)
    with pytest.raises(CheckpointError, match="os.system|posix.system"):
        SIRSTCheckpointer(_fresh()).load(str(tmp_path / "evil_torch.pth"))
    assert not marker.exists()
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a dict of weights"):
        SIRSTCheckpointer(_fresh()).load(str(tmp_path / "list.pth"))


def test_eval_only_refuses_foreign_and_non_checkpoints_with_exit_code_2(tmp_path, capsys):
    foreign = {"model": {"resnet.conv1.weight": torch.zeros(8, 3, 7, 7)}}
    torch.save(foreign, tmp_path / "foreign.pth")
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(1).bytes(1000))
    for name, message in (("foreign.pth", "leaves 172 of 172 model weights unloaded (e.g. "
                                          "backbone.bottom_up.layer1.0.bn1.bias"),
                          ("noise.pth", "not a checkpoint: ")):
        args = train_net.default_argument_parser().parse_args(
            ["--eval-only", "--config-file", CPU_CONFIG, "OUTPUT_DIR", str(tmp_path / "out"),
             "MODEL.WEIGHTS", str(tmp_path / name)])
        assert train_net.run(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1
        assert name in err and message in err, err


def test_export_refuses_a_partial_checkpoint(tmp_path, model):
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.scales")}
    torch.save({"model": state}, tmp_path / "partial.pth")
    err = export_refused("--config-file", CPU_CONFIG, "--output", str(tmp_path / "m.onnx"),
                         "MODEL.WEIGHTS", str(tmp_path / "partial.pth"))
    assert "partial.pth leaves 2 of 172 model weights unloaded (e.g. head.scales.0.scale" in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_of_an_unsupported_detectron2_model_is_a_clear_error(tmp_path):
    config = os.path.join(ROOT, "projects/Detectron2Baselines/configs/faster_rcnn_R18_FPN_cpu.yaml")
    mask_rcnn = SIRSTTrainer.build_model(get_cfg(config, ["MODEL.DEVICE", "cpu",
                                                          "MODEL.MASK_ON", "True"]))
    torch.save({"model": mask_rcnn.state_dict()}, tmp_path / "mask_rcnn.pth")
    err = export_refused("--config-file", config, "--output", str(tmp_path / "m.onnx"),
                         "MODEL.WEIGHTS", str(tmp_path / "mask_rcnn.pth"), "MODEL.MASK_ON", "True")
    assert ("faster_rcnn_R18_FPN_cpu.yaml: GeneralizedRCNN cannot be exported to ONNX: it has a "
            "mask or keypoint head (only Faster R-CNN is supported)") in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["--int8", "{out}"], "--int8 must name another file than --output"),
    (["--int8", "{tmp}/q.onnx", "--calibration-dataset", "no_such_split"], "no_such_split"),
])
def test_export_refuses_bad_int8_arguments(tmp_path, args, message):
    out = str(tmp_path / "m.onnx")
    err = export_refused("--config-file", CPU_CONFIG, "--output", out,
                         *(a.format(out=out, tmp=tmp_path) for a in args))
    assert message in err
    assert not os.listdir(tmp_path)
