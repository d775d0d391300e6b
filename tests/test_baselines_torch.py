"""The PyTorch path of the low-rank methods (``device="cpu-torch"``, float64 on the CPU)
equals the NumPy path: maps within 1e-4 of their maximum, the same P1 points, the same
iterations and stops, on a synthetic image and on three small real SIRST-V2 images."""
import importlib
import os
from functools import partial

import numpy as np
import pytest
from test_baselines_methods import synthetic

import baselines
from baselines.devices import DeviceError, cuda_available, resolve_device
from baselines.methods.ipi import ipi_target
from baselines.methods.nipps import nipps_target
from sirst.dataset import sirst_v2_root
from sirst.image_io import read_gray

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOWRANK = [n for n in baselines.list_methods() if baselines.get_method(n).torch_impl]
# Small real images (187x174, 233x161, 210x210) on which every low-rank map is non-empty.
REAL = ("Misc_371", "Misc_141", "Misc_369")


def _real(image_id):
    return read_gray(os.path.join(sirst_v2_root(), "mixed", f"{image_id}.png"))


def _solver(name):
    """The torch solver of IPI / NIPPS on the CPU, for ``ipi_target`` / ``nipps_target``."""
    module = importlib.import_module(f"baselines.torch_solvers.{name}")
    return partial(module.apg_rpca if name == "ipi" else module.ialm_pssv, device="cpu-torch")


TARGETS = {"ipi": ipi_target, "nipps": nipps_target}


def _assert_same_maps(ref, got, image):
    assert ref.max() > 0, "empty map: a useless comparison"
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
    p_ref, p_got = (baselines.detect_points(s, image, protocol="p1") for s in (ref, got))
    np.testing.assert_array_equal(p_got[:, :2], p_ref[:, :2])


def test_the_four_low_rank_methods_have_a_torch_path():
    assert LOWRANK == ["ipi", "nipps", "pstnn", "ript"]


@pytest.mark.parametrize("name", LOWRANK)
def test_torch_equals_numpy_on_a_synthetic_image(name):
    """Through the registry: ``method(image, device="cpu-torch")``."""
    m, image = baselines.get_method(name), synthetic(128, (57, 73))
    _assert_same_maps(m(image), m(image, device="cpu-torch"), image)


@pytest.mark.parametrize("name", LOWRANK)
@pytest.mark.parametrize("image_id", REAL)
def test_torch_equals_numpy_on_real_images(name, image_id):
    """Maps and P1 points; for IPI / NIPPS also the iterations, the stop and the rank of
    every iteration (solver traces) but IPI's first: there sigma_2 of D/2 lies exactly on the
    threshold mu_0 / 2 = sigma_2 / 2 (Gao's mu_0), so rounding decides whether it counts, and
    it is shrunk to 0 either way."""
    image = _real(image_id)
    if name not in TARGETS:
        m = baselines.get_method(name)
        _assert_same_maps(m(image), m(image, device="cpu-torch"), image)
        return
    ref, got = {}, {}
    e_ref = np.maximum(TARGETS[name](image.astype(np.float64), info=ref), 0.0)
    e_got = np.maximum(TARGETS[name](image.astype(np.float64), info=got,
                                     solver=_solver(name)), 0.0)
    _assert_same_maps(e_ref, e_got, image)
    assert (got["iterations"], got["stop"]) == (ref["iterations"], ref["stop"])
    first = 1 if name == "ipi" else 0
    assert [t[0] for t in got["trace"]][first:] == [t[0] for t in ref["trace"]][first:]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_torch_solver_honours_e_tol(name):
    image = _real(REAL[0]).astype(np.float64)
    ref, got = {}, {}
    TARGETS[name](image, info=ref, e_tol=5e-2)
    TARGETS[name](image, info=got, e_tol=5e-2, solver=_solver(name))
    assert ref["stop"] == got["stop"] == "e_tol" and got["iterations"] == ref["iterations"]


def test_device_names_and_errors():
    m = baselines.get_method("tophat")
    image = synthetic(64, (30, 30))
    np.testing.assert_array_equal(m(image, device="cpu-torch"), m(image))  # no torch path
    with pytest.raises(ValueError, match="unknown device"):
        baselines.get_method("ipi")(image, device="gpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == "cpu" and resolve_device("cpu-torch") == "cpu-torch"
    assert resolve_device(None) == resolve_device("auto") == ("cuda" if cuda_available()
                                                              else "cpu")
    if not cuda_available():
        with pytest.raises(DeviceError, match="--device cpu"):
            resolve_device("cuda")


def test_device_benchmark_tool_rows(capsys):
    """tools/benchmark_lowrank_devices.py: one row per method and image with both devices'
    seconds, the map difference and the P1 agreement; a bad device list is exit code 2."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
    import benchmark_lowrank_devices as tool

    assert tool.main(["--methods", "pstnn", "--images", "Misc_216",
                      "--devices", "cpu,cpu-torch"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| pstnn | Misc_216 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "302x200" and float(cells[3]) > 0 and float(cells[4]) > 0
    assert float(cells[6]) < 1e-4 and cells[7] == "True"
    assert "| pstnn | < 0.3 Mpx |" in out and "CPU: " in out
    assert tool.main(["--methods", "pstnn", "--images", "Misc_216", "--devices", "gpu"]) == 2
