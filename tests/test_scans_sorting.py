"""cumsum, cumprod (scans.py), sort, argsort, topk (ordering.py): values, indices and
gradients against PyTorch in float32 and float64 and against finite differences, dtypes,
edge shapes, PyTorch's errors, and tg.compile replays against eager calls (the sort order
is guarded: a replay the recorded order does not sort records again)."""
import math

import numpy as np
import pytest

import tapegrad as tg

NAN = float("nan")
DATA = [[1.25, -2.0, 3.0, 0.5, -0.75], [4.5, 0.25, -6.0, 1.5, 2.0],
        [-0.5, 7.0, 2.5, -1.0, 0.125]]
TIES = [[1.0, 3.0, 1.0, 2.0, 3.0, 1.0], [0.0, -0.0, 5.0, NAN, 5.0, NAN]]

# (name, function of (library, x)) with a differentiable float result
CASES = {
    "cumsum_0": lambda L, x: x.cumsum(0),
    "cumsum_1": lambda L, x: L.cumsum(x, 1),
    "cumsum_neg": lambda L, x: x.cumsum(-1),
    "cumsum_1d": lambda L, x: x[1].cumsum(0),
    "cumsum_0d": lambda L, x: x[1, 2].cumsum(0),
    "cumsum_dtype": lambda L, x: x.cumsum(1, dtype=L.float64) * 1,
    "cumprod_0": lambda L, x: x.cumprod(0),
    "cumprod_1": lambda L, x: L.cumprod(x, -1),
    "cumprod_0d": lambda L, x: L.cumprod(x[0, 0], -1),
    "sort": lambda L, x: x.sort().values,
    "sort_0": lambda L, x: L.sort(x, 0).values,
    "sort_desc": lambda L, x: x.sort(dim=-2, descending=True)[0],
    "sort_stable_desc": lambda L, x: L.sort(x, descending=True, stable=True).values,
    "sort_0d": lambda L, x: x[0, 1].sort().values,
    "topk": lambda L, x: x.topk(2).values,
    "topk_smallest": lambda L, x: L.topk(x, 3, dim=0, largest=False).values,
    "topk_all": lambda L, x: x.topk(5, -1)[0],
    "topk_1d": lambda L, x: x[2].topk(1).values,
    "sort_take_index": lambda L, x: x.gather(1, x.argsort(1)) * 2,
}


def _x(L, data, dtype="float64"):
    return L.tensor(data, dtype=getattr(L, dtype), requires_grad=True)


def _run(L, f, data, dtype="float64"):
    x = _x(L, data, dtype)
    y = f(L, x)
    w = L.arange(1, y.numel() + 1, dtype=y.dtype).reshape(y.shape)
    (y * w).sum().backward()
    return y.detach().numpy().copy(), x.grad.numpy().copy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_grads_match_pytorch(name, dtype):
    torch = pytest.importorskip("torch")
    y, g = _run(tg, CASES[name], DATA, dtype)
    ty, tgrad = _run(torch, CASES[name], DATA, dtype)
    assert y.dtype == ty.dtype and y.shape == ty.shape
    np.testing.assert_array_equal(y, ty)                # values: to the bit
    if name.startswith("cumprod"):      # PyTorch's cumprod gradient is a formula of its own
        np.testing.assert_allclose(g, tgrad, rtol=1e-6 if dtype == "float32" else 1e-13)
    else:
        np.testing.assert_array_equal(g, tgrad)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grads_match_finite_differences(name):
    f = CASES[name]
    base = np.array(DATA)
    _, g = _run(tg, f, DATA)
    num = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        up, dn = base.copy(), base.copy()
        up[i] += 1e-6
        dn[i] -= 1e-6
        wy = [f(tg, tg.tensor(d, dtype=tg.float64)) for d in (up, dn)]
        w = np.arange(1, wy[0].numel() + 1).reshape(wy[0].shape)
        num[i] = ((wy[0].numpy() * w).sum() - (wy[1].numpy() * w).sum()) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7)


