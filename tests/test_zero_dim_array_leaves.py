"""A 0-d leaf whose value is a 0-d NumPy array (a reduction's result detached, a reshape
to ()), not a Python float: its grad storage is a buffer of its own (it was none, and the
sweep wrote the grad through address 0: a segfault), and ``.data`` swaps between the two
kinds of 0-d value keep its grad, as PyTorch's."""
import numpy as np
import pytest

import tapegrad as tg


def _leaf(L, kind, v=3.0):
    if kind == "array":                          # a 0-d array value
        return L.tensor([v, 0.0], dtype=L.float64).sum().detach().requires_grad_()
    return L.tensor(v, dtype=L.float64, requires_grad=True)    # a Python float value


STEPS = {
    "mul": lambda w: w * 2.0,
    "with_array": lambda w: (w * tg.ones(3, dtype=tg.float64)).sum() if isinstance(w, tg.Tensor)
    else (w * __import__("torch").ones(3, dtype=w.dtype)).sum(),
    "exp_self": lambda w: w.exp() * w,
    "twice": lambda w: w + w,
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_0d_array_leaf_gets_its_grad_and_keeps_it(step):
    w = _leaf(tg, "array")
    assert type(w._v) is np.ndarray and w._v.shape == ()
    f = STEPS[step]
    f(w).backward()
    first = w.grad.item()
    f(w).backward()                              # accumulated into the same storage
    assert w.grad.item() == 2 * first
    closed = {"mul": 2.0, "with_array": 3.0, "exp_self": np.exp(3.0) * 4.0, "twice": 2.0}
    assert first == pytest.approx(closed[step], rel=1e-15)
    torch = pytest.importorskip("torch")
    t = _leaf(torch, "array")
    STEPS[step](t).backward()
    STEPS[step](t).backward()
    assert w.grad.item() == t.grad.item()


def test_hooks_retain_and_zero_on_a_0d_array_leaf():
    w = _leaf(tg, "array")
    w.register_hook(lambda g: g * 10)
    (w * 2.0).backward()
    assert w.grad.item() == 20.0
    with tg.no_grad():
        w.grad.zero_()
    (w * 3.0).backward()
    assert w.grad.item() == 30.0
    w.grad = None
    (w * 1.0).backward()
    assert w.grad.item() == 10.0


@pytest.mark.parametrize("old,new", [("float", "array"), ("array", "float")])
def test_data_swapped_between_kinds_of_0d_value_keeps_the_grad(old, new):
    w = _leaf(tg, old, 0.2)
    (w * 3.0).backward()
    w.data = _leaf(tg, new, 0.75).detach()
    (w * 3.0).backward()
    (w * w).backward()
    assert w.item() == 0.75 and w.grad.item() == 3.0 + 3.0 + 1.5
    torch = pytest.importorskip("torch")
    t = _leaf(torch, old, 0.2)
    (t * 3.0).backward()
    t.data = _leaf(torch, new, 0.75).detach()
    (t * 3.0).backward()
    (t * t).backward()
    assert w.grad.item() == t.grad.item()


def test_a_0d_array_leaf_in_tg_compile():
    f = tg.compile(lambda w, x: (w * x).sum())
    x = tg.ones(3, dtype=tg.float64)
    for k in range(3):                           # a recording, then replays
        w = _leaf(tg, "array", 1.0 + k)
        f(w, x * (k + 1)).backward()
        assert w.grad.item() == 3.0 * (k + 1)
