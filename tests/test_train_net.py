"""tools/train_net.py as users run it: 2-process CPU (gloo) launch, --resume after an
interrupted run, --eval-only reproducing the recorded metrics, and clear errors."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_net  # noqa: E402

from deepinfrared_d2.engine import setup_cfg  # noqa: E402

CONFIG = os.path.join(ROOT, "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml")
# A tiny OSCAR (same code paths, a fraction of the width) on 64x64 crops of 4 real images.
TINY = [
    "MODEL.FLEX_RESNET.BASE_CHANNELS", "16", "MODEL.FLEX_RESNET.STEM_CHANNELS", "16",
    "MODEL.FLEX_FPN.OUT_CHANNELS", "32", "MODEL.OSCAR.FEAT_CHANNELS", "16",
    "MODEL.OSCAR.GN_GROUPS", "8", "MODEL.OSCAR.STACKED_CONVS", "2",
    "INPUT.TARGET_CROP.SIZE", "(64, 64)", "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.WARMUP_ITERS", "2", "SOLVER.EPOCH_ITERS", "4", "DATALOADER.NUM_WORKERS", "0",
    "DATASETS.TRAIN", "('sirst_v2_mini_trainval',)", "DATASETS.TEST", "('sirst_v2_mini_test',)",
    "SEED", "7",
]


def cli(out_dir, *extra, max_iter=6, period=2):
    return ["--config-file", CONFIG, *extra, *TINY, "SOLVER.MAX_ITER", str(max_iter),
            "SOLVER.CHECKPOINT_PERIOD", str(period), "OUTPUT_DIR", str(out_dir)]


def metrics_lines(out_dir):
    with open(os.path.join(out_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_train_net(args, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_net.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, **kw)


def test_two_process_cpu_launch_trains(tmp_path):
    proc = run_train_net(["--num-gpus", "2", *cli(tmp_path, max_iter=3, period=100),
                          "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = open(tmp_path / "log.txt").read()
    assert "World size: 2" in log
    iters = [m["iteration"] for m in metrics_lines(tmp_path) if "total_loss" in m]
    assert iters and iters[-1] == 2
    assert os.path.isfile(tmp_path / "model_final.pth")
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))  # TensorBoard


def test_resume_after_interruption_then_eval_only_reproduces_the_metrics(tmp_path):
    # 1. Start a run and kill it as soon as it has written a checkpoint.
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools/train_net.py"),
                          *cli(tmp_path, max_iter=40, period=2)], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    marker = tmp_path / "last_checkpoint"
    deadline = time.time() + 300
    while not marker.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert marker.exists(), "the run never wrote a checkpoint"
    ckpt_name = marker.read_text().strip()
    assert ckpt_name != "model_final.pth"
    saved = torch.load(tmp_path / ckpt_name, map_location="cpu", weights_only=False)

    # 2. --resume restores iteration, optimizer and LR scheduler from that checkpoint.
    from deepinfrared_d2.engine import SIRSTTrainer

    args = train_net.default_argument_parser().parse_args(
        cli(tmp_path, "--resume", max_iter=8, period=2))
    cfg = setup_cfg(args)
    trainer = SIRSTTrainer(cfg)
    trainer.resume_or_load(resume=True)
    assert trainer.start_iter == saved["iteration"] + 1
    # The scheduler is stored by the LRScheduler hook, the optimizer by the inner trainer.
    state = saved["trainer"]
    assert trainer.scheduler.state_dict() == state["hooks"]["LRScheduler"]
    assert trainer.scheduler.state_dict()["last_epoch"] == saved["iteration"] + 1
    opt_state = trainer.optimizer.state_dict()["state"]
    assert len(opt_state) == len(state["_trainer"]["optimizer"]["state"]) > 0
    for k, v in state["_trainer"]["optimizer"]["state"].items():
        assert torch.equal(opt_state[k]["exp_avg"], v["exp_avg"])
        assert opt_state[k]["step"] == v["step"]
    trainer.train()
    logged = [m for m in metrics_lines(tmp_path) if "total_loss" in m]
    assert logged[-1]["iteration"] == 7
    recorded = [m for m in metrics_lines(tmp_path) if "noco/mNoCoAP" in m][-1]

    # 3. --eval-only of the final checkpoint reproduces the recorded figures exactly.
    eval_dir = tmp_path / "eval"
    args = train_net.default_argument_parser().parse_args(
        ["--eval-only", *cli(eval_dir), "MODEL.WEIGHTS", str(tmp_path / "model_final.pth")])
    from deepinfrared_d2.engine.train_net import main as train_main  # tools/train_net.py's body

    results = train_main(args)
    for task, metrics in results.items():
        for key, value in metrics.items():
            assert recorded[f"{task}/{key}"] == value, (task, key)
    train_pred = open(tmp_path / "inference/sirst_v2_mini_test/predictions.json").read()
    assert open(eval_dir / "inference/sirst_v2_mini_test/predictions.json").read() == train_pred
    assert len(json.loads(train_pred)) > 0


def test_eval_only_without_weights_is_a_clear_error(tmp_path, capsys):
    args = train_net.default_argument_parser().parse_args(
        ["--eval-only", *cli(tmp_path), "MODEL.WEIGHTS", str(tmp_path / "missing.pth")])
    assert train_net.run(args) == 2
    assert "missing.pth" in capsys.readouterr().err


def test_cpu_amp_trains_and_tests_with_bfloat16_autocast(tmp_path):
    from deepinfrared_d2.engine import SIRSTTrainer
    from deepinfrared_d2.engine.trainer import CPUAutocastTrainer

    # bfloat16 forced (emulated, slower, on CPUs without it): the path works on every CPU
    args = train_net.default_argument_parser().parse_args(
        cli(tmp_path, max_iter=2, period=100)
        + ["SOLVER.AMP.ENABLED", "True", "TEST.AMP.ENABLED", "True",
           "MODEL.CPU_AMP_DTYPE", "bfloat16"])
    cfg = setup_cfg(args)
    trainer = SIRSTTrainer(cfg)
    assert isinstance(trainer._trainer, CPUAutocastTrainer)
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = [m["total_loss"] for m in metrics_lines(tmp_path) if "total_loss" in m]
    assert losses and all(0 < v < float("inf") for v in losses)
    recorded = [m for m in metrics_lines(tmp_path) if "noco/mNoCoAP" in m][-1]
    again = SIRSTTrainer.test(cfg, trainer.model)  # bfloat16 network, float32 post-processing
    assert again["noco"]["mNoCoAP"] == recorded["noco/mNoCoAP"]
    preds = json.loads(open(tmp_path / "inference/sirst_v2_mini_test/predictions.json").read())
    assert preds and all(0 <= p["score"] <= 1 for p in preds)


def test_a_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    proc = run_train_net(cli(tmp_path, max_iter=2, period=100) + ["DATASETS.TEST", "()"],
                         timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    final = tmp_path / "model_final.pth"
    stamp = final.stat().st_mtime_ns
    # Resume with a zero pixel std: the normalised input is infinite, the loss NaN.
    proc = run_train_net(cli(tmp_path, "--resume", max_iter=4, period=100)
                         + ["DATASETS.TEST", "()", "MODEL.PIXEL_STD", "[0.0, 0.0, 0.0]"],
                         timeout=600)
    assert proc.returncode == 3
    assert "loss became NaN or infinite at iteration 2" in proc.stderr
    assert f"last good checkpoint is kept at {final}" in proc.stderr
    assert final.stat().st_mtime_ns == stamp


def test_best_checkpoint_on_a_validation_split_and_refused_on_a_test_split(tmp_path):
    from deepinfrared_d2.engine import SIRSTTrainer

    def cfg_for(test_set):
        args = train_net.default_argument_parser().parse_args(
            cli(tmp_path, max_iter=4, period=100) + [
            "SOLVER.BEST_CHECKPOINT.ENABLED", "True", "TEST.EVAL_PERIOD", "2",
            "DATASETS.TEST", f"('{test_set}',)"])
        return setup_cfg(args)

    with pytest.raises(ValueError, match="is a test split"):
        SIRSTTrainer(cfg_for("sirst_v2_mini_test"))
    trainer = SIRSTTrainer(cfg_for("sirst_v2_mini_trainval"))
    trainer.resume_or_load(resume=False)
    trainer.train()
    evals = [m for m in metrics_lines(tmp_path) if "noco/mNoCoAP" in m]
    assert len(evals) == 2  # after iteration 2 and after the last one
    assert (tmp_path / "model_best.pth").is_file()
    best = torch.load(tmp_path / "model_best.pth", map_location="cpu", weights_only=False)
    assert best["iteration"] == max(evals, key=lambda m: m["noco/mNoCoAP"])["iteration"]
