"""scatter_add, scatter (src and value), index_add, index_copy, index_fill and their in-place
forms (tapegrad/scattering.py).

Values are checked against a reference written here element by element (a loop over the
index: ``out[target] += src[p]`` for the add forms, so repeated indices add up, an
assignment for the others); gradients against the closed forms (self: the probe, or the
probe with the written positions zeroed; src: the probe at each source element's target,
times alpha) and central finite differences in float64; values, both gradients, node names,
errors, in-place versions, second derivatives against PyTorch; tg.compile refuses them.
"""
import numpy as np
import pytest
import torch

import tapegrad as tg

SHAPES = [(5,), (4, 3), (3, 4, 2)]
DTYPES = [("float32", np.float32, torch.float32), ("float64", np.float64, torch.float64)]


def _cases():
    for shape in SHAPES:
        for dim in range(-len(shape), len(shape)):
            yield shape, dim


CASES = list(_cases())


def _tg(a, rg=False):
    t = tg.tensor(a)
    return t.requires_grad_() if rg else t


def _th(a, rg=False):
    t = torch.tensor(a)
    return t.requires_grad_() if rg else t


# ----- index builders: (index, src shape) ---------------------------------------------------
def scatter_index(rng, shape, d, unique):
    """An index for scatter along d: other dims no larger than self's (smaller where they
    can be), dim d of 4 rows; ``unique``: no two elements of a line share a target."""
    ishape = tuple(max(1, s - 1) if k != d else (min(4, s) if unique else 4)
                   for k, s in enumerate(shape))
    idx = np.empty(ishape, np.int64)
    for p in np.ndindex(*(ishape[:d] + ishape[d + 1:])):
        line = (rng.permutation(shape[d])[:ishape[d]] if unique
                else rng.integers(0, shape[d], ishape[d]))
        key = p[:d] + (slice(None),) + p[d:]
        idx[key] = line
    if not unique:                          # at least one repeat on the first line
        idx[(0,) * d + (slice(0, 2),) + (0,) * (len(shape) - d - 1)] = 0
    return idx


def vector_index(rng, shape, d, unique):
    n = shape[d]
    idx = rng.permutation(n)[:min(n, 3)] if unique else np.array([0, n - 1, 0, 1])
    return idx.astype(np.int64)


# ----- the reference, element by element ------------------------------------------------------
def scatter_pairs(idx, d):
    for p in np.ndindex(*idx.shape):
        t = list(p)
        t[d] = idx[p]
        yield p, tuple(t)


def vector_pairs(idx, d, src_shape):
    for p in np.ndindex(*src_shape):
        t = list(p)
        t[d] = idx[p[d]]
        yield p, tuple(t)


def reference(mode, x, src, pairs, alpha=1, value=None):
    out = x.copy()
    for p, t in pairs:
        if mode == "add":
            out[t] += alpha * src[p]
        elif mode == "copy":
            out[t] = src[p]
        else:
            out[t] = value
    return out


def reference_grads(mode, w, src_shape, pairs, alpha=1):
    """(grad of self, grad of src) of sum(out * w)."""
    gx = w.copy()
    gs = np.zeros(src_shape, w.dtype) if src_shape is not None else None
    for p, t in pairs:
        if mode != "add":
            gx[t] = 0
        if gs is not None:
            gs[p] = w[t] * alpha
    return gx, gs


# ----- the five operations, as (torch or tg, x, idx, src) -> result ---------------------------
def _op(name, d, alpha=1, value=2.5):
    if name == "scatter_add":
        return lambda lib, x, i, s: x.scatter_add(d, i, s)
    if name == "scatter":
        return lambda lib, x, i, s: x.scatter(d, i, s)
    if name == "scatter_value":
        return lambda lib, x, i, s: x.scatter(d, i, value)
    if name == "index_add":
        return lambda lib, x, i, s: x.index_add(d, i, s, alpha=alpha)
    if name == "index_copy":
        return lambda lib, x, i, s: x.index_copy(d, i, s)
    return lambda lib, x, i, s: x.index_fill(d, i, value)


