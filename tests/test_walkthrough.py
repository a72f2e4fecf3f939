"""The walkthrough "Introducing torch autograd", step by step, in tapegrad.

The numbers and node names are the ones the walkthrough publishes (and issue 2 lists);
the two-layer network is trained side by side with PyTorch from the same initial values.
"""
import numpy as np
import pytest

import tapegrad as tg

from conftest import in_fresh_thread

pytestmark = pytest.mark.usefixtures("isolated")

MAT_025 = "tensor([[0.2500, 0.2500],\n        [0.2500, 0.2500]])"


# ----- autograd basics -------------------------------------------------------------------
def test_mean_of_ones():
    x = tg.ones(2, 2, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.grad_fn is None and x.grad is None
    assert repr(x) == "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"
    y = x.mean()
    assert y.grad_fn is not None and y.grad_fn.name() == "MeanBackward0"
    assert repr(y.grad_fn).startswith("<MeanBackward0")
    assert repr(y) == "tensor(1., grad_fn=<MeanBackward0>)"
    assert not y.is_leaf and y.requires_grad
    y.backward()
    assert x.grad.shape == (2, 2) and x.grad.dtype is tg.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 0.25, np.float32))
    assert repr(x.grad) == MAT_025
    assert str(x.grad) == MAT_025


def _digging_deeper():
    x1 = tg.ones(2, 2, requires_grad=True)
    x2 = tg.tensor([1.1], requires_grad=True)
    y = x1 * (x2 + 2)
    z = y.pow(2) * 3
    out = z.mean()
    y.retain_grad()
    z.retain_grad()
    return x1, x2, y, z, out


def test_digging_deeper_graph():
    x1, x2, y, z, out = _digging_deeper()
    assert repr(out) == "tensor(28.8300, grad_fn=<MeanBackward0>)"
    assert y.retains_grad and z.retains_grad and not out.retains_grad
    assert not x1.retains_grad        # leaves do not "retain": they always get .grad

    names = []
    node = out.grad_fn
    for _ in range(4):
        names.append(node.name())
        node_before = node
        node = node.next_functions[0][0]
    assert names == ["MeanBackward0", "MulBackward0", "PowBackward0", "MulBackward0"]

    # y = x1 * (x2 + 2): the left branch is x1's AccumulateGrad, the right one x2 + 2.
    y_node = node_before
    assert y_node == y.grad_fn
    (acc, nr0), (add, nr1) = y_node.next_functions
    assert (nr0, nr1) == (0, 0)
    assert acc.name() == "AccumulateGrad" and repr(acc).startswith("<AccumulateGrad")
    assert acc.variable is x1
    assert add.name() == "AddBackward0"
    # x2 + 2: x2's AccumulateGrad, and (None, 0) for the Python number 2
    (acc2, _), none2 = add.next_functions
    assert acc2.name() == "AccumulateGrad" and acc2.variable is x2
    assert none2 == (None, 0)
    assert acc.next_functions == () and acc2.next_functions == ()
    # z = y.pow(2) * 3: the 3 is (None, 0); pow(2) lists only y
    mul3 = out.grad_fn.next_functions[0][0]
    assert mul3 == z.grad_fn
    assert mul3.next_functions[1] == (None, 0)
    assert len(mul3.next_functions[0][0].next_functions) == 1
    # the same leaf gives the same AccumulateGrad node wherever it is reached
    assert x1.grad_fn is None and x2.grad_fn is None


def test_digging_deeper_gradients():
    x1, x2, y, z, out = _digging_deeper()
    out.backward()
    np.testing.assert_allclose(z.grad.numpy(), np.full((2, 2), 0.25), rtol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), np.full((2, 2), 4.65), rtol=1e-6)
    np.testing.assert_allclose(x1.grad.numpy(), np.full((2, 2), 14.415), rtol=1e-6)
    assert x2.grad.shape == (1,)           # the broadcast is sum-reduced back to (1,)
    np.testing.assert_allclose(x2.grad.numpy(), [18.6], rtol=1e-6)
    assert repr(z.grad) == MAT_025
    assert repr(y.grad) == "tensor([[4.6500, 4.6500],\n        [4.6500, 4.6500]])"
    assert repr(x1.grad) == "tensor([[14.4150, 14.4150],\n        [14.4150, 14.4150]])"
    assert repr(x2.grad) == "tensor([18.6000])"
    assert out.grad_fn.name() == "MeanBackward0"   # the graph is still inspectable


def test_digging_deeper_matches_pytorch():
    torch = pytest.importorskip("torch")
    x1, x2, y, z, out = _digging_deeper()
    t1 = torch.ones(2, 2, requires_grad=True)
    t2 = torch.tensor([1.1], requires_grad=True)
    ty = t1 * (t2 + 2)
    tz = ty.pow(2) * 3
    tout = tz.mean()
    ty.retain_grad()
    tz.retain_grad()
    assert repr(out) == repr(tout)

    def chain(n):
        names = []
        while n is not None:
            names.append(n.name().replace("torch::autograd::", ""))
            nf = n.next_functions
            names.append(tuple(None if m is None else m.name().replace("torch::autograd::", "")
                               for m, _ in nf))
            n = nf[-1][0] if nf else None
        return names
    assert chain(out.grad_fn) == chain(tout.grad_fn)
    out.backward()
    tout.backward()
    for a, b in [(z, tz), (y, ty), (x1, t1), (x2, t2)]:
        assert a.grad.shape == tuple(b.grad.shape) and a.grad.dtype is tg.float32
        # float32: tapegrad accumulates in float64, so the last bit may differ
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=2e-7, atol=0)
        assert repr(a.grad) == repr(b.grad)


