"""The disk cache of a light kernel (one whose machine code calls other kernels by symbol,
kernels_base.jit_light) stays usable when a kernel it calls was compiled again since: in
another process racing on a cold cache, or after that kernel's own entry went stale. Numba's
symbol names carry a counter of the process that compiled them, so the cached caller would
call a symbol that no longer exists: before the check in ``_load_kernel`` this crashed the
interpreter (a segmentation fault at the first backward). Now the caller compiles again."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WORKLOAD = textwrap.dedent("""
    import numba, numpy as np
    for k in range({shift}):     # other compiles first: this process's counter moves on
        numba.njit(lambda x, k=k: x + k)(1.0)
    import tapegrad as tg
    from tapegrad._generated import sweeps
    w = tg.tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True)
    loss = (w * 2.0).tanh().sum()
    assert loss._tape.sweep_tier(sweeps) is sweeps.backward_all_basic
    loss.backward()
    want = 2.0 * (1.0 - np.tanh(2.0 * np.linspace(-1.0, 1.0, 5)) ** 2)
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-14)
    print("ok")
""")


def _run(cache, shift):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("TAPEGRAD_NO_CACHE", None)
    return subprocess.run([sys.executable, "-c", WORKLOAD.format(shift=shift)], env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_cached_caller_whose_callee_was_compiled_again_compiles_again(tmp_path):
    from tapegrad.kernels_base import CACHE, _LIGHT
    if not (CACHE and _LIGHT):
        pytest.skip("no disk cache or no light kernels with this Numba")
    first = _run(tmp_path, 0)                 # caller and callees cached together
    assert first.returncode == 0 and "ok" in first.stdout, first.stderr[-2000:]
    callee = [p for p in Path(tmp_path).rglob("kernels_grads._unary_b-*")]
    assert callee, "the basic tier's unary kernel was not cached"
    for p in callee:                          # its entry goes stale alone
        p.unlink()
    # the callee compiles again here under another name; the caller's cached code must not
    # be used against it
    again = _run(tmp_path, 7)
    assert again.returncode == 0 and "ok" in again.stdout, \
        f"returncode {again.returncode}: {again.stderr[-2000:]}"
    third = _run(tmp_path, 3)                 # and what was saved again loads cleanly
    assert third.returncode == 0 and "ok" in third.stdout, third.stderr[-2000:]