# ----- cumsum, cumprod ------------------------------------------------------------------
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("n", [1000, 37])
def test_long_scans_are_sequential_as_pytorchs(op, n):
    """float32 accumulates in double (one rounding per value), float64 sequentially: the
    values and gradients equal PyTorch's to the bit, recorded or not."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for dt in ("float32", "float64"):
        a = (rng.random((3, n)) + (0.5 if op == "cumprod" else 0.0)).astype(dt)
        if op == "cumprod":
            a = a ** (1.0 / 8)                  # (stays finite over 1000 factors)
        want = getattr(torch.from_numpy(a), op)(1).numpy()
        np.testing.assert_array_equal(getattr(tg.from_numpy(a), op)(1).numpy(), want)
        x = tg.tensor(a, requires_grad=True)
        y = getattr(x, op)(1)
        np.testing.assert_array_equal(y.detach().numpy(), want)
        if op == "cumsum":
            g = rng.standard_normal((3, n)).astype(dt)
            y.backward(tg.tensor(g))
            t = torch.tensor(a, requires_grad=True)
            t.cumsum(1).backward(torch.from_numpy(g))
            np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("data", [[2.0, 0.0, 3.0, 4.0], [0.0, 2.0, 3.0, 0.5],
                                  [2.0, 3.0, 0.5, 0.0], [2.0, 0.0, 3.0, 0.0, 5.0],
                                  [0.0, 0.0, 0.0], [0.0]])
def test_cumprod_gradient_through_zeros(data):
    torch = pytest.importorskip("torch")
    x = tg.tensor(data, dtype=tg.float64, requires_grad=True)
    t = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    w = np.arange(1.0, len(data) + 1)
    (x.cumprod(0) * tg.tensor(w)).sum().backward()
    (t.cumprod(0) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    # and the closed form: d/dx_j sum_i w_i prod_{k<=i} x_k
    want = [sum(w[i] * math.prod(data[k] for k in range(i + 1) if k != j)
                for i in range(j, len(data))) for j in range(len(data))]
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-15)


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_scan_dtypes_match_pytorch(op):
    torch = pytest.importorskip("torch")
    cases = [([1, 2, 3], "int32", None), ([True, False, True], "bool", None),
             ([3, 200, 7], "uint8", None), ([1, 2, 3], "int64", "float32"),
             ([1.5, 2.5, 3.5], "float64", "float32"), ([2**62, 2**62, 3], "int64", None),
             ([[1, 2], [3, 4]], "int16", None)]
    for data, dt, out in cases:
        kw = {} if out is None else {"dtype": getattr(tg, out)}
        tkw = {} if out is None else {"dtype": getattr(torch, out)}
        mine = getattr(tg.tensor(data, dtype=getattr(tg, dt)), op)(0, **kw)
        want = getattr(torch.tensor(data, dtype=getattr(torch, dt)), op)(0, **tkw)
        assert str(mine.dtype).split(".")[1] == str(want.dtype).split(".")[1], (data, dt)
        np.testing.assert_array_equal(mine.numpy(), want.numpy())


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("shape,dim", [((0,), 0), ((0, 3), 1), ((2, 0), 0), ((), 0), ((), -1),
                                       ((1, 4), 0), ((4, 1), 1)])
def test_scan_edge_shapes(op, shape, dim):
    torch = pytest.importorskip("torch")
    a = np.arange(1, math.prod(shape) + 1, dtype=np.float64).reshape(shape) / 4
    for rg in (False, True):
        y = getattr(tg.tensor(a, requires_grad=rg), op)(dim)
        t = getattr(torch.tensor(a, requires_grad=rg), op)(dim)
        assert tuple(y.shape) == tuple(t.shape) and y.requires_grad == t.requires_grad
        np.testing.assert_array_equal(y.detach().numpy(), t.detach().numpy())


def test_scan_errors_in_pytorchs_words():
    x = tg.ones(3, 4)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                         r"of \[-2, 1\], but got 2\)"):
        x.cumsum(2)
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        tg.tensor(2.0).cumprod(1)
    with pytest.raises(TypeError, match='cumsum\\(\\) missing 1 required positional '
                                        'arguments: "dim"'):
        x.cumsum()


def test_scans_overflow_and_nonfinite_as_pytorch():
    torch = pytest.importorskip("torch")
    for data in ([3e38, 3e38, -3e38], [1e30, 1e30, 1e-30], [math.inf, -math.inf, 1.0],
                 [NAN, 1.0, 2.0]):
        for op in ("cumsum", "cumprod"):
            for rg in (False, True):
                y = getattr(tg.tensor(data, requires_grad=rg), op)(0)
                t = getattr(torch.tensor(data, requires_grad=rg), op)(0)
                np.testing.assert_array_equal(y.detach().numpy(), t.detach().numpy())


# ----- sort, argsort, topk --------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "uint8", "bool"])
def test_sort_order_matches_pytorch_stable(dtype):
    """stable=True: values and indices equal PyTorch's, ties and NaN included (NaN sorts
    last ascending, first descending)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, (5, 40)).astype(np.float64)
    if dtype.startswith("float"):
        a[rng.random(a.shape) < 0.1] = NAN
        a[0, :6] = [0.0, -0.0, NAN, -0.0, 0.0, NAN]
    a = a.astype(np.bool_ if dtype == "bool" else dtype)
    for dim in (1, 0, -1):
        for desc in (False, True):
            mine = tg.from_numpy(a.copy()).sort(dim=dim, descending=desc, stable=True)
            want = torch.from_numpy(a.copy()).sort(dim=dim, descending=desc, stable=True)
            np.testing.assert_array_equal(mine.values.numpy(), want.values.numpy())
            np.testing.assert_array_equal(mine.indices.numpy(), want.indices.numpy())
            assert mine.indices.dtype is tg.int64
            np.testing.assert_array_equal(
                tg.argsort(tg.from_numpy(a.copy()), dim=dim, descending=desc, stable=True).numpy(),
                want.indices.numpy())
            # the signs of zeros are the elements', in their places
            np.testing.assert_array_equal(np.signbit(mine.values.numpy().astype(float)),
                                          np.signbit(want.values.numpy().astype(float)))


