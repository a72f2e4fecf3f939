"""Smoke test of the timing scripts: each ``bench/<name>.py --quick`` exits 0 and prints a table.

Peers that are not installed are skipped by the scripts themselves (with a note), so this
runs with the test extras alone. The scripts check their own results (same final loss,
same gradients, same adjoints) and exit 1 when a check fails.
"""
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["walkthrough_mlp", "walkthrough_parts", "compiled_step", "scalar_graph", "sweep",
           "large", "startup"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_bench_script_quick(name):
    env = dict(os.environ)
    # one Numba cache for all the scripts (CI sets its own): kernels compile once
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(),
                                                   "tapegrad_bench_numba_cache"))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", f"{name}.py"), "--quick"],
                       env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    lines = p.stdout.splitlines()
    assert any(line.startswith("|---") for line in lines), p.stdout[-3000:]
    assert any(line.startswith("| ") and line.count("|") >= 3 for line in lines)
    assert "(written to" not in p.stdout           # --quick never touches RESULTS.md
