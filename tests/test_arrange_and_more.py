"""Rearranging methods (arrange.py: flip roll select unbind movedim swapaxes tile diff
trace), pointwise compositions (composite.py: where addcmul addcdiv lerp nansum nanmean
masked_select) and unrecorded queries (tensor_api.py: nonzero argwhere count_nonzero unique
stride element_size itemsize nbytes).

Each is checked against NumPy's own function (values) and a gradient built by hand (the
adjoint of an index map is the scatter of the incoming gradient), and against PyTorch where
it is installed: values to the bit, gradients, errors.
"""
import numpy as np
import pytest

import tapegrad as tg

F64 = tg.float64
RNG = np.random.default_rng(11)
X = RNG.normal(size=(3, 4, 5))
W = RNG.normal(size=(3, 4, 5))              # the probe: loss = sum(f(x) * W')


def _grad_of(fn, x=X):
    """(f(x) as an array, d sum(f(x) * probe) / dx) with a probe of f(x)'s shape."""
    t = tg.tensor(x, dtype=F64, requires_grad=True)
    out = fn(t)
    probe = np.random.default_rng(0).normal(size=tuple(out.shape))
    (out * tg.tensor(probe, dtype=F64)).sum().backward()
    return out.detach().numpy(), t.grad.numpy(), probe


def _index_map_grad(shape, positions, probe):
    """The gradient of y = x.flat[positions] (positions shaped like y): probe scattered."""
    g = np.zeros(int(np.prod(shape)))
    np.add.at(g, positions.reshape(-1), probe.reshape(-1))
    return g.reshape(shape)


FLAT = np.arange(X.size).reshape(X.shape)

# (name, tapegrad call, the same positions in NumPy)
MAPS = [
    ("flip", lambda t: t.flip(0, 2), lambda a: np.flip(a, (0, 2))),
    ("flip-list", lambda t: tg.flip(t, [1]), lambda a: np.flip(a, 1)),
    ("roll", lambda t: t.roll(2, 1), lambda a: np.roll(a, 2, 1)),
    ("roll-neg-2dims", lambda t: t.roll((-1, 3), (0, 2)), lambda a: np.roll(a, (-1, 3), (0, 2))),
    ("roll-flat", lambda t: t.roll(7), lambda a: np.roll(a, 7)),
    ("select", lambda t: t.select(1, -1), lambda a: a[:, -1]),
    ("unbind", lambda t: tg.stack(t.unbind(2)[::2]), lambda a: np.stack([a[..., 0], a[..., 2],
                                                                       a[..., 4]])),
    ("movedim", lambda t: t.movedim(0, -1), lambda a: np.moveaxis(a, 0, -1)),
    ("movedim-2", lambda t: t.movedim((0, 1), (2, 0)), lambda a: np.moveaxis(a, (0, 1), (2, 0))),
    ("swapaxes", lambda t: t.swapaxes(0, 2), lambda a: np.swapaxes(a, 0, 2)),
    ("tile", lambda t: t.tile((2, 1)), lambda a: np.tile(a, (2, 1))),
    ("tile-more", lambda t: t.tile(2, 1, 1, 2), lambda a: np.tile(a, (2, 1, 1, 2))),
]


@pytest.mark.parametrize("name, fn, np_fn", MAPS, ids=[m[0] for m in MAPS])
def test_rearrangements_against_numpy_and_their_adjoint(name, fn, np_fn):
    out, grad, probe = _grad_of(fn)
    assert np.array_equal(out, np_fn(X))
    np.testing.assert_array_equal(grad, _index_map_grad(X.shape, np_fn(FLAT), probe))


def test_diff_and_trace_against_closed_forms():
    out, grad, probe = _grad_of(lambda t: t.diff())
    assert np.array_equal(out, np.diff(X))
    want = np.zeros_like(X)                 # d/dx_i of sum_j p_j (x_{j+1} - x_j)
    want[..., 1:] += probe
    want[..., :-1] -= probe
    np.testing.assert_allclose(grad, want, rtol=1e-15)
    out, _, _ = _grad_of(lambda t: t.diff(n=2, dim=0))
    np.testing.assert_allclose(out, np.diff(X, 2, 0), rtol=1e-15)
    pre = tg.tensor(np.ones((3, 4, 1)), dtype=F64)
    out, _, _ = _grad_of(lambda t: tg.diff(t, dim=2, prepend=pre, append=pre))
    np.testing.assert_allclose(out, np.diff(X, 1, 2, prepend=1.0, append=1.0), rtol=1e-15)
    m = RNG.normal(size=(4, 6))
    out, grad, probe = _grad_of(lambda t: t.trace(), m)
    assert out == pytest.approx(np.trace(m), rel=1e-15)
    np.testing.assert_array_equal(grad, np.eye(4, 6) * probe)


