"""An operation that overflows, divides by zero or makes a NaN gives inf or NaN silently,
as PyTorch's: no NumPy RuntimeWarning, eagerly, in its backward (the jitted sweep and
NumPy's BLAS for large products) and in tg.compile replays."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.layout import BLAS_MIN

BIG = 1e300


def _mm(L, n, p, q):
    a = L.full((n, p), BIG, dtype=L.float64, requires_grad=True)
    b = L.full((p, q), BIG, dtype=L.float64, requires_grad=True)
    return [a, b], lambda a, b: a.mm(b).sum()


CASES = {
    "mm_small": lambda L: _mm(L, 2, 3, 2),
    "mm_blas": lambda L: _mm(L, 40, 40, 40),             # 64,000 multiply-adds >= BLAS_MIN
    "matmul_broadcast": lambda L: (
        [L.full((2, 3, 4), BIG, dtype=L.float64, requires_grad=True),
         L.full((4, 5), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: (a @ b).sum()),
    "bmm": lambda L: (
        [L.full((2, 3, 4), BIG, dtype=L.float64, requires_grad=True),
         L.full((2, 4, 5), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: a.bmm(b).sum()),
    "dot": lambda L: (
        [L.full((3,), BIG, dtype=L.float64, requires_grad=True),
         L.full((3,), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: a.dot(b)),
    "mv": lambda L: (
        [L.full((2, 3), BIG, dtype=L.float64, requires_grad=True),
         L.full((3,), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: a.mv(b).sum()),
    "mul_exp_div": lambda L: (
        [L.tensor([BIG, 0.0, -1.0, 800.0], dtype=L.float64, requires_grad=True)],
        lambda x: (x * x + x.exp() + 1.0 / x + x.log() + x.sqrt()).sum()),
    "scalar_mul": lambda L: (
        [L.tensor(BIG, dtype=L.float64, requires_grad=True)],
        lambda x: x * x * 10.0),
}


def _run(L, name):
    leaves, fn = CASES[name](L)
    out = fn(*leaves)
    out.backward()
    return float(out.detach()), [np.asarray(t.grad.tolist(), dtype=np.float64) for t in leaves]


def _same(a, b):
    """The same infs and NaNs, finite values to rounding (BLAS sums in its own order)."""
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=0)
    return True


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_warning_and_the_inf_or_nan_pytorch_gives(name):
    assert 40 * 40 * 40 >= BLAS_MIN            # mm_blas goes through NumPy's BLAS backward
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a RuntimeWarning would raise here
        value, grads = _run(tg, name)
    assert not np.isfinite(value) or any(not np.isfinite(g).all() for g in grads)
    torch = pytest.importorskip("torch")
    t_value, t_grads = _run(torch, name)
    assert _same(value, t_value)
    for g, tg_ in zip(grads, t_grads):
        assert _same(g, tg_)


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_warning_in_tg_compile_replays(name):
    leaves, fn = CASES[name](tg)
    f = tg.compile(fn)
    eager = _run(tg, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):                      # a recording, then replays
            for t in leaves:
                t.grad = None
            out = f(*leaves)
            out.backward()
    assert _same(float(out.detach()), eager[0])
    for t, g in zip(leaves, eager[1]):
        assert _same(np.asarray(t.grad.tolist(), dtype=np.float64), g)
