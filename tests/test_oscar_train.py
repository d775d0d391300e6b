"""A few OSCAR training iterations on real SIRST-V2 crops lower the loss; the trainer runs
end to end with the CPU config."""
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from helpers import oscar_cfg

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.data.mapper import NoCoDatasetMapper

CPU_CONFIG = "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cpu_cfg(**overrides):
    return oscar_cfg("oscar_R18_FPN_P2_cpu", **overrides)


@pytest.fixture(scope="module")
def target_records():
    try:
        records = DatasetCatalog.get("sirst_v2_mini_trainval")
    except Exception as e:  # pragma: no cover - dataset missing
        pytest.skip(f"SIRST-V2 not available: {e}")
    return [r for r in records if r["annotations"]][:4]


@pytest.mark.parametrize("config", ["oscar_R18_FPN_P2_cpu", "oscar_lite_R18_FPN_P2_cpu"])
def test_a_few_iterations_lower_the_loss(target_records, config):
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = oscar_cfg(config, **{"INPUT.TARGET_CROP.SIZE": "(96, 96)",
                               "INPUT.TARGET_CROP.TARGET_PROB": "1.0"})
    mapper = NoCoDatasetMapper(cfg, is_train=True)
    batch = [mapper(r) for r in target_records]
    assert all(len(d["instances"]) > 0 for d in batch)
    model = build_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.SOLVER.BASE_LR / 2,
                            weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    totals = []
    with EventStorage():
        for _ in range(8):
            losses = model(batch)
            assert all(torch.isfinite(v) for v in losses.values())
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals.append(loss.item())
    assert totals[-1] < 0.5 * totals[0], totals
    assert min(totals[-3:]) < min(totals[:3])


def test_sirst_trainer_runs_two_iterations(tmp_path):
    from deepinfrared_d2.engine import SIRSTTrainer

    cfg = cpu_cfg(**{"SOLVER.MAX_ITER": "2", "SOLVER.IMS_PER_BATCH": "2",
                     "SOLVER.WARMUP_ITERS": "1", "SOLVER.EPOCH_ITERS": "1",
                     "INPUT.TARGET_CROP.SIZE": "(64, 64)", "DATALOADER.NUM_WORKERS": "0",
                     "DATASETS.TRAIN": "('sirst_v2_mini_trainval',)", "DATASETS.TEST": "()",
                     "SOLVER.CHECKPOINT_PERIOD": "100", "OUTPUT_DIR": str(tmp_path)})
    trainer = SIRSTTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 2  # Detectron2 leaves iter = max_iter after training
    history = trainer.storage.history("total_loss").values()
    assert len(history) == 2 and all(np.isfinite(v) for v, _ in history)
    assert (tmp_path / "model_final.pth").exists()