def test_sort_default_ties_are_stable():
    """Without stable=True PyTorch's tie order is unspecified (descending dims of 16 and
    more come out unstable); tapegrad's is the stable one."""
    x = tg.tensor(TIES)
    assert x.sort(1).indices.tolist() == [[0, 2, 5, 3, 1, 4], [0, 1, 2, 4, 3, 5]]
    assert x.sort(1, descending=True).indices.tolist() == [[1, 4, 3, 0, 2, 5],
                                                           [3, 5, 2, 4, 0, 1]]
    assert tg.ones(20).sort(descending=True).indices.tolist() == list(range(20))


def test_topk_matches_pytorch_on_distinct_values():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a = rng.permutation(60).reshape(4, 15).astype(np.float32)
    a[1, 3] = NAN
    for k in (0, 1, 4, 15):
        for largest in (True, False):
            mine = tg.from_numpy(a).topk(k, 1, largest)
            want = torch.from_numpy(a).topk(k, 1, largest)
            np.testing.assert_array_equal(mine.values.numpy(), want.values.numpy())
            np.testing.assert_array_equal(mine.indices.numpy(), want.indices.numpy())
    mine = tg.topk(tg.from_numpy(a), 3, dim=0)
    want = torch.topk(torch.from_numpy(a), 3, dim=0)
    np.testing.assert_array_equal(mine.indices.numpy(), want.indices.numpy())
    # sorted=False: PyTorch's order is unspecified; the same elements
    mine = tg.from_numpy(a).topk(5, sorted=False)
    want = torch.from_numpy(a).topk(5, sorted=False)
    np.testing.assert_array_equal(np.sort(mine.indices.numpy(), 1),
                                  np.sort(want.indices.numpy(), 1))
    ints = tg.tensor([3, 1, 2]).topk(2)
    assert ints.values.tolist() == [3, 2] and ints.indices.tolist() == [0, 2]


def test_topk_ties_take_the_first_positions():
    x = tg.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    assert x.topk(2).indices.tolist() == [0, 1]
    assert x.topk(2, largest=False).indices.tolist() == [4, 0]


