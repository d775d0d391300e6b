"""CPU precision by hardware: ``MODEL.CPU_AMP_DTYPE`` auto/bfloat16/float32 decided from the
CPU's capability (injected here: an AVX2-only CPU and CPUs with native bfloat16), and the
trainer and the test loop running at the decided precision (a real OSCAR on real images)."""
import logging
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, oscar_cfg

from deepinfrared_d2.engine import SIRSTTrainer, precision
from deepinfrared_d2.engine.precision import CPUInfo, cpu_autocast_dtype
from deepinfrared_d2.engine.trainer import CPUAutocastTrainer

CONFIG = os.path.join(ROOT, "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AVX2_EPYC = CPUInfo("AVX2", frozenset(), False, "AMD EPYC 7B13")
AVX512_BF16 = CPUInfo("AVX512", frozenset({"avx512_bf16"}), True, "Intel Xeon (Sapphire Rapids)")
AMX = CPUInfo("AVX512", frozenset({"amx_bf16", "avx512_bf16"}), True, "Intel Xeon (AMX)")
# bfloat16 in hardware but oneDNN limited to AVX2 kernels (ONEDNN_MAX_CPU_ISA=AVX2)
BF16_OFF = CPUInfo("AVX2", frozenset({"avx512_bf16"}), False, "Intel Xeon, oneDNN capped")


@pytest.fixture
def precision_log():
    """Records of the precision logger (a child of the non-propagating "detectron2" one)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    precision.logger.addHandler(handler)
    old = precision.logger.level
    precision.logger.setLevel(logging.INFO)
    precision._log_choice.cache_clear()
    yield records
    precision.logger.removeHandler(handler)
    precision.logger.setLevel(old)


@pytest.mark.parametrize("info, setting, expected", [
    (AVX2_EPYC, "auto", None), (AVX2_EPYC, "float32", None),
    (AVX2_EPYC, "bfloat16", torch.bfloat16), (BF16_OFF, "auto", None),
    (AVX512_BF16, "auto", torch.bfloat16), (AMX, "auto", torch.bfloat16),
    (AVX512_BF16, "float32", None), (AMX, "bfloat16", torch.bfloat16),
])
def test_decision_by_capability(info, setting, expected, precision_log):
    assert cpu_autocast_dtype(setting, info) == expected
    assert cpu_autocast_dtype(setting, info) == expected  # decided once: logged once
    assert len([r for r in precision_log if r.levelno == logging.INFO]) == 1
    line = precision_log[0].getMessage()
    assert info.capability in line and f"MODEL.CPU_AMP_DTYPE={setting}" in line
    assert ("bfloat16 autocast" if expected else "float32") in line
    warnings = [r.getMessage() for r in precision_log if r.levelno == logging.WARNING]
    if setting == "bfloat16" and not precision.native_bfloat16(info):
        assert len(warnings) == 1 and "emulated" in warnings[0] and "40x" in warnings[0]
    else:
        assert not warnings


def test_bad_setting_is_refused():
    with pytest.raises(ValueError, match="MODEL.CPU_AMP_DTYPE"):
        cpu_autocast_dtype("float16", AVX2_EPYC)


# A tiny OSCAR (same code paths) trained 1 iteration on 64x64 crops of real images, with AMP on.
TINY = [
    "MODEL.FLEX_RESNET.BASE_CHANNELS", "16", "MODEL.FLEX_RESNET.STEM_CHANNELS", "16",
    "MODEL.FLEX_FPN.OUT_CHANNELS", "32", "MODEL.OSCAR.FEAT_CHANNELS", "16",
    "MODEL.OSCAR.GN_GROUPS", "8", "MODEL.OSCAR.STACKED_CONVS", "1",
    "INPUT.TARGET_CROP.SIZE", "(64, 64)", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "1",
    "SOLVER.WARMUP_ITERS", "1", "SOLVER.EPOCH_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "100",
    "DATALOADER.NUM_WORKERS", "0", "DATASETS.TRAIN", "('sirst_v2_mini_trainval',)",
    "DATASETS.TEST", "()", "SOLVER.AMP.ENABLED", "True", "TEST.AMP.ENABLED", "True",
]


def tiny_cfg(out_dir, setting="auto"):
    cfg = oscar_cfg()
    cfg.merge_from_list(TINY + ["MODEL.CPU_AMP_DTYPE", setting, "OUTPUT_DIR", str(out_dir)])
    return cfg


@pytest.mark.parametrize("info, setting, expected", [
    (AVX2_EPYC, "auto", torch.float32), (AVX512_BF16, "auto", torch.bfloat16),
    (AVX512_BF16, "float32", torch.float32),
])
def test_trainer_and_test_loop_follow_the_decision(tmp_path, monkeypatch, sirst_root, info,
                                                   setting, expected):
    monkeypatch.setattr(precision, "cpu_info", lambda: info)  # the CPU, not the model
    cfg = tiny_cfg(tmp_path, setting)
    trainer = SIRSTTrainer(cfg)
    assert isinstance(trainer._trainer, CPUAutocastTrainer) == (expected == torch.bfloat16)
    seen = []  # dtype of a head conv's output in every forward pass
    trainer.model.head.refine_conv_cls.register_forward_hook(
        lambda module, args, out: seen.append(out.dtype))
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert seen == [expected]
    cfg.defrost()
    cfg.DATASETS.TEST = ("sirst_v2_mini_test",)
    results = SIRSTTrainer.test(cfg, trainer.model)
    assert 0 <= results["noco"]["mNoCoAP"] <= 1
    assert len(seen) > 1 and set(seen[1:]) == {expected}


def test_train_net_on_an_avx2_capped_process_logs_float32(tmp_path, sirst_root):
    """A real process whose oneDNN and ATen kernels are capped to AVX2 (the reporter's CPU
    kind, emulated with the libraries' own switches) trains the AMP recipe in float32."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2",
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_net.py"),
                           "--config-file", CONFIG, *TINY, "OUTPUT_DIR", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "log.txt").read_text()
    lines = [ln for ln in log.splitlines() if "CPU precision:" in ln]
    assert len(lines) == 1, lines
    assert "capability AVX2" in lines[0] and "AMP runs in float32" in lines[0]
    assert "MODEL.CPU_AMP_DTYPE=auto" in lines[0]