# ----- the two-layer network ---------------------------------------------------------------
def _data(dtype):
    """The walkthrough's data and initial weights, drawn by tapegrad."""
    tg.manual_seed(42)
    n, d_in, d_hidden, d_out = 100, 3, 32, 1
    x = tg.randn(n, d_in, dtype=dtype)
    y = x[:, 0, None] * 0.2 - x[:, 1, None] * 1.3 - x[:, 2, None] * 0.5 \
        + tg.randn(n, 1, dtype=dtype)
    w1 = tg.randn(d_in, d_hidden, dtype=dtype, requires_grad=True)
    w2 = tg.randn(d_hidden, d_out, dtype=dtype, requires_grad=True)
    b1 = tg.zeros(1, d_hidden, dtype=dtype, requires_grad=True)
    b2 = tg.zeros(1, d_out, dtype=dtype, requires_grad=True)
    return x, y, [w1, w2, b1, b2]


def _train(lib, x, y, params, epochs=200, lr=1e-4):
    """The walkthrough's loop, written once for tapegrad and PyTorch alike."""
    w1, w2, b1, b2 = params
    losses = []
    for _ in range(epochs):
        y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with lib.no_grad():
            w1.sub_(lr * w1.grad)
            w2.sub_(lr * w2.grad)
            b1.sub_(lr * b1.grad)
            b2.sub_(lr * b2.grad)
            w1.grad.zero_()
            w2.grad.zero_()
            b1.grad.zero_()
            b2.grad.zero_()
    return np.array(losses)


def test_network_data_and_graph():
    x, y, (w1, w2, b1, b2) = _data(tg.float32)
    assert x.shape == (100, 3) and y.shape == (100, 1) and x.dtype is tg.float32
    assert not y.requires_grad and y.is_leaf
    xv = x.numpy().astype(np.float64)
    resid = y.numpy() - (0.2 * xv[:, :1] - 1.3 * xv[:, 1:2] - 0.5 * xv[:, 2:3])
    assert 0.5 < resid.std() < 1.5        # y is the columns' combination plus N(0, 1) noise
    y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
    loss = (y_pred - y).pow(2).sum()
    assert y_pred.shape == (100, 1)
    names = []
    node = loss.grad_fn
    while node is not None:
        names.append(node.name())
        last = node
        node = node.next_functions[0][0]
    assert names == ["SumBackward0", "PowBackward0", "SubBackward0", "AddBackward0",
                     "MmBackward0", "ClampBackward1", "AddBackward0", "MmBackward0"]
    # x.mm(w1): x needs no grad, so (None, 0) as PyTorch; w1 is reached by AccumulateGrad
    assert last.next_functions[0] == (None, 0)
    assert last.next_functions[1][0].variable is w1
    sub = loss.grad_fn.next_functions[0][0].next_functions[0][0]
    assert sub.name() == "SubBackward0" and sub.next_functions[1] == (None, 0)   # y


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_network_trains_like_pytorch(dtype, rtol):
    torch = pytest.importorskip("torch")
    x, y, params = _data(getattr(tg, dtype))
    tx = torch.tensor(x.numpy())
    ty = torch.tensor(y.numpy())
    tparams = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    assert all(t.dtype == getattr(torch, dtype) for t in [tx, ty] + tparams)
    # A thread of its own records on a fresh tape, as the walkthrough run as a script does
    # (test_network_after_an_unrelated_graph covers a tape that other graphs share).
    losses = in_fresh_thread(_train, tg, x, y, params)
    tlosses = _train(torch, tx, ty, tparams)
    assert len(losses) == 200 and np.isfinite(losses).all()
    np.testing.assert_allclose(losses, tlosses, rtol=rtol, atol=0)
    assert losses[-1] < losses[0]
    for p, tp in zip(params, tparams):
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
        np.testing.assert_array_equal(p.grad.numpy(), 0)       # zeroed after each step
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(),
                                   rtol=100 * rtol, atol=100 * rtol)


def test_network_trains_without_pytorch():
    x, y, params = _data(tg.float64)
    first = [p.detach().numpy().copy() for p in params]
    losses = in_fresh_thread(_train, tg, x, y, params)
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    assert losses[-1] < 0.5 * losses[0]
    assert (np.diff(losses) < 0).mean() > 0.9           # gradient descent: mostly downhill
    assert all(not np.array_equal(p.detach().numpy(), f) for p, f in zip(params, first))


def test_network_after_an_unrelated_graph():
    # A backward that reaches only part of the tape (another graph is pending on it) must
    # not make the next backward through the same leaves fail.
    x, y, params = _data(tg.float64)
    pending = (params[0] + 2).sum()     # a graph the user builds and never differentiates
    losses = _train(tg, x, y, params, epochs=3)
    assert losses[-1] < losses[0]
    assert pending.grad_fn.name() == "SumBackward0"
    pending.backward()                  # the pending graph is still there to differentiate
    np.testing.assert_array_equal(params[0].grad.numpy(), 1.0)


def test_network_after_an_unrelated_graph_in_pytorch():
    torch = pytest.importorskip("torch")
    x, y, params = _data(tg.float64)
    tparams = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    pending = (tparams[0] + 2).sum()
    losses = _train(torch, torch.tensor(x.numpy()), torch.tensor(y.numpy()), tparams, epochs=3)
    assert losses[-1] < losses[0] and pending.grad_fn.name() == "SumBackward0"
    pending.backward()
    np.testing.assert_array_equal(tparams[0].grad.numpy(), 1.0)