def test_pointwise_compositions_against_closed_forms():
    a, b, c = (RNG.uniform(0.5, 2.0, (4, 3)) for _ in range(3))
    ta, tb, tc = (tg.tensor(v, dtype=F64, requires_grad=True) for v in (a, b, c))
    ta.addcmul(tb, tc, value=0.5).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), 1.0)
    np.testing.assert_allclose(tb.grad.numpy(), 0.5 * c, rtol=1e-15)
    assert np.array_equal(tg.addcmul(tg.tensor(a), tg.tensor(b), tg.tensor(c), value=0.5).numpy(),
                          a + 0.5 * b * c)
    assert np.array_equal(tg.tensor(a).addcdiv(tg.tensor(b), tg.tensor(c), value=2).numpy(),
                          a + 2 * b / c)
    for w in (0.25, 0.75, 1.0):
        ta, tb = (tg.tensor(v, dtype=F64, requires_grad=True) for v in (a, b))
        out = ta.lerp(tb, w)
        out.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), a + w * (b - a), rtol=1e-15)
        np.testing.assert_allclose(ta.grad.numpy(), 1 - w, rtol=1e-15)
        np.testing.assert_allclose(tb.grad.numpy(), w, rtol=1e-15)
    assert np.array_equal(tg.tensor(a).lerp(tg.tensor(b), 1.0).numpy(), b)   # end exactly
    nan = a.copy()
    nan[1, 2] = np.nan
    tn = tg.tensor(nan, dtype=F64, requires_grad=True)
    (tn.nansum() + tn.nanmean(dim=1).sum()).backward()
    want = np.ones_like(a) + 1 / np.where(np.isnan(nan).any(1), 2, 3)[:, None]
    want[1, 2] = 0.0
    np.testing.assert_allclose(tn.grad.numpy(), want, rtol=1e-15)
    mask = a > 1.0
    tm = tg.tensor(a, dtype=F64, requires_grad=True)
    tm.masked_select(tg.tensor(mask)).sum().backward()
    assert np.array_equal(tm.grad.numpy(), mask.astype(float))
    assert np.array_equal(tg.tensor(a).where(tg.tensor(mask), 0.0).numpy(), np.where(mask, a, 0))


def test_unrecorded_queries():
    v = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    t = tg.tensor(v)
    assert t.nonzero().tolist() == np.argwhere(v).tolist() and t.nonzero().dtype is tg.int64
    assert [w.tolist() for w in t.nonzero(as_tuple=True)] == [w.tolist() for w in np.nonzero(v)]
    assert tg.argwhere(t).tolist() == np.argwhere(v).tolist()
    assert t.count_nonzero().item() == 3 and t.count_nonzero(dim=0).tolist() == [1, 1, 1]
    assert tuple(tg.tensor(5.0).nonzero().shape) == (1, 0)
    u = tg.tensor([3, 1, 3, 2, 1, 3])
    values, inverse, counts = u.unique(return_inverse=True, return_counts=True)
    assert values.tolist() == [1, 2, 3] and counts.tolist() == [2, 1, 3]
    assert values[inverse].tolist() == u.tolist()
    m = tg.zeros(3, 4, dtype=F64)
    assert m.stride() == (4, 1) and m.t().stride() == (1, 4) and m.stride(1) == 1
    assert m[:, ::2].stride() == (4, 2) and m[:1].expand(5, 4).stride() == (0, 1)
    assert m.element_size() == 8 and m.itemsize == 8 and m.nbytes == 96
    assert tg.ones(3).element_size() == 4 and tg.tensor(2.0).stride() == ()