def setup(name, shape, d, npdt, seed=0, unique=None):
    """(x, idx, src or None, pairs, mode) for one operation."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(npdt)
    dd = d % len(shape)
    if name.startswith("scatter"):
        idx = scatter_index(rng, shape, dd, name != "scatter_add" if unique is None else unique)
        src = None if name == "scatter_value" else rng.standard_normal(idx.shape).astype(npdt)
        pairs = list(scatter_pairs(idx, dd))
    else:
        idx = vector_index(rng, shape, dd, name in ("index_copy",) if unique is None else unique)
        src_shape = shape[:dd] + (len(idx),) + shape[dd + 1:]
        src = None if name == "index_fill" else rng.standard_normal(src_shape).astype(npdt)
        pairs = list(vector_pairs(idx, dd, src_shape))
    mode = {"scatter_add": "add", "index_add": "add", "scatter": "copy",
            "index_copy": "copy"}.get(name, "fill")
    return x, idx, src, pairs, mode


NODES = {"scatter_add": "ScatterAddBackward0", "scatter": "ScatterBackward0",
         "scatter_value": "ScatterBackward1", "index_add": "IndexAddBackward0",
         "index_copy": "IndexCopyBackward0", "index_fill": "IndexFillBackward0"}
OPS = list(NODES)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape,dim", CASES)
@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: d[0])
def test_values_and_gradients_by_hand_and_against_torch(name, shape, dim, dt):
    _, npdt, thdt = dt
    alpha = 1.5 if name == "index_add" else 1
    x, idx, src, pairs, mode = setup(name, shape, dim, npdt)
    w = np.random.default_rng(1).standard_normal(shape).astype(npdt)
    op = _op(name, dim, alpha)
    tol = dict(rtol=1e-6, atol=1e-6) if npdt is np.float32 else dict(rtol=1e-13, atol=1e-13)

    xt, st = _tg(x, True), (_tg(src, True) if src is not None else None)
    y = op(tg, xt, _tg(idx), st)
    assert y.grad_fn.name() == NODES[name]
    assert y.dtype == getattr(tg, dt[0]) and tuple(y.shape) == shape
    expected = reference(mode, x, src, pairs, alpha, 2.5)
    np.testing.assert_allclose(y.detach().numpy(), expected, **tol)
    (y * _tg(w)).sum().backward()
    gx, gs = reference_grads(mode, w, None if src is None else src.shape, pairs, alpha)
    np.testing.assert_allclose(xt.grad.numpy(), gx, **tol)
    if st is not None:
        np.testing.assert_allclose(st.grad.numpy(), gs, **tol)

    xh, sh = _th(x, True), (_th(src, True) if src is not None else None)
    yh = op(torch, xh, _th(idx), sh)
    assert yh.grad_fn.name() == y.grad_fn.name()
    np.testing.assert_allclose(y.detach().numpy(), yh.detach().numpy(), **tol)
    (yh * _th(w)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xh.grad.numpy(), **tol)
    if st is not None:
        np.testing.assert_allclose(st.grad.numpy(), sh.grad.numpy(), **tol)


def test_repeated_indices_add_up():
    """scatter_add and index_add: every repeat of a target adds (np.add.at by hand)."""
    x = np.zeros(4)
    src = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    idx = np.array([1, 1, 3, 1, 0])
    expected = x.copy()
    np.add.at(expected, idx, src)
    assert expected.tolist() == [16.0, 11.0, 0.0, 4.0]
    got = _tg(x).scatter_add(0, _tg(idx), _tg(src)).numpy()
    assert got.tolist() == expected.tolist()
    got = _tg(x).index_add(0, _tg(idx), _tg(src), alpha=2).numpy()
    assert got.tolist() == (2 * expected).tolist()
    # the gradient of src: each element gets the probe at its target, repeats included
    s = _tg(src, True)
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    (_tg(x).scatter_add(0, _tg(idx), s) * _tg(w)).sum().backward()
    assert s.grad.numpy().tolist() == [10.0, 10.0, 1000.0, 10.0, 1.0]


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape,dim", [((4, 3), 1), ((3, 4, 2), -2)])
def test_finite_differences(name, shape, dim):
    alpha = -0.5 if name == "index_add" else 1
    x, idx, src, _, _ = setup(name, shape, dim, np.float64, seed=3)
    w = np.random.default_rng(4).standard_normal(shape)
    op = _op(name, dim, alpha)

    def f(xv, sv):
        y = op(tg, _tg(xv), _tg(idx), None if sv is None else _tg(sv))
        return float((y.numpy() * w).sum())

    xt, st = _tg(x, True), (_tg(src, True) if src is not None else None)
    (op(tg, xt, _tg(idx), st) * _tg(w)).sum().backward()
    for which, arr, grad in [(0, x, xt.grad)] + ([(1, src, st.grad)] if src is not None else []):
        num = np.zeros(arr.shape)
        for p in np.ndindex(*arr.shape):
            hi, lo = arr.copy(), arr.copy()
            hi[p] += 1e-6
            lo[p] -= 1e-6
            args_hi = (hi, src) if which == 0 else (x, hi)
            args_lo = (lo, src) if which == 0 else (x, lo)
            num[p] = (f(*args_hi) - f(*args_lo)) / 2e-6
        np.testing.assert_allclose(grad.numpy(), num, rtol=1e-6, atol=1e-7)


def test_functions_and_keywords():
    x = np.arange(6.0).reshape(2, 3)
    i2 = np.array([[1, 0, 1]])
    s = np.ones((1, 3))
    for name, args, kwargs in [("scatter_add", (0, i2, s), {}), ("scatter", (0, i2, s), {}),
                               ("scatter", (0, i2), {"value": -1.0}),
                               ("index_add", (1, np.array([2, 2]), np.ones((2, 2))),
                                {"alpha": 3}),
                               ("index_copy", (1, np.array([2, 0]), np.ones((2, 2))), {}),
                               ("index_fill", (1, np.array([2]), 7.0), {})]:
        conv = [_tg(a) if isinstance(a, np.ndarray) else a for a in args]
        convh = [_th(a) if isinstance(a, np.ndarray) else a for a in args]
        got = getattr(tg, name)(_tg(x), *conv, **kwargs)
        exp = getattr(torch, name)(_th(x), *convh, **kwargs)
        assert got.numpy().tolist() == exp.numpy().tolist(), name


def test_index_fill_tensor_value_against_torch():
    """IndexFillBackward1: the value's gradient is the probe summed over the filled
    positions, each once (PyTorch 2.13 counts a repeated index once too)."""
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([1, 1, 0])
    w = np.arange(12.0).reshape(3, 4) + 1
    out = {}
    for lib, conv in [(tg, _tg), (torch, _th)]:
        v = conv(np.array(2.5), True)
        xt = conv(x, True)
        y = xt.index_fill(1, conv(idx), v)
        (y * conv(w)).sum().backward()
        out[lib] = (y.grad_fn.name(), y.detach().numpy().tolist(), float(v.grad),
                    xt.grad.numpy().tolist())
    assert out[tg] == out[torch]
    assert out[tg][0] == "IndexFillBackward1" and out[tg][2] == w[:, [0, 1]].sum()


def test_index_fill_negative_indices():
    """Negative indices count from the end, as PyTorch's forward (PyTorch's backward of a
    tensor value raises for them: an index_select of -1; here the value gets its sum)."""
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([-1, 0, -1])
    assert _tg(x).index_fill(1, _tg(idx), 2.5).numpy().tolist() == \
        _th(x).index_fill(1, _th(idx), 2.5).numpy().tolist()
    v = _tg(np.array(2.5), True)
    xt = _tg(x, True)
    y = xt.index_fill(1, _tg(idx), v)
    expected = x.copy()
    expected[:, [0, 3]] = 2.5
    assert y.detach().numpy().tolist() == expected.tolist()
    w = np.arange(12.0).reshape(3, 4) + 1
    (y * _tg(w)).sum().backward()
    assert float(v.grad) == w[:, [0, 3]].sum()
    gx = w.copy()
    gx[:, [0, 3]] = 0
    assert xt.grad.numpy().tolist() == gx.tolist()


def test_integer_tensors_and_value_cast():
    x = np.zeros((2, 3), np.int64)
    i = np.array([[0, 1, 1]])
    got = _tg(x).scatter(0, _tg(i), 7.9)
    exp = _th(x).scatter(0, _th(i), 7.9)
    assert got.dtype == tg.int64 and got.numpy().tolist() == exp.numpy().tolist()
    got = _tg(x).scatter_add(1, _tg(np.array([[2, 2]])), _tg(np.array([[3, 4]])))
    assert got.numpy().tolist() == [[0, 0, 7], [0, 0, 0]]
    # int32 indices (PyTorch 2.13 takes them for scatter and index_add)
    i32 = _tg(np.array([[1, 0, 1]], np.int32))
    assert _tg(x).scatter_add(0, i32, _tg(np.ones((1, 3), np.int64))).numpy().tolist() == \
        [[0, 1, 0], [1, 0, 1]]


def test_zero_dim_tensors_as_torch():
    """A 0-d self, index or src counts as one element of one dim, as PyTorch's."""
    calls = [lambda lib, c: c(np.array(1.0)).scatter_add(0, c(np.array(0)), c(np.array(2.0))),
             lambda lib, c: c(np.zeros(3)).scatter_add(0, c(np.array(2)), c(np.array(2.0))),
             lambda lib, c: c(np.array(1.0)).scatter(0, c(np.array([0])), 5.0),
             lambda lib, c: c(np.array(1.0)).index_add(0, c(np.array([0])), c(np.array(2.0))),
             lambda lib, c: c(np.array(1.0)).index_add(0, c(np.array(0)), c(np.array(2.0))),
             lambda lib, c: c(np.zeros(3)).index_copy(0, c(np.array([1])), c(np.array(2.0))),
             lambda lib, c: c(np.array(1.0)).index_copy(0, c(np.array([0])), c(np.array(2.0))),
             lambda lib, c: c(np.array(1.0)).index_fill(0, c(np.array([0])), 3.0)]
    for k, call in enumerate(calls):
        got, exp = call(tg, _tg), call(torch, _th)
        assert tuple(got.shape) == tuple(exp.shape), k
        assert got.numpy().tolist() == exp.numpy().tolist(), k
    with pytest.raises(RuntimeError, match="index 1 is out of bounds for dimension 0 with size 1"):
        _tg(np.array(1.0)).scatter_add(0, _tg(np.array(1)), _tg(np.array(2.0)))


