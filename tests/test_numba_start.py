"""Numba's start in a process without scipy.linalg (compile_notice._no_blas_import).

Numba's CPU target imports ``numba.np.arraymath``, which probes for BLAS by importing
scipy.linalg (0.2 s of every process's first backward). No tapegrad kernel calls BLAS, so
the first kernel call answers the probe without the import. These tests pin what must not
change for anyone: tapegrad's gradients, Numba's own linear algebra in the same process
(its probe still says BLAS is there, and np.dot in a user's kernel imports and uses it),
and the order in which a user may have started Numba before tapegrad."""
import os
import subprocess
import sys
import textwrap

import pytest

FIRST_BACKWARD = textwrap.dedent("""
    import sys
    import numpy as np
    {before}
    import tapegrad as tg
    w = tg.tensor([[0.5, -1.0], [2.0, 0.25], [1.5, -0.5]], dtype=tg.float64, requires_grad=True)
    x = tg.tensor([[1.0, 2.0, 3.0]], dtype=tg.float64)
    x.mm(w).tanh().sum().backward()
    want = (1 - np.tanh(x.numpy() @ w.detach().numpy()) ** 2) * x.numpy().T
    assert np.allclose(w.grad.numpy(), want, rtol=0, atol=1e-15), w.grad
    print("scipy.linalg after the first backward:", "scipy.linalg" in sys.modules)
    import numba
    import numba.np.arraymath
    print("numba sees BLAS:", numba.np.arraymath._HAVE_BLAS)
    @numba.njit
    def dot(a, b):
        return np.dot(a, b)
    a, b = np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2) - 2.5
    assert np.array_equal(dot(a, b), a @ b)
    print("np.dot in a user's kernel:", "scipy.linalg" in sys.modules)
""")


def _run(before=""):
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(os.getcwd(), ".numba_cache"))
    out = subprocess.run([sys.executable, "-c", FIRST_BACKWARD.format(before=before)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_the_first_backward_does_not_import_scipy_linalg_and_numba_linalg_still_works():
    pytest.importorskip("scipy")         # (a test extra: CI has it)
    out = _run()
    assert "scipy.linalg after the first backward: False" in out
    assert "numba sees BLAS: True" in out
    assert "np.dot in a user's kernel: True" in out


def test_without_scipy_numba_probes_as_it_does():
    """scipy blocked: the probe is Numba's own (an ImportError, so no BLAS), and tapegrad's
    gradients are unchanged."""
    script = FIRST_BACKWARD.format(before='sys.modules["scipy"] = None').split(
        "@numba.njit")[0]               # (np.dot itself needs scipy)
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(os.getcwd(), ".numba_cache"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "numba sees BLAS: False" in out.stdout


def test_numba_started_before_tapegrad_is_left_as_it_is():
    pytest.importorskip("scipy")
    out = _run("import numba, numba.np.arraymath")
    assert "scipy.linalg after the first backward: True" in out      # its own probe ran
    assert "numba sees BLAS: True" in out
