"""When NumPy's ufuncs are not laid out as numpy/ufuncobject.h says (an unknown NumPy
build), tapegrad still imports and works: the loop table stays empty and tg.compile runs
functions eagerly, with one warning, instead of failing at import or replaying with other
loops (a replay must never silently differ from eager mode)."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import numpy_loops, replay

pytestmark = pytest.mark.usefixtures("isolated")


def test_the_table_says_why_when_a_loop_cannot_be_found():
    def unknown_layout(ufunc, dtype):
        raise RuntimeError(f"tapegrad: NumPy's ufunc {ufunc.__name__} is not laid out as "
                           "numpy/ufuncobject.h says (an unknown NumPy build?)")
    table, why = numpy_loops._table(unknown_layout)
    assert why is not None and "not laid out" in why
    assert len(table) == 4 * len(numpy_loops.UFUNCS)     # still there: kernels link


def test_the_table_holds_numpys_loops_here():
    table, why = numpy_loops._table()
    assert why is None
    k = 2 * numpy_loops.UFUNCS.index("exp") + 1             # exp's float64 loop
    assert table[2 * k] == numpy_loops.loop_of(np.exp, np.float64)[0] != 0


def test_compile_runs_eagerly_and_warns_once_without_the_loops(monkeypatch):
    monkeypatch.setattr(numpy_loops, "UNAVAILABLE", "tapegrad: np.exp's loop not found")
    monkeypatch.setattr(replay, "_warned", [])

    def f(x):
        return (x.exp() * x.tanh()).sum()
    g = tg.compile(f)
    x = tg.tensor(np.linspace(-1.0, 1.0, 7), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="runs functions eagerly"):
        out = g(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # once a process, not per call
        for k in range(3):
            y = tg.tensor(np.linspace(-1.0, 1.0, 7) * (k + 2), requires_grad=True)
            got = g(y)
            want = f(y)
            assert got.item() == want.item()
            got.backward()
            gy = y.grad.clone()
            y.grad = None
            want.backward()
            assert np.array_equal(gy.numpy(), y.grad.numpy())
    out.backward()
    v = np.linspace(-1.0, 1.0, 7)                           # d/dx e^x tanh x
    assert np.allclose(x.grad.numpy(), np.exp(v) * (np.tanh(v) + 1 - np.tanh(v) ** 2))
    stats = g.stats()
    assert stats["recordings"] == 0 and stats["replays"] == 0
    assert stats["eager_calls"] == 4