# ----- errors, each against PyTorch's -----------------------------------------------------------
X = np.zeros((3, 4), np.float32)
S = np.ones((2, 5), np.float32)
I1 = np.array([[0, 1, 2, 0]])

ERROR_CASES = [
    ("scatter_add", (0, I1.astype(np.float32), S)),
    ("scatter", (0, I1.astype(np.float32), 1.0)),
    ("scatter_add", (0, np.array([[5]]), S)),
    ("scatter_add", (0, np.array([[-1]]), S)),
    ("scatter", (0, np.array([[5]]), 1.0)),
    ("scatter", (1, np.array([[4]]), S)),
    ("scatter_add", (0, np.array([0]), S)),
    ("scatter_add", (0, np.zeros((1, 5), np.int64), S)),
    ("scatter_add", (0, np.zeros((3, 4), np.int64), S)),
    ("scatter", (0, np.zeros((1, 5), np.int64), 1.0)),
    ("scatter_add", (0, I1, S.astype(np.float64))),
    ("scatter", (0, I1, S.astype(np.float64))),
    ("scatter_add", (2, I1, S)),
    ("scatter_add", (-3, I1, S)),
    ("index_add", (0, np.array([0, 0], np.float32), S[:, :4])),
    ("index_add", (0, np.array([0, 5]), S[:, :4])),
    ("index_add", (0, np.array([0, -1]), S[:, :4])),
    ("index_add", (0, np.array([0, 1]), S)),
    ("index_add", (0, np.array([0, 1, 2]), S[:, :4])),
    ("index_add", (0, np.array([[0, 1]]), S[:, :4])),
    ("index_add", (0, np.array([0, 1]), S[:, :4].astype(np.float64))),
    ("index_add", (0, np.array([0, 1]), S[0, :4])),
    ("index_copy", (0, np.array([0, 2], np.int32), S[:, :4])),
    ("index_copy", (0, np.array([0, 5]), S[:, :4])),
    ("index_copy", (0, np.array([0, -1]), S[:, :4])),
    ("index_copy", (0, np.array([0, 1]), S)),
    ("index_copy", (0, np.array([0, 1, 2]), S[:, :4])),
    ("index_copy", (0, np.array([0, 1]), S[:, :4].astype(np.float64))),
    ("index_copy", (0, np.array([0, 1]), S[0, :4])),
    ("index_copy", (0, np.array([[1]]), S[:1, :4])),
    ("index_fill", (0, np.array([0, 2], np.int32), 1.5)),
    ("index_fill", (0, np.array([0, 5]), 1.5)),
    ("index_fill", (0, np.array([-4]), 1.5)),
    ("index_fill", (0, np.array([[0, 1]]), 1.5)),
    ("index_fill", (0, np.array([0, 1]), np.array([2.0], np.float32))),
]


