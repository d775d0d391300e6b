"""Shared fixtures: the real SIRST-V2 dataset (never mocked) and an isolated GT cache."""
import io
import logging
import os

import pytest

import deepinfrared_d2  # noqa: F401  (registers sirst_v2_* datasets)
from deepinfrared_d2.data import sirst_v2_root


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep the tests' NoCo GT cache out of the user's ~/.cache."""
    old = os.environ.get("DEEPIR_CACHE_DIR")
    os.environ["DEEPIR_CACHE_DIR"] = str(tmp_path_factory.mktemp("deepir-cache"))
    yield
    if old is None:
        os.environ.pop("DEEPIR_CACHE_DIR", None)
    else:
        os.environ["DEEPIR_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def close_test_loggers():
    """Detectron2's ``setup_logger`` adds a console and a log.txt handler for every output
    directory and keeps the file open; remove and close what a test added, so that later tests
    do not write each line to every earlier test's log.txt (and to the console once per run)."""
    from detectron2.utils.logger import _cached_log_stream, setup_logger

    names = ("detectron2", "deepinfrared_d2", "fvcore")
    before = {n: set(logging.getLogger(n).handlers) for n in names}
    yield
    for name in names:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h not in before[name]]:
            logger.removeHandler(handler)
            stream = getattr(handler, "stream", None)
            # the log.txt files detectron2 opened, not the console streams pytest captures
            if type(stream) is io.TextIOWrapper and os.path.isfile(str(stream.name)):
                stream.close()
    setup_logger.cache_clear()
    _cached_log_stream.cache_clear()


@pytest.fixture(scope="session")
def sirst_root():
    """Path of the real SIRST-V2 copy; the suite needs it (README: Datasets)."""
    root = sirst_v2_root()
    if not os.path.isdir(os.path.join(root, "mixed")):
        pytest.fail(f"SIRST-V2 not found at {root}: run ./scripts/test.sh (it links "
                    "../shared/data/sirst-v2) or set DETECTRON2_DATASETS")
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one intra-op thread (spin-waiting OpenMP threads are slow on a shared
    2-core machine). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
