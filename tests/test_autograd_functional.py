"""``tg.autograd.grad`` across tapes (the loop PyTorch's ``jacobian`` runs), and
``tg.autograd.functional``: jacobian, vjp, and the functions that need ``create_graph``.

Each result is compared with PyTorch's for the same inputs, and with finite differences.
"""
import numpy as np
import pytest

import tapegrad as tg

from conftest import fd_grad, still_works

pytestmark = pytest.mark.usefixtures("isolated")


def _np(t):
    return np.array(t.detach().numpy(), np.float64)


# ----- grad() follows links to older tapes ---------------------------------------------------
def test_grad_of_each_output_element_on_a_retained_graph():
    """The first grad() starts a new tape: out[1] is recorded there, linked to out."""
    torch = pytest.importorskip("torch")
    xv = np.array([0.3, -1.2, 2.0])
    for L, conv in ((tg, _np), (torch, lambda t: t.detach().numpy())):
        x = L.tensor(xv, dtype=L.float64, requires_grad=True)
        out = x.sin() * x
        rows = [conv(L.autograd.grad(out[k], x, retain_graph=True)[0]) for k in range(3)]
        if L is tg:
            mine = np.array(rows)
        else:
            theirs = np.array(rows)
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mine, np.diag(np.cos(xv) * xv + np.sin(xv)), atol=1e-12)


def test_grad_through_a_link_after_a_backward():
    """a lives on a graph already backwarded (retained); z, on a new tape, uses a and the
    leaf x: the gradient gathers x's share from both tapes."""
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    a = x * 3
    a.sum().backward(retain_graph=True)
    z = (a * x).sum()                    # d/dx 3 x^2 = 6 x
    (g,) = tg.autograd.grad(z, x)
    np.testing.assert_allclose(_np(g), 6 * np.array([1.0, 2.0, 3.0]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(x.grad), [3.0, 3.0, 3.0])    # grad() touched no .grad
    f = fd_grad(lambda v: float((3 * v * v).sum()), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(_np(g), f, atol=1e-6)


def test_grad_with_respect_to_an_intermediate_on_an_older_tape():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([0.5, 1.5], dtype=L.float64, requires_grad=True)
        y = x.exp()
        L.autograd.grad(y.sum(), x, retain_graph=True)
        z = (y * y).sum()
        res[L.__name__] = [np.array(g.detach().numpy()) for g in L.autograd.grad(z, [y, x])]
    for mine, theirs in zip(res["tapegrad"], res["torch"]):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)


def test_grad_of_a_tensor_with_respect_to_itself_is_the_seed():
    """A non-leaf output that is also an input: its gradient is the seed, once."""
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = x * 2
        v = L.tensor([3.0, 4.0], dtype=L.float64)
        res[L.__name__] = [np.array(g.detach().numpy())
                           for g in L.autograd.grad(y, [y, x], v)]
    for mine, theirs in zip(res["tapegrad"], res["torch"]):
        np.testing.assert_array_equal(mine, theirs)


def test_grad_without_retain_graph_frees_across_links():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    out = x.exp()
    tg.autograd.grad(out[0], x, retain_graph=True)
    tg.autograd.grad(out[1], x)                     # frees out's graph
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        tg.autograd.grad(out[0], x)
    still_works()
