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


# ----- tg.autograd.functional ------------------------------------------------------------------
from tapegrad.autograd import functional as F   # noqa: E402  (the import a user writes)
from tapegrad.autograd.functional import jacobian, vjp   # noqa: E402,F401


def _fns(L):
    """The test functions, written once for tapegrad and PyTorch."""
    w = L.tensor([[0.5, -1.0, 2.0]], dtype=L.float64)        # read from outside: a constant

    def two_by_two(x, y):
        return x.exp() * (y * w).sum(), (x * x).sum() + y.sin().sum()

    def single(x):
        return (x.tanh() * x).reshape(2, 2) @ x.reshape(2, 2)

    def scalar(x):
        return (x.pow(3) * x.sin()).sum()
    return {"two_by_two": two_by_two, "single": single, "scalar": scalar}


X = np.array([0.3, -1.2, 0.8, 1.7])
Y = np.array([[0.5, 2.0, 1.0]])


def _inputs(L, name):
    x = L.tensor(X if name != "two_by_two" else X[:2], dtype=L.float64)
    return (x, L.tensor(Y, dtype=L.float64)) if name == "two_by_two" else x


def _flat(res):
    """Nested tuples of tensors as a flat list of float64 arrays."""
    if isinstance(res, tuple):
        return [a for r in res for a in _flat(r)]
    return [np.array(res.detach().numpy(), np.float64)]


@pytest.mark.parametrize("name", ["two_by_two", "single", "scalar"])
@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_matches_pytorch(name, vectorize):
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF
    mine = jacobian(_fns(tg)[name], _inputs(tg, name), vectorize=vectorize)
    theirs = TF.jacobian(_fns(torch)[name], _inputs(torch, name), vectorize=vectorize)
    assert isinstance(mine, tuple) == isinstance(theirs, tuple)
    a, b = _flat(mine), _flat(theirs)
    assert [x.shape for x in a] == [x.shape for x in b]
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)
    leaves = mine if isinstance(mine, tuple) else (mine,)
    leaves = [t for r in leaves for t in (r if isinstance(r, tuple) else (r,))]
    assert leaves and all(not t.requires_grad and t.is_leaf for t in leaves)


def test_jacobian_against_finite_differences():
    f = _fns(tg)["single"]
    J = _np(jacobian(f, tg.tensor(X, dtype=tg.float64)))
    for k in range(4):
        row = fd_grad(lambda v: float(_np(f(tg.tensor(v, dtype=tg.float64))).ravel()[k]), X)
        np.testing.assert_allclose(J.reshape(4, 4)[k], row, rtol=1e-6, atol=1e-7)