def test_return_types_are_named_tuples():
    r = tg.tensor([3.0, 1.0, 2.0]).sort()
    v, i = r
    assert r[0] is r.values is v and r[1] is r.indices is i
    assert len(r) == 2 and isinstance(r, tuple)
    assert repr(r) == ("tapegrad.return_types.sort(\nvalues=tensor([1., 2., 3.]),\n"
                       "indices=tensor([1, 2, 0]))")
    t = tg.tensor([3.0, 1.0, 2.0], requires_grad=True).topk(1)
    assert repr(t) == ("tapegrad.return_types.topk(\nvalues=tensor([3.], grad_fn="
                       "<GatherBackward0>),\nindices=tensor([0]))")
    assert not t.indices.requires_grad


@pytest.mark.parametrize("shape,dim", [((0,), 0), ((0, 3), 1), ((2, 0), 1), ((2, 0), 0),
                                       ((), 0), ((), -1), ((1,), 0)])
def test_sort_edge_shapes(shape, dim):
    torch = pytest.importorskip("torch")
    a = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    for rg in (False, True):
        mine = tg.tensor(a, requires_grad=rg).sort(dim)
        want = torch.tensor(a, requires_grad=rg).sort(dim)
        for m, w in zip(mine, want):
            assert tuple(m.shape) == tuple(w.shape) and m.dtype.is_floating_point == \
                w.dtype.is_floating_point and m.requires_grad == w.requires_grad
            np.testing.assert_array_equal(m.detach().numpy(), w.detach().numpy())
    k = 1 if not shape or shape[dim] else 0
    mine, want = tg.tensor(a).topk(k, dim), torch.tensor(a).topk(k, dim)
    assert tuple(mine.values.shape) == tuple(want.values.shape)
    np.testing.assert_array_equal(mine.indices.numpy(), want.indices.numpy())


def test_sorting_errors_in_pytorchs_words():
    x = tg.ones(3, 4)
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 2\)"):
        x.sort(2)
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got -3\)"):
        tg.argsort(x, -3)
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 3\)"):
        x.topk(1, 3)
    for k in (5, -1):
        with pytest.raises(RuntimeError, match="^selected index k out of range$"):
            x.topk(k)
    with pytest.raises(RuntimeError, match="^selected index k out of range$"):
        tg.tensor(3.0).topk(2)
    with pytest.raises(RuntimeError, match="^topk does not support bool dtypes on CPU$"):
        tg.tensor([True, False]).topk(1)


# ----- tg.compile -----------------------------------------------------------------------
COMPILED = {
    "cumsum": lambda x: x.cumsum(1) * x,
    "cumprod": lambda x: tg.cumprod(x, 0).sum(1),
    "sort": lambda x: x.sort(1).values * 2,
    "sort_desc_0": lambda x: tg.sort(x, 0, descending=True)[0].exp(),
    "topk": lambda x: x.topk(2).values.sum(0),
    "topk_smallest": lambda x: x.topk(1, 0, largest=False).values,
}


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_tg_compile_replays_equal_eager_calls(name):
    """New values each call (new orders too): every compiled result equals the eager one,
    whether the call replayed or recorded again."""
    f = COMPILED[name]
    comp = tg.compile(f)
    rng = np.random.default_rng(3)
    for _ in range(5):
        data = rng.standard_normal((3, 5))
        xe, xc = _x(tg, data), _x(tg, data)
        ye, yc = f(xe), comp(xc)
        np.testing.assert_array_equal(yc.detach().numpy(), ye.detach().numpy())
        ye.sum().backward()
        yc.sum().backward()
        np.testing.assert_array_equal(xc.grad.numpy(), xe.grad.numpy())
    if name.startswith("cum"):              # scans have no order to guard: all replays
        st = comp.stats()
        assert st["replays"] >= 3 and st["guard_failures"] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_tg_compile_scans_of_tensors_without_grad_are_recomputed(dtype):
    """Inside a recording a scan of a tensor that needs no grad is recorded too (a value
    computed unrecorded would replay frozen)."""
    f = lambda x: (x.cumsum(0), tg.cumprod(x, -1))          # noqa: E731
    comp = tg.compile(f)
    rng = np.random.default_rng(6)
    for _ in range(4):
        data = rng.integers(-3, 4, (4, 3)).astype(dtype)
        for got, want in zip(comp(tg.tensor(data)), f(tg.tensor(data))):
            assert got.dtype is want.dtype
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert comp.stats()["replays"] == 3


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_tg_compile_replays_when_the_order_holds(name):
    """The same order with other values replays (no new recording); cumsum/cumprod replay
    for any values."""
    f = COMPILED[name]
    comp = tg.compile(f)
    base = np.array(DATA)
    for i in range(4):
        data = base * (1 + 0.01 * i) + 0.001 * i       # (orders unchanged)
        xe, xc = _x(tg, data), _x(tg, data)
        ye, yc = f(xe), comp(xc)
        np.testing.assert_array_equal(yc.detach().numpy(), ye.detach().numpy())
        ye.sum().backward()
        yc.sum().backward()
        np.testing.assert_array_equal(xc.grad.numpy(), xe.grad.numpy())
    st = comp.stats()
    assert st["replays"] >= 2 and st["guard_failures"] == 0


