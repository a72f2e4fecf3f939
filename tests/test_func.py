"""``tg.func``: grad, grad_and_value, vjp, jacrev and hessian, compared with ``torch.func``
(1e-12 in float64), nested, with auxiliary outputs, closures over parameters, and errors."""
import numpy as np
import pytest

import tapegrad as tg

from conftest import fd_grad, still_works

pytestmark = pytest.mark.usefixtures("isolated")


def _np(t):
    if isinstance(t, (tuple, list)):
        return [_np(v) for v in t]
    if not isinstance(t, tg.Tensor):
        return np.array(t.detach().numpy(force=True), np.float64)
    return np.array(t.detach().numpy(), np.float64)


def _same(a, b, tol=1e-12):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v, tol)
        return
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _t(L, v):
    return L.tensor(np.asarray(v, np.float64), dtype=L.float64)


def _f(a):
    return (a.sin() * a ** 3).sum() + a.exp().mean()


def _g(a, b):
    return ((a * b).tanh() * b).sum() + (a / (1 + b * b)).sum()


def _vec(a, b):
    return a.exp() * b, (a * b.sin()).softmax(0)


CASES = {
    "grad": lambda L: L.func.grad(_f)(_t(L, [0.3, -0.7, 1.2])),
    "grad-argnums": lambda L: L.func.grad(_g, argnums=(0, 1))(_t(L, [0.3, 1.1]),
                                                              _t(L, [-0.4, 0.8])),
    "grad-argnum-1": lambda L: L.func.grad(_g, argnums=1)(_t(L, [0.3, 1.1]),
                                                          _t(L, [-0.4, 0.8])),
    "grad-scalar": lambda L: L.func.grad(lambda s: s.sin() * s * s)(L.tensor(0.7,
                                                                             dtype=L.float64)),
    "grad-has-aux": lambda L: L.func.grad(lambda a: (_f(a), a.cos()), has_aux=True)(
        _t(L, [0.3, -0.7])),
    "grad-and-value": lambda L: L.func.grad_and_value(_f)(_t(L, [0.3, -0.7])),
    "grad-of-grad": lambda L: L.func.grad(L.func.grad(lambda s: s.sin() * s.exp()))(
        L.tensor(0.4, dtype=L.float64)),
    "third": lambda L: L.func.grad(L.func.grad(L.func.grad(lambda s: s.tanh() * s ** 4)))(
        L.tensor(0.4, dtype=L.float64)),
    "jacrev": lambda L: L.func.jacrev(lambda a: a.exp() * a.sum())(_t(L, [0.3, -0.7, 1.2])),
    "jacrev-multi": lambda L: L.func.jacrev(_vec, argnums=(0, 1))(_t(L, [0.3, -0.7]),
                                                                  _t(L, [1.1, 0.4])),
    "jacrev-matrix": lambda L: L.func.jacrev(lambda m: m @ m.t())(
        _t(L, [[0.3, -0.7], [1.1, 0.4], [0.5, 2.0]])),
    "jacrev-of-grad": lambda L: L.func.jacrev(L.func.grad(_f))(_t(L, [0.3, -0.7, 1.2])),
    "hessian": lambda L: L.func.hessian(_f)(_t(L, [0.3, -0.7, 1.2])),
    "hessian-two": lambda L: L.func.hessian(_g, argnums=(0, 1))(_t(L, [0.3, 1.1]),
                                                                _t(L, [-0.4, 0.8])),
    "vjp": lambda L: (lambda r: (r[0], r[1]((_t(L, [1.0, -2.0]), _t(L, [0.5, 0.25])))))(
        L.func.vjp(_vec, _t(L, [0.3, -0.7]), _t(L, [1.1, 0.4]))),
    "vjp-single": lambda L: (lambda r: (r[0], r[1](_t(L, [1.0, -2.0, 3.0]))))(
        L.func.vjp(lambda a: a.sin() * a, _t(L, [0.3, -0.7, 1.2]))),
    # an inner grad differentiates with respect to its own y, not the outer x it reads
    "nested-closure": lambda L: L.func.grad(lambda x: x * L.func.grad(lambda y: x * y)(x))(
        L.tensor(3.0, dtype=L.float64)),
    "unused": lambda L: L.func.grad(lambda a, b: (a * a).sum(), argnums=(0, 1))(
        _t(L, [1.0, 2.0]), _t(L, [3.0])),
}


@pytest.mark.parametrize("name", CASES)
def test_transforms_match_torch_func(name):
    torch = pytest.importorskip("torch")
    mine, theirs = CASES[name](tg), CASES[name](torch)
    _same(_np(mine), _np(theirs))
    flat = [t for t in _leaves(mine)]
    assert flat and not any(t.requires_grad for t in flat)      # plain results, as PyTorch's


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _leaves(v)]
    return [x]


def test_hessian_against_finite_differences():
    x0 = np.array([0.3, -0.7, 1.2])
    H = _np(tg.func.hessian(_f)(tg.tensor(x0, dtype=tg.float64)))
    grad = tg.func.grad(_f)
    for k in range(3):
        row = fd_grad(lambda v: float(_np(grad(tg.tensor(v, dtype=tg.float64)))[k]), x0,
                      eps=1e-5)
        np.testing.assert_allclose(H[k], row, rtol=1e-6, atol=1e-8)


def test_gradient_through_a_parameter_the_function_reads():
    """The result depends on w (requires grad): it keeps its graph, so w gets gradients."""
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        w = _t(L, [1.0, -2.0, 0.5]).requires_grad_()
        g = L.func.grad(lambda a: (w * a.sin() * a).sum())(_t(L, [0.3, -0.7, 1.2]))
        assert g.requires_grad
        (g * g).sum().backward()
        res[L] = _np(g), _np(w.grad)
    _same(list(res[tg]), list(res[torch]))


def test_inputs_that_require_grad_keep_the_graph():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = _t(L, [0.3, -0.7]).requires_grad_()
        g = L.func.grad(_f)(x)
        (h,) = L.autograd.grad(g.sum(), x)
        res[L] = _np(g), _np(h)
    _same(list(res[tg]), list(res[torch]))


def test_errors_match_torch_func():
    torch = pytest.importorskip("torch")

    def cases(L):
        x = _t(L, [1.0, 2.0])
        return [lambda: L.func.grad(lambda a: a * a)(x),
                lambda: L.func.grad(lambda a: 3.0)(x),
                lambda: L.func.grad(lambda a: (a * a).sum(), argnums=2)(x),
                lambda: L.func.grad(lambda a: (a * a).sum())(3.0),
                lambda: L.func.grad(lambda a: (a * a).sum(), has_aux=True)(x),
                lambda: L.func.vjp(lambda a: a * a, x)[1](L.ones(3, dtype=L.float64)),
                lambda: L.func.jacrev(lambda a: a * a, argnums=1)(x)]
    for mine, theirs in zip(cases(tg), cases(torch)):
        got = want = None
        try:
            mine()
        except Exception as e:  # noqa: BLE001
            got = type(e), str(e)
        try:
            theirs()
        except Exception as e:  # noqa: BLE001
            want = type(e), str(e).replace("torch.", "tapegrad.")
        assert want is not None and got == want
    still_works()
