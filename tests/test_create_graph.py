"""``create_graph=True``: the backward recorded, so that gradients are differentiated again.

Every differentiable row of the op table (the shared catalogue of tests/test_ops.py, with
its broadcasting, Python-number and 0-d scalar variants) is differentiated twice: the
gradients of ``sum(w_i * grad_i)``, where ``grad_i = grad(out, x_i, u, create_graph=True)``,
with respect to every input and to the seed u, are compared with PyTorch's (1e-10 in
float64) and with finite differences of the first-order (jitted) gradients. Then what users
build on it: Hessian-vector products, ``autograd.functional.hessian`` of a network's loss, a
gradient penalty trained for a few steps, third derivatives, ``backward(create_graph=True)``
and ``.grad`` with a graph, hooks, custom Functions, links between tapes, node names.
"""
import zlib

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.ops import TABLE

from conftest import fd_grad, still_works
from test_ops import ALL, NUM, _tg_inputs, _torch_inputs, _values

pytestmark = pytest.mark.usefixtures("isolated")


def _np(t):
    """A tensor's value as a float64 array (PyTorch's zero tensors too)."""
    if not isinstance(t, tg.Tensor):
        return np.array(t.detach().numpy(force=True), np.float64)
    return np.array(t.detach().numpy(), np.float64)


def _float32(variant):
    return any(s.dtype != "float64" for s in variant.specs) or variant.id.startswith("to-")


def _probes(variant, values):
    """The seed u (output-shaped) and the weights w_i (input-shaped) of a variant."""
    rng = np.random.default_rng(zlib.crc32(variant.id.encode()) + 7)
    with tg.no_grad():
        out = variant.fn(*_tg_inputs(variant, values, grad=False))
    u = rng.uniform(-1, 1, tuple(out.shape))
    ws = [rng.uniform(-1, 1, s.shape) for s in variant.specs if s.shape != NUM and s.grad]
    return u, ws


def _second_order(L, variant, values, u, ws):
    """(first-order grads, grads of sum(w_i * grad_i) w.r.t. the inputs and u, the grads'
    node names), all made with create_graph=True."""
    ins = _tg_inputs(variant, values) if L is tg else _torch_inputs(L, variant, values)
    out = variant.fn(*ins)
    seed = L.tensor(np.asarray(u), dtype=out.dtype, requires_grad=True)
    diff = [x for x, s in zip(ins, variant.specs) if s.shape != NUM and s.grad]
    gs = L.autograd.grad(out, diff, seed, create_graph=True, materialize_grads=True)
    names = [None if g.grad_fn is None else g.grad_fn.name() for g in gs]
    total = sum((g * L.tensor(w, dtype=g.dtype)).sum() for g, w in zip(gs, ws))
    if total.requires_grad:
        second = L.autograd.grad(total, diff + [seed], materialize_grads=True)
    else:                                # gradients that depend on nothing: all zeros
        second = [L.zeros_like(x) for x in diff + [seed]]
    return [_np(g) for g in gs], [_np(g) for g in second], names


# ----- every row of the op table, twice differentiated ------------------------------------------
def test_every_differentiable_row_has_a_second_order_case():
    """A new row of the table without a case fails here (and in tests/test_ops.py); the
    custom family (a user's autograd.Function) is tested below."""
    rows = {n for n, r in TABLE.items()
            if r.family not in ("source", "compare", "custom") and r.node}
    covered = {name for name, _ in ALL}
    assert not rows - covered, f"rows with no second-order case: {sorted(rows - covered)}"
    assert len(ALL) > 300