@pytest.mark.parametrize("kind", ["sort", "argsort", "topk", "topk_boundary", "ties", "nan"])
def test_tg_compile_records_again_when_the_order_changes(kind):
    """A replay whose values the recorded order does not sort fails its guard and records
    again: the result is the eager one, never the recorded order's."""
    f = {"sort": lambda x: x.sort().values * 1,
         "argsort": lambda x: x.argsort(descending=True) * 1,
         "topk": lambda x: x.topk(2).indices + 0,
         "topk_boundary": lambda x: x.topk(2).values * 1,
         "ties": lambda x: x.sort(stable=True).indices * 1,
         "nan": lambda x: x.sort(descending=True).values * 1}[kind]
    first, second = {
        "sort": ([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 3.0, 4.0]),
        "argsort": ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0]),
        "topk": ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0]),
        "topk_boundary": ([1.0, 2.0, 3.0, 4.0], [1.0, 3.5, 3.0, 4.0]),  # (top two's
        #                                                         order holds, not the cut)
        "ties": ([2.0, 1.0, 3.0, 4.0], [1.0, 1.0, 3.0, 4.0]),   # a tie: positions decide
        "nan": ([1.0, 2.0, 3.0, 4.0], [NAN, 2.0, 3.0, 4.0]),
    }[kind]
    comp = tg.compile(f)
    for data in (first, first, first, second, second, first):
        want = f(tg.tensor(data)).numpy()
        np.testing.assert_array_equal(comp(tg.tensor(data)).numpy(), want)
    st = comp.stats()
    assert st["guard_failures"] >= 1 and st["replays"] >= 1


def test_tg_compile_ties_broken_by_position_replay():
    """Values that tie where they tied when recorded keep the recorded order: a replay."""
    f = lambda x: x.sort().indices * 1                      # noqa: E731
    comp = tg.compile(f)
    for data in ([2.0, 1.0, 2.0, 0.0], [5.0, 3.0, 5.0, -1.0], [2.0, 1.0, 2.0, 0.0],
                 [9.0, 3.0, 9.0, 1.0]):
        np.testing.assert_array_equal(comp(tg.tensor(data)).numpy(), f(tg.tensor(data)).numpy())
    st = comp.stats()
    assert st["replays"] >= 1 and st["guard_failures"] == 0


def test_second_derivatives_through_the_composites_match_pytorch():
    """create_graph=True: the composites' primitives record their backward, so gradients of
    gradients come out as PyTorch's (zeros in cumprod included)."""
    torch = pytest.importorskip("torch")
    data = [[1.5, 0.0, -2.0], [0.5, 3.0, 0.25]]
    out = []
    for L in (tg, torch):
        x = L.tensor(data, dtype=L.float64, requires_grad=True)
        y = x.cumprod(1).sum() + x.sort(0).values.pow(3).sum() + \
            (x.cumsum(0) ** 2).sum() + x.topk(2).values.exp().sum()
        g, = L.autograd.grad(y, x, create_graph=True)
        h, = L.autograd.grad((g * g).sum(), x)
        out.append((g.detach().numpy(), h.numpy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-14)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-13)
