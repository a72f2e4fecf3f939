"""Whether a create_graph gradient requires grad, as PyTorch's: abs's is g * sgn(x) and
relu's threshold_backward(g, out), both recorded with a zero derivative, so the gradient
of x.abs().sum() or x.relu().sum() requires grad and differentiating it again gives zeros
(tapegrad raised "does not require grad" there); clamp's is a masked g, which does not.
And the second derivative of std through a lane of equal values is finite (it was NaN).
Found by a differential fuzz of second derivatives against torch."""
import numpy as np
import pytest

import tapegrad as tg

X = [0.5, -1.5, 2.0, 0.0]
CASES = [("abs", lambda x: x.abs(), True), ("relu", lambda x: x.relu(), True),
         ("clamp", lambda x: x.clamp(-1, 1), False), ("floor", lambda x: x.floor() + x, False),
         ("abs-0d", lambda x: x[1].abs() * 1.0, True), ("relu-scalar", None, True)]


def _grad(L, f, scalar=False):
    if scalar:                               # Python-float 0-d tensors (the scalar path)
        xs = [L.tensor(v, dtype=L.float64, requires_grad=True) for v in X]
        y = sum(x.relu() for x in xs)
        gs = L.autograd.grad(y, xs, create_graph=True)
        return xs, gs
    x = L.tensor(X, dtype=L.float64, requires_grad=True)
    g, = L.autograd.grad(f(x).sum(), [x], create_graph=True)
    return [x], [g]


@pytest.mark.parametrize("name, f, requires", CASES, ids=[c[0] for c in CASES])
def test_requires_grad_of_the_gradient_and_its_derivative(name, f, requires):
    xs, gs = _grad(tg, f, scalar=f is None)
    assert all(g.requires_grad == requires for g in gs)
    if requires:
        sum(g.sum() for g in gs).backward()
        for x in xs:
            assert np.array_equal(x.grad.numpy(), np.zeros(tuple(x.shape)))


@pytest.mark.parametrize("name, f, requires", CASES, ids=[c[0] for c in CASES])
def test_against_pytorch(name, f, requires):
    torch = pytest.importorskip("torch")
    ours, theirs = _grad(tg, f, f is None), _grad(torch, f, f is None)
    for g, t in zip(ours[1], theirs[1]):
        assert g.requires_grad == t.requires_grad
        assert np.array_equal(g.detach().numpy(), t.detach().numpy())


def test_a_gradient_penalty_through_relu_and_abs_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 3))
    res = []
    for L in (tg, torch):
        w = L.tensor(w0, requires_grad=True)
        x = L.tensor(x0, requires_grad=True)
        y = ((x @ w).relu().sum(1) + x.abs().sum(1)).sum()
        gx, = L.autograd.grad(y, [x], create_graph=True)
        ((gx * gx).sum() - 1.0).backward()
        res.append((gx.detach().numpy().copy(), w.grad.numpy().copy(), x.grad.numpy().copy()))
    for a, b in zip(*res):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_second_derivative_of_std_through_a_lane_of_equal_values_is_finite():
    """std's gradient is 0 where std is 0 (a where); the 1 / std beside it must not reach
    the next derivative as 0 * inf."""
    torch = pytest.importorskip("torch")
    res = []
    for L in (tg, torch):
        x = L.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 7.0]], dtype=L.float64, requires_grad=True)
        g, = L.autograd.grad(x.std(0).sum(), [x], create_graph=True)
        (g * g).sum().backward()
        res.append((g.detach().numpy().copy(), x.grad.numpy().copy()))
    assert np.isfinite(res[0][1]).all()
    assert np.allclose(res[0][0], res[1][0], rtol=1e-12, atol=0)
    assert np.allclose(res[0][1], res[1][1], rtol=1e-9, atol=1e-15)