def test_errors():
    t = tg.ones(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        t.flip(2)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        t.flip(0, 0)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        t.roll((1, 2), 0)
    with pytest.raises(IndexError, match=r"select\(\): index 3 out of range"):
        t.select(1, 3)
    with pytest.raises(RuntimeError, match="trace: expected a matrix"):
        tg.ones(3).trace()
    with pytest.raises(RuntimeError, match="masked_select: expected BoolTensor"):
        t.masked_select(tg.ones(2, 3))


CALLS = [
    ("flip", lambda L, t: L.flip(t, (0, 2))), ("roll", lambda L, t: t.roll((1, -2), (2, 1))),
    ("roll-flat", lambda L, t: L.roll(t, 5)), ("select", lambda L, t: t.select(-1, 2)),
    ("unbind", lambda L, t: L.stack(L.unbind(t, 1), 2)),
    ("movedim", lambda L, t: L.movedim(t, (2, 0), (0, 1))),
    ("swapdims", lambda L, t: t.swapdims(1, 2)), ("tile", lambda L, t: L.tile(t, (2, 1))),
    ("diff", lambda L, t: L.diff(t, n=2, dim=1)), ("trace", lambda L, t: t[0].trace()),
    ("addcmul", lambda L, t: L.addcmul(t, t.sin(), t.cos(), value=0.3)),
    ("addcdiv", lambda L, t: t.addcdiv(t.sin(), t.exp(), value=-2)),
    ("lerp", lambda L, t: L.lerp(t, t.cos(), 0.7)),
    ("lerp-tensor", lambda L, t: t.lerp(t.cos(), t.sin().abs())),
    ("nansum", lambda L, t: (t / (t > 0.5)).nansum(1)),
    ("nanmean", lambda L, t: L.nanmean(t.sqrt(), dim=0, keepdim=True)),
    ("masked_select", lambda L, t: L.masked_select(t, t[0] > 0)),
    ("where", lambda L, t: t.where(t > 0, t * 2))]


@pytest.mark.parametrize("name, fn", CALLS, ids=[c[0] for c in CALLS])
def test_against_torch(name, fn):
    torch = pytest.importorskip("torch")
    outs, grads = [], []
    for L in (tg, torch):
        t = L.tensor(X, dtype=L.float64, requires_grad=True)
        y = fn(L, t)
        outs.append(y.detach().numpy())
        (y * y).sum().backward()
        grads.append(t.grad.numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-15, atol=0, equal_nan=True)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-13, atol=1e-15)


def test_queries_against_torch():
    torch = pytest.importorskip("torch")
    v = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0], [2.0, 0.0, -1.0]])
    t, u = tg.tensor(v), torch.tensor(v)
    assert t.nonzero().tolist() == u.nonzero().tolist()
    assert tg.count_nonzero(t, dim=1).tolist() == torch.count_nonzero(u, dim=1).tolist()
    for kw in ({}, {"return_inverse": True, "return_counts": True},
               {"dim": 0, "return_counts": True}):
        ours, theirs = t.unique(**kw), u.unique(**kw)
        ours = ours if isinstance(ours, tuple) else (ours,)
        theirs = theirs if isinstance(theirs, tuple) else (theirs,)
        assert [o.tolist() for o in ours] == [x.tolist() for x in theirs]
    m, n = tg.zeros(3, 4, 5), torch.zeros(3, 4, 5)
    for f in (lambda a: a, lambda a: a.permute(2, 0, 1), lambda a: a[:, 1:, ::2],
              lambda a: a[:1].expand(6, 4, 5)):
        assert f(m).stride() == f(n).stride()
    assert (m.element_size(), m.itemsize, m.nbytes) == (n.element_size(), n.itemsize, n.nbytes)


@pytest.mark.parametrize("make, dims", [(lambda: tg.tensor(1.5, requires_grad=True), (0,)),
                                        (lambda: tg.tensor(1.5, requires_grad=True), (-1,)),
                                        (lambda: tg.ones(2, 3, requires_grad=True), ([],))])
def test_flip_with_nothing_to_reverse_is_a_new_tensor_as_pytorchs(make, dims):
    x = make()
    y = x.flip(*dims)
    assert y is not x and y.tolist() == x.tolist()
    (y * 3.0).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.full(tuple(x.shape), 3.0))
    with tg.no_grad():
        y.add_(1.0)                          # not an alias of x
    assert np.array_equal(x.detach().numpy(), make().detach().numpy())