def test_jacobian_through_a_custom_function_and_unused_inputs():
    class Cube(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * g * x * x
    x = tg.tensor([0.5, -2.0], dtype=tg.float64)
    y = tg.tensor([1.0], dtype=tg.float64)
    jx, jy = jacobian(lambda a, b: Cube.apply(a), (x, y))
    np.testing.assert_allclose(_np(jx), np.diag(3 * np.array([0.5, -2.0]) ** 2))
    np.testing.assert_array_equal(_np(jy), np.zeros((2, 1)))


@pytest.mark.parametrize("name,v", [("two_by_two", "tuple"), ("single", "tensor"),
                                    ("scalar", None)])
def test_vjp_matches_pytorch(name, v):
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF
    res = {}
    for L, fn in ((tg, F.vjp), (torch, TF.vjp)):
        vv = None
        if v == "tuple":
            vv = (L.tensor([1.0, -2.0], dtype=L.float64), L.tensor(3.0, dtype=L.float64))
        elif v == "tensor":
            vv = L.tensor([[1.0, 0.5], [-1.0, 2.0]], dtype=L.float64)
        res[L.__name__] = fn(_fns(L)[name], _inputs(L, name), vv)
    a, b = _flat(res["tapegrad"]), _flat(res["torch"])
    for u, w in zip(a, b):
        np.testing.assert_allclose(u, w, rtol=1e-12, atol=1e-12)
    assert len(a) == len(b)


def errors_of(L, TF):
    x = L.tensor([1.0, 2.0], dtype=L.float64)
    return {
        "v_needed": lambda: TF.vjp(lambda a: a.exp(), x),
        "v_size": lambda: TF.vjp(lambda a: a.exp(), x, L.ones(3, dtype=L.float64)),
        "v_tuple_length": lambda: TF.vjp(lambda a: (a, a), x, (L.ones(2),)),
        "v_single": lambda: TF.vjp(lambda a: a.exp(), x, (L.ones(2), L.ones(2))),
        "output_not_tensor": lambda: TF.jacobian(lambda a: 3, x),
        "inputs_list": lambda: TF.jacobian(lambda a: a, [x]),
        "input_in_tuple": lambda: TF.jacobian(lambda a, b: a, (x, 2.0)),
        "strict_independent": lambda: TF.jacobian(lambda a, b: a.exp(), (x, x), strict=True),
        "strict_no_grad": lambda: TF.jacobian(lambda a: x * 2, x, strict=True),
        "strict_vectorize": lambda: TF.jacobian(lambda a: a, x, strict=True, vectorize=True),
        "strategy": lambda: TF.jacobian(lambda a: a, x, strategy="sideways"),
        "vjp_strict": lambda: TF.vjp(lambda a, b: a.exp(), (x, x), (L.ones(2),), strict=True),
    }


def test_errors_match_pytorch():
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF
    import re
    mine, theirs = errors_of(tg, F), errors_of(torch, TF)
    for key in mine:
        got = []
        for fn in (mine[key], theirs[key]):
            try:
                fn()
                got.append((None, None))
            except Exception as e:  # noqa: BLE001
                got.append((type(e), str(e)))
        (gt, gm), (tt, tm) = got
        assert tt is not None, key
        assert gt is tt, (key, got)
        assert gm == re.sub(r"\btorch\.(?=[A-Z])", "tapegrad.", tm), key
    still_works()


@pytest.mark.parametrize("call", [
    lambda: F.hessian(lambda a: (a ** 3).sum(), tg.ones(2)),
    lambda: F.jvp(lambda a: a.exp(), tg.ones(2), tg.ones(2)),
    lambda: F.hvp(lambda a: (a ** 3).sum(), tg.ones(2), tg.ones(2)),
    lambda: F.vhp(lambda a: (a ** 3).sum(), tg.ones(2), tg.ones(2)),
    lambda: F.jacobian(lambda a: a.exp(), tg.ones(2), create_graph=True),
    lambda: F.vjp(lambda a: a.exp().sum(), tg.ones(2), create_graph=True),
], ids=["hessian", "jvp", "hvp", "vhp", "jacobian-create-graph", "vjp-create-graph"])
def test_what_needs_create_graph_says_so(call, request):
    name = request.node.callspec.id.split("-")[0]
    with pytest.raises(NotImplementedError) as info:
        call()
    assert str(info.value).startswith(f"tapegrad.autograd.functional.{name} needs "
                                      "higher-order gradients: tg.autograd.grad(..., "
                                      "create_graph=True)")
    assert tg.is_grad_enabled()
    still_works()


def test_forward_mode_strategy_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="forward-mode AD"):
        jacobian(lambda a: a, tg.ones(2), strategy="forward-mode")


@pytest.mark.parametrize("fn_name", ["hessian", "jvp", "hvp", "vhp"])
def test_double_backward_functions_work_once_grad_can_create_graphs(fn_name, monkeypatch):
    """The module's code, given an autograd.grad that can create graphs (PyTorch's, with
    PyTorch's tensors in its namespace), gives torch.autograd.functional's answers: so these
    functions work as soon as tapegrad's grad() supports create_graph=True."""
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF
    for name, value in (("_grad", torch.autograd.grad), ("zeros", torch.zeros),
                        ("zeros_like", torch.zeros_like), ("stack", torch.stack),
                        ("Tensor", torch.Tensor), ("enable_grad", torch.enable_grad),
                        ("set_grad_enabled", torch.set_grad_enabled),
                        ("is_grad_enabled", torch.is_grad_enabled)):
        monkeypatch.setattr(F, name, value)

    def f(a, b):
        return (a.pow(3) * b.sin()).sum() + (a * b).exp().sum()
    xs = (torch.tensor([0.3, -0.7], dtype=torch.float64),
          torch.tensor([1.1, 0.4], dtype=torch.float64))
    vs = (torch.tensor([1.0, 2.0], dtype=torch.float64),
          torch.tensor([-0.5, 0.25], dtype=torch.float64))
    if fn_name == "hessian":
        mine, theirs = F.hessian(f, xs), TF.hessian(f, xs)
    elif fn_name == "jvp":
        g = lambda a, b: (a.exp() * b, a * b.sin())     # noqa: E731
        mine, theirs = F.jvp(g, xs, vs), TF.jvp(g, xs, vs)
    else:
        mine = getattr(F, fn_name)(f, xs, vs)
        theirs = getattr(TF, fn_name)(f, xs, vs)
    a, b = _flat(mine), _flat(theirs)
    assert len(a) == len(b) and len(a) >= 2
    for u, w in zip(a, b):
        np.testing.assert_allclose(u, w, rtol=1e-12, atol=1e-12)