def _conv(lib, a):
    return (_tg if lib is tg else _th)(a) if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("name,args", ERROR_CASES, ids=lambda v: str(v)[:40])
def test_errors_as_torch(name, args):
    with pytest.raises(Exception) as th_err:
        getattr(_th(X), name)(*[_conv(torch, a) for a in args])
    x = _tg(X)
    with pytest.raises(type(th_err.value)) as tg_err:
        getattr(x, name)(*[_conv(tg, a) for a in args])
    assert str(tg_err.value) == str(th_err.value).split("\n")[0]
    # raising before any write: the in-place form leaves self as it was
    with pytest.raises(type(th_err.value)):
        getattr(x, name + "_")(*[_conv(tg, a) for a in args])
    assert (x.numpy() == X).all()


@pytest.mark.parametrize("name", ["scatter_add", "scatter"])
def test_src_larger_than_index_raises_at_backward_as_torch(name):
    i = np.array([[0, 1, 2, 0]])
    got = {}
    for lib, conv in [(tg, _tg), (torch, _th)]:
        x, s = conv(X.copy(), True), conv(S.copy(), True)
        y = getattr(x, name)(0, conv(i), s)
        with pytest.raises(RuntimeError) as e:
            y.sum().backward()
        got[lib] = str(e.value)
    assert got[tg] == got[torch]
    assert "returned an invalid gradient at index 1 - got [1, 4]" in got[tg]


