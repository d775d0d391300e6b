"""tools/benchmark_svt_floor.py: one row per image size, a clear error for a bad size."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "benchmark_svt_floor.py")


def test_floor_table_row_and_bad_shape():
    res = subprocess.run([sys.executable, TOOL, "--shapes", "60x70", "--repeat", "1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    row = [line for line in res.stdout.splitlines() if line.startswith("| 60x70 ")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[1] == "6 x 2500"  # Dai grid: 2 x 3 corners of 50x50 patches, step 10
    gram, _, eig, prod, floor = (float(c) for c in cells[2:])
    assert abs(floor - (gram + eig + prod)) <= 0.015  # printed with two decimals
    bad = subprocess.run([sys.executable, TOOL, "--shapes", "10x10"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and re.search(r"10x10.*smaller than one 50x50 patch", bad.stderr)
    assert "Traceback" not in bad.stderr
