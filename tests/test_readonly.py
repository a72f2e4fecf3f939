"""A read-only install: tapegrad imported from a directory it cannot write, with no
writable Numba cache anywhere, still imports and differentiates (a warning at most).
And the sweeps under Numba's bounds checking: no out-of-bounds access in any family."""
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import numpy as np
    import tapegrad as tg
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    y = (x * x).sum() + x.exp().mean()
    y.backward()
    want = 2 * np.array([1.0, 2.0, 3.0]) + np.exp([1.0, 2.0, 3.0]) / 3
    assert np.allclose(x.grad.numpy(), want), x.grad
    print("ok")
""")


def _read_only_copy(tmp_path):
    """A copy of the package nobody can write to, in a folder everyone can read."""
    dst = tmp_path / "site" / "tapegrad"
    shutil.copytree(ROOT / "tapegrad", dst, ignore=shutil.ignore_patterns("__pycache__"))
    for p in [dst.parent, *dst.rglob("*")] + [dst]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return dst.parent


@pytest.mark.parametrize("no_cache", [False, True], ids=["unusable-cache-dir", "no-cache"])
def test_read_only_install_without_a_cache_still_works(tmp_path, no_cache):
    """The package copied read-only, NUMBA_CACHE_DIR pointing under a regular file (no
    cache directory can be made there) and HOME read-only. (As root the in-tree
    __pycache__ stays writable whatever its mode, so the second case forces the no-cache
    path tapegrad takes when Numba finds no writable cache locator.)"""
    site = _read_only_copy(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(site), HOME=str(home), PYTHONDONTWRITEBYTECODE="1",
               NUMBA_CACHE_DIR=str(blocker / "cache"))
    if no_cache:
        env["TAPEGRAD_NO_CACHE"] = "1"
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
    assert "Traceback" not in out.stderr


BOUNDS = textwrap.dedent("""
    import numpy as np
    import tapegrad as tg
    rng = np.random.default_rng(0)
    def leaf(*shape):
        return tg.tensor(rng.standard_normal(shape), dtype=tg.float64, requires_grad=True)
    a, b, v, s = leaf(3, 4), leaf(4), leaf(4, 2), tg.tensor(0.7, dtype=tg.float64,
                                                               requires_grad=True)
    outs = [
        (a * b + a / (b.abs() + 1) - b ** 2).sum(),                 # binary, broadcasting
        (a.exp().log1p().tanh().sigmoid().clamp(min=0.1) ** 3).sum(), # unary
        a.sum(1).mean() + a.mean(0).sum(),                          # reductions
        a.amax(1).sum() + a.softmax(1)[:, 0].sum() + a.var(0).sum() + a.logsumexp(1).sum()
        + a.prod(1).sum() + a.norm(),                               # lanes
        a.mm(v).sum() + (a @ b).sum() + b.dot(b),                   # products
        a[1:, None, 2].sum() + a.t()[0].sum() + a.reshape(12)[::3].sum()
        + a.expand(2, 3, 4).sum() + a.permute(1, 0).sum(),          # views
        a[[0, 2, 2]].sum() + a[a > 0].sum() + a.gather(1, tg.tensor([[0], [1], [3]])).sum()
        + a.max(1)[0].sum(),                                        # gathers
        tg.cat([a, a * 2]).sum() + tg.stack([b, b]).sum(),          # multi
        tg.where(a > 0, a, b).sum(),
        (s * s + s.exp() - 1 / s).relu() * 2,                       # scalars
    ]
    c = a * 1
    c[0] = b                                                        # CopySlices
    outs.append(c.sum())
    sum(outs).backward()
    f = tg.compile(lambda w, z: (w.mm(v).relu() * z).sum())
    for _ in range(3):
        f(a, s).backward()
    print("ok")
""")


def test_sweeps_under_numba_bounds_checking(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", BOUNDS], env=env, capture_output=True,
                         text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