def test_reduce_is_not_supported():
    with pytest.raises(NotImplementedError, match="reduce"):
        _tg(X).scatter(0, _tg(I1), _tg(S), reduce="add")


# ----- in place -----------------------------------------------------------------------------
INPLACE = [("scatter_add_", (0, I1, S[:1, :4]), "ScatterAddBackward0"),
           ("scatter_", (0, I1[:, :3] * 0 + np.array([[0, 1, 2]]), S[:1, :3]),
            "ScatterBackward0"),
           ("scatter_", (1, np.array([[3], [0], [1]]), -2.0), "ScatterBackward1"),
           ("index_add_", (1, np.array([3, 3]), np.ones((3, 2), np.float32)),
            "IndexAddBackward0"),
           ("index_copy_", (0, np.array([2, 0]), S[:, :4]), "IndexCopyBackward0"),
           ("index_fill_", (1, np.array([1, -2]), 4.0), "IndexFillBackward0")]


@pytest.mark.parametrize("name,args,node", INPLACE, ids=[c[0] for c in INPLACE])
def test_in_place_forms_as_torch(name, args, node):
    base = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    w = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    results = {}
    for lib, conv in [(tg, _tg), (torch, _th)]:
        leaf = conv(base, True)
        srcs = [conv(a, True) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                else _conv(lib, a) for a in args]
        y = leaf * 1
        v0 = y._version
        out = getattr(y, name)(*srcs)
        assert out is y
        assert y._version == v0 + 1
        assert y.grad_fn.name() == node
        (y * conv(w)).sum().backward()
        grads = [leaf.grad.numpy().copy()] + [s.grad.numpy().copy() for s in srcs
                                                if hasattr(s, "grad") and s.grad is not None]
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            getattr(conv(base, True), name)(*[_conv(lib, a) for a in args])
        plain = conv(base.copy())                     # no grad: a plain write
        getattr(plain, name)(*[_conv(lib, a) for a in args])
        results[lib] = (y.detach().numpy().copy(), grads, plain.numpy().copy())
    np.testing.assert_allclose(results[tg][0], results[torch][0], rtol=1e-6)
    np.testing.assert_allclose(results[tg][2], results[torch][2], rtol=1e-6)
    assert len(results[tg][1]) == len(results[torch][1])
    for a, b in zip(results[tg][1], results[torch][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_in_place_on_a_tensor_saved_for_backward_raises():
    x = _tg(np.ones(3), True)
    y = x * 1
    z = y.exp()
    z.scatter_add_(0, _tg(np.array([0])), _tg(np.ones(1)))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


# ----- create_graph --------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPS)
def test_second_derivatives_against_torch(name):
    """gs = d<y, v>/d(src) (or /dx) with create_graph, then d<gs * u>/dv and d/d(src): the
    backward's own gather/index_select/fill, differentiated again."""
    shape, dim = (3, 4), 1
    x, idx, src, _, _ = setup(name, shape, dim, np.float64, seed=7)
    rng = np.random.default_rng(8)
    v = rng.standard_normal(shape)
    op = _op(name, dim, 2.0 if name == "index_add" else 1)
    out = {}
    for lib, conv in [(tg, _tg), (torch, _th)]:
        xt = conv(x, True)
        st = conv(src, True) if src is not None else None
        vt = conv(v, True)
        sq = st * st if st is not None else None          # src * src: a nonzero 2nd derivative
        y = op(lib, xt, conv(idx), sq)
        wrt = [xt] + ([st] if st is not None else [])
        firsts = lib.autograd.grad(y, wrt, grad_outputs=vt, create_graph=True)
        u = [np.random.default_rng(9 + k).standard_normal(f.shape) for k, f in
             enumerate(firsts)]
        total = sum((f * conv(uk)).sum() for f, uk in zip(firsts, u))
        seconds = lib.autograd.grad(total, [vt] + wrt[1:], allow_unused=True)
        out[lib] = ([f.detach().numpy() for f in firsts],
                    [None if s is None else s.numpy() for s in seconds],
                    [f.grad_fn.name() if f.grad_fn is not None else None for f in firsts])
    for a, b in zip(out[tg][0] + out[tg][1], out[torch][0] + out[torch][1]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert out[tg][2][0] == out[torch][2][0]    # self's gradient: g, or g.scatter/index_fill
    assert any(a is not None and np.abs(a).sum() > 0 for a in out[tg][1])


# ----- tg.compile ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPS)
def test_compile_refuses_with_a_clear_error(name):
    x, idx, src, _, _ = setup(name, (4, 3), 0, np.float32)
    op = _op(name, 0)
    it = _tg(idx)
    st = _tg(src) if src is not None else None

    @tg.compile
    def f(a):
        return op(tg, a, it, st) * 2

    with pytest.raises(RuntimeError, match="not supported"):
        f(_tg(x))

    @tg.compile
    def g(a):
        b = a * 1
        getattr(b, {"scatter_value": "scatter"}.get(name, name) + "_")(
            *([0, it] + ([st] if st is not None else [2.5])))
        return b

    with pytest.raises(RuntimeError, match="not supported"):
        g(_tg(x))
    # eager still works after the refusal
    assert op(tg, _tg(x), it, st).shape == (4, 3)