@pytest.mark.parametrize("name,variant", ALL, ids=[v.id for _, v in ALL])
def test_second_derivatives_match_pytorch(name, variant):
    torch = pytest.importorskip("torch")
    values = _values(variant)
    u, ws = _probes(variant, values)
    mine1, mine2, _ = _second_order(tg, variant, values, u, ws)
    theirs1, theirs2, _ = _second_order(torch, variant, values, u, ws)
    tol = 1e-5 if _float32(variant) else 1e-10      # float32 paths compute in float32
    assert len(mine2) == len(theirs2) == len(ws) + 1
    for a, b in zip(mine1 + mine2, theirs1 + theirs2):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _first_order_total(variant, values, u, ws):
    """sum(w_i * grad_i) by the first-order (jitted) backward, no create_graph."""
    ins = _tg_inputs(variant, values)
    out = variant.fn(*ins)
    out.backward(tg.tensor(u, dtype=out.dtype))
    diff = [x for x, s in zip(ins, variant.specs) if s.shape != NUM and s.grad]
    return sum(float((_np(x.grad) * w).sum()) for x, w in zip(diff, ws) if x.grad is not None)


@pytest.mark.parametrize("name,variant", [(n, v) for n, v in ALL if not _float32(v)],
                         ids=[v.id for _, v in ALL if not _float32(v)])
def test_second_derivatives_match_finite_differences(name, variant):
    """Independent of PyTorch: d/dx_j sum(w_i * grad_i) by central differences of the
    first-order gradients; d/du of it is J w, a directional derivative of the forward."""
    values = _values(variant)
    u, ws = _probes(variant, values)
    _, mine, _ = _second_order(tg, variant, values, u, ws)
    at = [i for i, s in enumerate(variant.specs) if s.shape != NUM and s.grad]
    for j, i in enumerate(at):
        def total(xi, i=i):
            vals = list(values)
            vals[i] = xi
            return _first_order_total(variant, vals, u, ws)
        np.testing.assert_allclose(mine[j], fd_grad(total, values[i], eps=1e-5),
                                   rtol=1e-6, atol=1e-7)

    def forward(eps):
        vals = list(values)
        for i, w in zip(at, ws):
            vals[i] = values[i] + eps * w
        with tg.no_grad():
            return _np(variant.fn(*_tg_inputs(variant, vals, grad=False)))
    np.testing.assert_allclose(mine[-1], (forward(1e-6) - forward(-1e-6)) / 2e-6,
                               rtol=1e-6, atol=1e-7)


# PyTorch names the nodes of its double backward by its own backward formulas; tapegrad's
# are the table's formulas and derivatives.yaml's where it can run them: these differ.
NAMES_DIFFER = {
    "div": "y's gradient is -g * x / (y * y) (DivBackward0); PyTorch's -g * ((x / y) / y)",
    "pow": "the table's formulas put where() outermost; PyTorch multiplies g last",
    "tanh": "PyTorch has a TanhBackwardBackward0 primitive; tapegrad g * (1 - y * y)",
    "sigmoid": "PyTorch has SigmoidBackwardBackward0; tapegrad g * (1 - y) * y",
    "relu": "PyTorch has ThresholdBackwardBackward0; tapegrad where(y <= 0, 0, g)",
    "softmax": "PyTorch has SoftmaxBackwardDataBackward0; tapegrad y * (g - sum(g y))",
    "log_softmax": "PyTorch has LogSoftmaxBackwardDataBackward0; tapegrad composes it",
    "mean": "PyTorch divides by a C++ scalar (DivBackward1); tapegrad's g / n is DivBackward0",
    "meandim": "as mean",
    "maximum": "PyTorch masks in place (MaskedFillBackward0); tapegrad where()",
    "minimum": "as maximum",
    "max": "PyTorch masked_fill (MaskedFillBackward1); tapegrad multiplies by the mask",
    "min": "as max",
    "std": "PyTorch masks in place; tapegrad where()",
    "copyslices": "tapegrad gathers b's gradient (IndexBackward0) where PyTorch clones a view",
    "as_strided": "as copyslices: the view's base was changed by item assignment",
    "exp2": "PyTorch's (g * y) * ln 2 multiplies by a C++ scalar last (MulBackward1); "
            "tapegrad's tensor * number is MulBackward0",
}
# 0-d Python-float scalars: a where() between them picks its branch (the scalar fast path),
# so the gradient can be the seed itself (no node) where PyTorch has a WhereBackward0
SCALAR_PICKS = {"clamp-0d", "clamp-min0-0d", "where-scalars"}


