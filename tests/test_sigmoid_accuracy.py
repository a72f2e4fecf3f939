"""sigmoid far below 0: 1 / (1 + e^-x) keeps its relative accuracy there (the form
0.5 (tanh(x/2) + 1) the array forward once used underflowed: 0 at x = -100 in float64 where
the value is 3.7e-44, and 6e-7 off at x = -5 in float32, where the function is 0.0067)."""
import math

import numpy as np
import pytest

import tapegrad as tg

X = np.array([-745.0, -700.0, -100.0, -30.0, -5.0, -0.7, 0.0, 0.3, 5.0, 30.0, 40.0])


def _closed_form(x):
    return np.array([1.0 / (1.0 + math.exp(-v)) if v > -709 else math.exp(v) for v in x])


@pytest.mark.parametrize("dtype, rtol", [(tg.float64, 1e-15), (tg.float32, 1e-6)])
def test_relative_accuracy_on_both_tails(dtype, rtol):
    x = X if dtype is tg.float64 else X[X > -100]      # (float32's range ends near -103)
    xs = tg.tensor(x, dtype=dtype).numpy().astype(np.float64)   # the values as stored
    got = tg.tensor(x, dtype=dtype).sigmoid().numpy().astype(np.float64)
    want = _closed_form(xs)
    tiny = np.finfo(np.float32 if dtype is tg.float32 else np.float64).tiny
    ok = want > tiny * 16                                # (subnormal results: absolute)
    assert np.allclose(got[ok], want[ok], rtol=rtol, atol=0)
    assert np.allclose(got[~ok], want[~ok], rtol=0, atol=tiny * 16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_grads_are_pytorchs(dtype):
    torch = pytest.importorskip("torch")
    x = X if dtype == "float64" else X[X > -100]
    a = tg.tensor(x, dtype=getattr(tg, dtype), requires_grad=True)
    b = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    ya, yb = a.sigmoid(), b.sigmoid()
    assert np.array_equal(ya.detach().numpy(), yb.detach().numpy())
    ya.sum().backward()
    yb.sum().backward()
    assert np.allclose(a.grad.numpy(), b.grad.numpy(), rtol=2e-7 if dtype == "float32" else
                       1e-15, atol=0)


def test_compiled_sigmoid_is_eagers_to_the_bit():
    f = lambda t: (t.sigmoid() * 3.0).sum()
    cf = tg.compile(f)
    rng = np.random.default_rng(3)
    for dt in (tg.float32, tg.float64):
        for _ in range(3):
            v = rng.normal(scale=40.0, size=20)
            outs = []
            for fn in (f, cf):
                t = tg.tensor(v, dtype=dt, requires_grad=True)
                y = fn(t)
                y.backward()
                outs.append((y.item(), t.grad.numpy().copy()))
            assert outs[0][0] == outs[1][0] and np.array_equal(outs[0][1], outs[1][1])
