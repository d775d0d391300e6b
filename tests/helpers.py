"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path)."""
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from deepinfrared_d2.config import get_cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OSCAR_CONFIGS = os.path.join(ROOT, "projects", "OSCAR", "configs")


def oscar_cfg(config: str = "oscar_R18_FPN_P2_cpu", **overrides):
    """An OSCAR config from ``projects/OSCAR/configs/<config>.yaml`` on CPU, with
    ``KEY=value`` overrides given as keyword arguments (``**{"SOLVER.MAX_ITER": "2"}``)."""
    cfg = get_cfg(os.path.join(OSCAR_CONFIGS, f"{config}.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


def register_records(name: str, records, **metadata) -> None:
    """(Re-)register an in-memory dataset as a NoCo-evaluated SIRST dataset."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=["Target"], evaluator_type="noco", **metadata)


def sirst_copy(tmp_path, sirst_root, ids, link: bool = True):
    """A SIRST-V2-shaped folder ``<tmp_path>/sirst_v2`` holding a few real images (symlinks,
    or copies with ``link=False``) and a split ``s`` listing them, to break on purpose."""
    import shutil

    root = tmp_path / "sirst_v2"
    for sub in ("mixed", "annotations/bboxes", "annotations/masks", "splits"):
        (root / sub).mkdir(parents=True)
    for i in ids:
        for sub, name in (("mixed", f"{i}.png"), ("annotations/bboxes", f"{i}.xml"),
                          ("annotations/masks", f"{i}_pixels0.png")):
            src = os.path.join(os.path.abspath(sirst_root), sub, name)
            if link:
                os.symlink(src, root / sub / name)
            else:
                shutil.copy(src, root / sub / name)
    (root / "splits" / "s.txt").write_text("\n".join(ids) + "\n")
    return root