NAMED = [(n, v) for n, v in ALL if n not in NAMES_DIFFER and v.id not in SCALAR_PICKS]


def test_the_name_exceptions_are_rows_and_cases():
    assert set(NAMES_DIFFER) <= {n for n, _ in ALL}
    assert SCALAR_PICKS <= {v.id for _, v in ALL}
    assert len(NAMED) > 200


@pytest.mark.parametrize("name,variant", NAMED, ids=[v.id for _, v in NAMED])
def test_double_backward_node_names_match_pytorch(name, variant):
    torch = pytest.importorskip("torch")
    values = _values(variant)
    u, ws = _probes(variant, values)
    _, _, mine = _second_order(tg, variant, values, u, ws)
    _, _, theirs = _second_order(torch, variant, values, u, ws)
    assert mine == [t and t.replace("torch::autograd::", "") for t in theirs]


def test_grad_of_sin_has_pytorchs_graph():
    torch = pytest.importorskip("torch")
    names = {}
    for L in (tg, torch):
        x = L.tensor([0.3, -1.2], dtype=L.float64, requires_grad=True)
        (g,) = L.autograd.grad(x.sin().sum(), x, create_graph=True)
        fn = g.grad_fn
        names[L] = (fn.name(), [None if n is None else n.name() for n, _ in fn.next_functions],
                    [n.name() for n, _ in fn.next_functions[1][0].next_functions])
    assert names[tg] == (names[torch][0], names[torch][1],
                         [n.replace("torch::autograd::", "") for n in names[torch][2]])
    assert names[tg] == ("MulBackward0", [None, "CosBackward0"], ["AccumulateGrad"])


# ----- what users build on it -------------------------------------------------------------------
def _network(L, p, x):
    """A two-layer network's mean squared loss (p: w1, b1, w2, b2)."""
    w1, b1, w2, b2 = p
    return (((x.mm(w1) + b1).tanh().mm(w2) + b2 - x[:, :1].sin()) ** 2).mean()


def _params(L, seed=3, requires_grad=True):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (4, 1), (1,)]
    return [L.tensor(rng.normal(0, 0.7, s), dtype=L.float64, requires_grad=requires_grad)
            for s in shapes]


def _data(L):
    return L.tensor(np.random.default_rng(9).uniform(-1, 1, (5, 3)), dtype=L.float64)


def test_hessian_vector_products_match_pytorch():
    torch = pytest.importorskip("torch")
    res = {}
    vs = [np.random.default_rng(11 + i).normal(size=s) for i, s in
          enumerate([(3, 4), (4,), (4, 1), (1,)])]
    for L in (tg, torch):
        p = _params(L)
        loss = _network(L, p, _data(L))
        gs = L.autograd.grad(loss, p, create_graph=True)
        dot = sum((g * L.tensor(v, dtype=L.float64)).sum() for g, v in zip(gs, vs))
        hv = L.autograd.grad(dot, p)
        res[L] = [_np(t) for t in hv]
        fres = L.autograd.functional.hvp(lambda *q: _network(L, q, _data(L)),
                                         tuple(_params(L)),
                                         tuple(L.tensor(v, dtype=L.float64) for v in vs))[1]
        res[L, "functional"] = [_np(t) for t in fres]
    for key in (tg, (tg, "functional")):
        other = torch if key is tg else (torch, "functional")
        for a, b in zip(res[key], res[other]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(res[tg], res[tg, "functional"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_functional_hessian_of_a_networks_loss_matches_pytorch():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        H = L.autograd.functional.hessian(lambda *q: _network(L, q, _data(L)),
                                          tuple(_params(L, requires_grad=False)))
        res[L] = [[_np(b) for b in row] for row in H]
    for ra, rb in zip(res[tg], res[torch]):
        for a, b in zip(ra, rb):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # symmetric: the (i, j) block is the transposed (j, i) block
    sizes = [12, 4, 4, 1]
    flat = np.block([[b.reshape(sizes[i], sizes[j]) for j, b in enumerate(row)]
                     for i, row in enumerate(res[tg])])
    np.testing.assert_allclose(flat, flat.T, atol=1e-12)


def test_gradient_penalty_training_follows_pytorchs_trajectory():
    """loss + (|d loss / d x| - 1)^2, the penalty's gradient through create_graph; SGD."""
    torch = pytest.importorskip("torch")
    traj = {}
    for L in (tg, torch):
        p = _params(L)
        x = _data(L).requires_grad_()
        steps = []
        for _ in range(5):
            loss = _network(L, p, x)
            (gx,) = L.autograd.grad(loss, x, create_graph=True)
            total = loss + (gx.norm() - 1) ** 2
            for w in p:
                w.grad = None
            total.backward()
            with L.no_grad():
                for w in p:
                    w -= 0.1 * w.grad
            steps.append([float(total)] + [_np(w).copy() for w in p])
        traj[L] = steps
    for a, b in zip(traj[tg], traj[torch]):
        assert a[0] == pytest.approx(b[0], rel=1e-12)
        for u, v in zip(a[1:], b[1:]):
            np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
    assert traj[tg][-1][0] < traj[tg][0][0]


def _f(L, s):
    return s.sin() * s ** 3 + (s * 0.5).exp() / (1 + s * s) - s.tanh().log1p()


@pytest.mark.parametrize("kind", ["python-float", "0d-array", "array"])
def test_third_derivatives_of_a_scalar_function(kind):
    torch = pytest.importorskip("torch")
    v = np.array([0.7]) if kind == "array" else np.array(0.7)
    res = {}
    for L in (tg, torch):
        if kind == "python-float":
            s = L.tensor(0.7, dtype=L.float64, requires_grad=True)
        else:
            s = L.tensor(v, dtype=L.float64, requires_grad=True)
        total = (lambda t: t) if kind == "python-float" else (lambda t: t.sum())
        ds = [_f(L, s)]
        for k in range(3):
            (d,) = L.autograd.grad(total(ds[-1]), s, create_graph=k < 2)
            ds.append(d)
        res[L] = ds[1:]
    for a, b in zip(res[tg], res[torch]):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-12)
    if kind == "python-float":        # the scalar fast path all the way (the last grad is
        assert all(type(d._v) is float for d in res[tg][:2])   # first order: an array)
        assert res[tg][1].requires_grad and not res[tg][2].requires_grad

    def first(z):                     # the first-order (jitted) derivative
        s = tg.tensor(z, dtype=tg.float64, requires_grad=True)
        _f(tg, s).sum().backward()
        return float(_np(s.grad).sum())
    z, e = float(v.sum()), 1e-4
    fd3 = (first(z + e) - 2 * first(z) + first(z - e)) / e ** 2
    assert float(_np(res[tg][2]).sum()) == pytest.approx(fd3, rel=1e-5)


def test_fourth_derivative_of_exp():
    x = tg.tensor([0.2, 1.0], dtype=tg.float64, requires_grad=True)
    g = (x * 2).exp().sum()
    for _ in range(4):
        (g,) = tg.autograd.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(_np(g), 16 * np.exp(2 * np.array([0.2, 1.0])), rtol=1e-14)
    assert g.requires_grad


# ----- backward(create_graph=True) and .grad with a graph ---------------------------------------
def test_backward_with_create_graph_gives_leaves_a_grad_with_a_graph():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([0.5, -1.5], dtype=L.float64, requires_grad=True)
        (x.sin() * x).sum().backward(create_graph=True)
        first = (x.grad.requires_grad, x.grad.grad_fn.name())
        (x * x).sum().backward(create_graph=True)            # accumulates: old + new
        acc = (_np(x.grad), x.grad.grad_fn.name())
        (gg,) = L.autograd.grad(x.grad.sum(), x, retain_graph=True)
        x.grad.sum().backward()                              # into the graph grad, in place
        res[L] = first, acc, _np(gg), _np(x.grad)
    (first, acc, gg, after), (tfirst, tacc, tgg, tafter) = res[tg], res[torch]
    assert first == (True, "CloneBackward0") and tfirst[0]      # PyTorch: CopyBackwards
    assert acc[1] == tacc[1] == "AddBackward0"
    for a, b in ((acc[0], tacc[0]), (gg, tgg), (after, tafter)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_backward_with_create_graph_on_scalars_and_inputs():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        s = L.tensor(1.3, dtype=L.float64, requires_grad=True)
        y = L.tensor([0.4, 2.0], dtype=L.float64, requires_grad=True)
        out = (s.exp() * y).sum()
        out.backward(create_graph=True, inputs=[s])
        assert y.grad is None and s.grad.requires_grad
        (d2,) = L.autograd.grad(s.grad, [s])
        res[L] = float(s.grad), float(d2)
    assert res[tg] == pytest.approx(res[torch], rel=1e-14)


def test_create_graph_implies_retain_graph():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    out = (x.exp() * x).sum()
    tg.autograd.grad(out, x, create_graph=True)
    out.backward()                         # the graph is still there
    np.testing.assert_allclose(_np(x.grad), np.exp([1.0, 2.0]) * [2.0, 3.0], rtol=1e-14)


def test_hooks_and_retained_grads_see_gradients_with_a_graph():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([0.5, -1.5], dtype=L.float64, requires_grad=True)
        y = x.exp()
        y.retain_grad()
        seen = []
        y.register_hook(lambda g: seen.append(g.requires_grad) or g * 2)
        x.register_hook(lambda g: seen.append(g.requires_grad))
        (y * y).sum().backward(create_graph=True)
        seen.append(y.grad.requires_grad)
        (d,) = L.autograd.grad(x.grad.sum(), x, create_graph=True)
        res[L] = seen, _np(x.grad), _np(d)
    # y's hook, x's hook, y.grad; then grad() through y's node again (y's and x's hooks)
    assert res[tg][0] == res[torch][0] == [True, True, True, True, True]
    for a, b in zip(res[tg][1:], res[torch][1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_grad_with_create_graph_fills_retained_grads_on_its_way():
    """As PyTorch 2.13 (and grad() without create_graph): a retained tensor whose gradient
    grad(create_graph=True) computes gets it in .grad, with its graph; one beside the way
    does not (tapegrad filled none: found by tests/test_lifetimes_fuzz.py)."""
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        w = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        h = x.sigmoid()
        h.retain_grad()
        k = h * 2
        k.retain_grad()
        u = w * 3
        u.retain_grad()
        y = (k * k).sum() + u.sum()
        (g1,) = L.autograd.grad(y, [h], create_graph=True)
        first = [_np(h.grad), _np(k.grad), u.grad, h.grad.requires_grad]
        (g2,) = L.autograd.grad(y, [x], create_graph=True)
        res[L] = first + [_np(g1), _np(g2), _np(h.grad), _np(k.grad), u.grad]
    assert res[tg][2] is None and res[tg][3] is True and res[tg][-1] is None
    for a, b in zip(res[tg], res[torch]):
        if isinstance(a, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        else:
            assert a == b


def test_custom_function_backward_is_differentiated_through_its_saved_tensors():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        class Cube(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * g * x * x

        class Exp(L.autograd.Function):           # saves its output
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, g):
                (y,) = ctx.saved_tensors
                return g * y
        x = L.tensor([0.5, -1.5], dtype=L.float64, requires_grad=True)
        out = Exp.apply(Cube.apply(x.sin()) * 2).sum()
        (g,) = L.autograd.grad(out, x, create_graph=True)
        (h,) = L.autograd.grad(g.sum(), x)
        res[L] = _np(g), _np(h)
    for a, b in zip(res[tg], res[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_create_graph_across_tapes():
    """a lives on a tape already backwarded (retained); the graph continues on a new tape
    through a link, and x is a leaf of both."""
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([0.3, 1.1, -0.4], dtype=L.float64, requires_grad=True)
        a = x.exp()
        a.sum().backward(retain_graph=True)
        z = (a * x).sin().sum()
        (g,) = L.autograd.grad(z, x, create_graph=True)
        (h,) = L.autograd.grad((g * g).sum(), x)
        res[L] = _np(g), _np(h)
    for u, v in zip(res[tg], res[torch]):
        np.testing.assert_allclose(u, v, rtol=1e-12)


def test_float32_second_derivatives_match_pytorch():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([[0.3, -0.8], [1.2, 0.5]], dtype=L.float32, requires_grad=True)
        (g,) = L.autograd.grad((x.sin() * x.exp()).mm(x).sum(), x, create_graph=True)
        (h,) = L.autograd.grad(g.pow(2).sum(), x)
        assert g.dtype == h.dtype == L.float32
        res[L] = _np(g), _np(h)
    for u, v in zip(res[tg], res[torch]):
        np.testing.assert_allclose(u, v, rtol=1e-5)


def test_product_with_a_zero_second_derivatives():
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([[0.0, 2.0, -1.5], [1.5, 0.5, 2.0]], dtype=L.float64, requires_grad=True)
        (g,) = L.autograd.grad(x.prod(1).sum() + x.prod(), x, create_graph=True)
        (h,) = L.autograd.grad((g * L.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]],
                                             dtype=L.float64)).sum(), x)
        res[L] = _np(g), _np(h)
    for u, v in zip(res[tg], res[torch]):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


# ----- errors, in PyTorch's words ---------------------------------------------------------------
def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e).replace("torch.", "tapegrad.")
    return None


def test_errors_match_pytorch():
    torch = pytest.importorskip("torch")

    def cases(L):
        def freed():
            x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
            out = (x.exp() * x).sum()
            out.backward()
            L.autograd.grad(out, x, create_graph=True)

        def modified():
            x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
            y = x * 1
            out = (y.sin()).sum()
            with L.no_grad():
                y.mul_(2)
            L.autograd.grad(out, x, create_graph=True)

        def unused():
            x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
            z = L.tensor([1.0], dtype=L.float64, requires_grad=True)
            L.autograd.grad((x * x).sum(), [x, z], create_graph=True)

        def no_grad_input():
            x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
            L.autograd.grad((x * x).sum(), [L.ones(2)], create_graph=True)

        def non_scalar():
            x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
            (x * x).backward(create_graph=True)

        def shape():
            x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
            L.autograd.grad(x * x, x, L.ones(3, dtype=L.float64), create_graph=True)

        def nan():
            x = L.tensor([0.0, 1.0], dtype=L.float64, requires_grad=True)
            with L.autograd.detect_anomaly():
                L.autograd.grad((x.sqrt() * 0).sum(), x, create_graph=True)
        return [freed, modified, unused, no_grad_input, non_scalar, shape, nan]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mine, theirs in zip(cases(tg), cases(torch)):
            got, want = _error(mine), _error(theirs)
            assert want is not None and got is not None, mine.__name__
            assert got[0] is want[0], (mine.__name__, got, want)
            assert got[1] == want[1], mine.__name__
    still_works()


def test_first_order_grads_stay_plain():
    """Without create_graph nothing is recorded and results need no grad."""
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    (g,) = tg.autograd.grad((x.sin() * x).sum(), x)
    assert not g.requires_grad and g.grad_fn is None
    (g,) = tg.autograd.grad((x * 3).sum(), x, create_graph=True)
    assert not g.requires_grad       # a constant gradient has no graph (as PyTorch)
    np.testing.assert_array_equal(_np(g), [3.0, 3.0])


def test_gradient_with_respect_to_an_intermediate_and_a_seed_that_requires_grad():
    """grad() of a non-leaf with create_graph, and the double-vjp trick: a seed u that
    requires grad, differentiated through the recorded backward."""
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor([0.3, -0.7, 1.2], dtype=L.float64, requires_grad=True)
        y = x.exp() * x
        z = (y.sin() * y).sum()
        gy, gx = L.autograd.grad(z, [y, x], create_graph=True)
        u = L.zeros(3, dtype=L.float64, requires_grad=True)
        (vjp,) = L.autograd.grad(y, x, u, create_graph=True)
        (jvp,) = L.autograd.grad(vjp, u, L.tensor([1.0, 2.0, 3.0], dtype=L.float64),
                                 retain_graph=True)   # (tapegrad's frees all it reaches)
        (h,) = L.autograd.grad((gy * gx).sum(), x)
        res[L] = _np(gy), _np(gx), _np(jvp), _np(h)
    for a, b in zip(res[tg], res[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_hessian_vector_product_of_an_nn_module_and_cross_entropy():
    """tg.nn layers and losses are composed of the table's primitives: their second
    derivatives come with them."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    weights = [rng.normal(0, 0.5, s) for s in [(6, 4), (6,), (3, 6), (3,)]]
    x = rng.normal(size=(5, 4))
    target = np.array([0, 2, 1, 2, 0])
    res = {}
    for L in (tg, torch):
        model = L.nn.Sequential(L.nn.Linear(4, 6), L.nn.Tanh(), L.nn.Linear(6, 3)).double()
        params = list(model.parameters())
        with L.no_grad():
            for p, w in zip(params, weights):
                p.copy_(L.tensor(w, dtype=L.float64))
        loss = L.nn.functional.cross_entropy(model(L.tensor(x, dtype=L.float64)),
                                             L.tensor(target), label_smoothing=0.1)
        gs = L.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * g).sum() for g in gs)
        res[L] = [_np(t) for t in L.autograd.grad(dot, params)]
    for a, b in zip(res[tg], res[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_once_differentiable_backward_raises_when_differentiated_again():
    torch = pytest.importorskip("torch")
    from torch.autograd.function import once_differentiable as torch_once
    res = {}
    for L, once in ((tg, tg.autograd.function.once_differentiable), (torch, torch_once)):
        class Cube(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            @once
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * g * x * x
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        (plain,) = L.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
        u = L.ones(2, dtype=L.float64, requires_grad=True)
        (g,) = L.autograd.grad(Cube.apply(x), x, u, create_graph=True)
        with pytest.raises(RuntimeError) as info:
            (g * x).sum().backward()
        res[L] = (_np(plain), plain.requires_grad, g.grad_fn.name().replace(
            "torch::autograd::", ""), str(info.value))
    assert res[tg][1:] == res[torch][1:]
    np.testing.assert_array_equal(res[tg][0], res[torch][0])


@pytest.mark.parametrize("op", ["clamp", "relu", "where"])
def test_a_zero_gradient_from_a_constant_branch_is_a_zero_not_unused(op):
    """x.clamp(-0.5, 0.5) of a 0-d x outside the bounds: the formula's branch is the number 0;
    with create_graph=True tapegrad dropped it, so grad() said x was unused (PyTorch: a zero
    tensor; found by tests/test_lifetimes_fuzz.py)."""
    torch = pytest.importorskip("torch")
    res = {}
    for L in (tg, torch):
        x = L.tensor(-1.4, dtype=L.float64, requires_grad=True)
        y = {"clamp": lambda: x.clamp(-0.5, 0.5), "relu": lambda: x.relu(),
             "where": lambda: L.where(x > 0, x, L.tensor(0.0, dtype=L.float64))}[op]()
        (g,) = L.autograd.grad(y, [x], create_graph=True)
        res[L] = _np(g)
    assert res[tg] == 0.0
    np.testing.assert_array_equal(res[tg], res[torch])
