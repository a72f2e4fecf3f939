"""Unrecorded functions of values (counting.py: searchsorted bucketize histc bincount isin
signbit isneginf isposinf tril_indices triu_indices) and three composed ones (rot90,
aminmax, std_mean/var_mean).

The unrecorded ones are checked against NumPy's own functions (or the bin formula
written out) and, value for value and dtype for dtype, against PyTorch where it is
installed, with its errors; the composed ones' values and gradients against PyTorch and
closed forms.
"""
import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(21)
SEQ = np.sort(RNG.integers(0, 20, 12)).astype(np.float64)      # with repeated values
VALS = np.concatenate([SEQ[::3], RNG.uniform(-2, 22, 11)])      # hits and misses


def _torch():
    return pytest.importorskip("torch")


def _same(ours, theirs):
    """Equal values, shapes and dtypes (by name) of a tapegrad and a torch tensor."""
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert np.array_equal(ours.numpy(), theirs.numpy(), equal_nan=True)


# ----- searchsorted, bucketize --------------------------------------------------------
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_is_numpys_on_1d_and_batched_sequences(right):
    side = "right" if right else "left"
    got = tg.searchsorted(tg.tensor(SEQ), tg.tensor(VALS), right=right)
    assert got.dtype == tg.int64
    assert np.array_equal(got.numpy(), np.searchsorted(SEQ, VALS, side))
    seq2 = np.sort(RNG.normal(size=(3, 5)), 1)
    vals2 = RNG.normal(size=(3, 4))
    got2 = tg.searchsorted(tg.tensor(seq2), tg.tensor(vals2), side=side, out_int32=True)
    assert got2.dtype == tg.int32
    want = np.stack([np.searchsorted(s, v, side) for s, v in zip(seq2, vals2)])
    assert np.array_equal(got2.numpy(), want)


def test_searchsorted_with_a_sorter_and_a_number():
    raw = np.array([5.0, 1.0, 3.0])
    order = np.argsort(raw)
    got = tg.searchsorted(tg.tensor(raw), tg.tensor([2.0, 5.0]), sorter=tg.tensor(order))
    assert got.tolist() == [1, 2]
    assert tg.searchsorted(tg.tensor([1.0, 3.0]), 2.0).tolist() == 1     # a 0-d result


@pytest.mark.parametrize("right", [False, True])
def test_bucketize_is_searchsorted_of_the_boundaries(right):
    got = tg.bucketize(tg.tensor(VALS.reshape(3, 5)), tg.tensor(SEQ), right=right)
    # boundaries[i-1] < x <= boundaries[i] (right: boundaries[i-1] <= x < boundaries[i])
    want = np.searchsorted(SEQ, VALS, "right" if right else "left").reshape(3, 5)
    assert np.array_equal(got.numpy(), want)


def test_searchsorted_and_bucketize_against_pytorch():
    torch = _torch()
    for right in (False, True):
        _same(tg.searchsorted(tg.tensor(SEQ), tg.tensor(VALS), right=right),
              torch.searchsorted(torch.tensor(SEQ), torch.tensor(VALS), right=right))
        _same(tg.bucketize(tg.tensor(VALS), tg.tensor(SEQ), right=right, out_int32=True),
              torch.bucketize(torch.tensor(VALS), torch.tensor(SEQ), right=right,
                              out_int32=True))
    _same(tg.searchsorted(tg.tensor([1, 3, 5, 7]), 4),
          torch.searchsorted(torch.tensor([1, 3, 5, 7]), 4))


# ----- histc, bincount ----------------------------------------------------------------
def _histc_by_hand(v, bins, lo, hi):
    """The bin of x in [lo, hi]: the integer part of (x - lo) * bins / (hi - lo) computed
    in v's dtype (as PyTorch's kernel), hi in the last one; elements outside (and NaN)
    left out."""
    f = v.dtype.type
    lo, hi = f(lo), f(hi)
    counts = np.zeros(bins)
    for x in v:
        if lo <= x <= hi:
            counts[min(int((x - lo) * f(bins) / (hi - lo)), bins - 1)] += 1
    return counts


@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
def test_histc_counts_by_the_bin_formula(dtype):
    v = np.concatenate([RNG.uniform(-1, 5, 200), [0.0, 4.0, 2.0, -0.5, 4.5, np.nan]])
    x = tg.tensor(v, dtype=dtype)
    vv = x.numpy()                              # the values as stored (float32 rounded)
    got = x.histc(bins=8, min=0, max=4)
    assert got.dtype == dtype
    assert np.array_equal(got.numpy(), _histc_by_hand(vv, 8, 0.0, 4.0))
    finite = vv[~np.isnan(vv)]
    assert np.array_equal(tg.histc(tg.tensor(finite, dtype=dtype), bins=5).numpy(),
                          _histc_by_hand(finite, 5, finite.min(), finite.max()))
    assert tg.histc(tg.tensor([1.0, 1.0, 1.0]), bins=3).tolist() == [0.0, 3.0, 0.0]


def test_histc_against_pytorch():
    torch = _torch()
    for dtype, tdt in ((tg.float32, torch.float32), (tg.float64, torch.float64)):
        v = np.concatenate([RNG.uniform(-1, 5, 500), np.linspace(0, 4, 41)])
        for args in ((10, 0, 4), (7, -1, 5), (3, 0, 0), (100, 1.5, 2.5)):
            _same(tg.histc(tg.tensor(v, dtype=dtype), *args),
                  torch.histc(torch.tensor(v, dtype=tdt), *args))


def test_bincount_counts_and_sums_weights():
    v = RNG.integers(0, 6, 50)
    w = RNG.normal(size=50)
    assert np.array_equal(tg.bincount(tg.tensor(v)).numpy(), np.bincount(v))
    got = tg.tensor(v).bincount(tg.tensor(w), minlength=9)
    assert got.dtype == tg.float64 and got.shape == (9,)
    assert np.allclose(got.numpy(), np.bincount(v, w, 9), rtol=1e-12, atol=1e-12)
    assert tg.bincount(tg.tensor(v), tg.tensor(w, dtype=tg.float32)).dtype == tg.float32
    assert tg.bincount(tg.tensor([], dtype=tg.int64)).shape == (0,)


def test_bincount_against_pytorch():
    torch = _torch()
    v = RNG.integers(0, 6, 50)
    _same(tg.bincount(tg.tensor(v), minlength=8), torch.bincount(torch.tensor(v), minlength=8))
    for w in (RNG.normal(size=50), RNG.normal(size=50).astype(np.float32),
              RNG.integers(0, 3, 50)):
        ours = tg.bincount(tg.tensor(v), tg.tensor(w))
        theirs = torch.bincount(torch.tensor(v), torch.tensor(w))
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        assert np.allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# ----- boolean tests, triangle indices ------------------------------------------------
def test_boolean_tests_against_numpy():
    v = np.array([-0.0, 0.0, -1.5, np.inf, -np.inf, np.nan, 2.0])
    x = tg.tensor(v)
    assert np.array_equal(x.signbit().numpy(), np.signbit(v))
    assert np.array_equal(tg.isneginf(x).numpy(), np.isneginf(v))
    assert np.array_equal(x.isposinf().numpy(), np.isposinf(v))
    assert tg.signbit(x).dtype == tg.bool
    got = tg.isin(tg.tensor([1, 2, 3, 4]), tg.tensor([2, 4, 9]))
    assert got.tolist() == [False, True, False, True]
    assert tg.isin(tg.tensor([1, 2]), 2, invert=True).tolist() == [True, False]


@pytest.mark.parametrize("row, col, offset", [(3, 3, 0), (3, 5, 1), (4, 2, -1), (0, 3, 0),
                                              (3, 3, 7)])
def test_triangle_indices_are_numpys_row_by_row(row, col, offset):
    low = tg.tril_indices(row, col, offset)
    up = tg.triu_indices(row, col, offset, dtype=tg.int32)
    assert low.dtype == tg.int64 and up.dtype == tg.int32
    assert np.array_equal(low.numpy(), np.stack(np.tril_indices(row, offset, col)))
    assert np.array_equal(up.numpy(), np.stack(np.triu_indices(row, offset, col)))
    torch = pytest.importorskip("torch")
    _same(low, torch.tril_indices(row, col, offset))
    _same(up, torch.triu_indices(row, col, offset, dtype=torch.int32))


ERRORS = [
    ("histc-int", lambda L: L.histc(L.tensor([1, 2]))),
    ("histc-bins", lambda L: L.histc(L.tensor([1.0, 2.0]), bins=0)),
    ("histc-min-max", lambda L: L.histc(L.tensor([1.0, 2.0]), min=3, max=1)),
    ("histc-inf", lambda L: L.histc(L.tensor([1.0, float("inf")]))),
    ("bincount-negative", lambda L: L.bincount(L.tensor([-1, 2]))),
    ("bincount-2d", lambda L: L.bincount(L.tensor([[1, 2]]))),
    ("bincount-float", lambda L: L.bincount(L.tensor([1.0, 2.0]))),
    ("bincount-weights", lambda L: L.bincount(L.tensor([1, 2]), L.tensor([1.0]))),
    ("bincount-minlength", lambda L: L.bincount(L.tensor([1, 2]), minlength=-1)),
    ("bucketize-2d", lambda L: L.bucketize(L.tensor([1.0]), L.tensor([[1.0]]))),
    ("searchsorted-shapes", lambda L: L.searchsorted(L.tensor([[1.0, 2], [3, 4]]),
                                                     L.tensor([1.0, 2, 3]))),
    ("searchsorted-side", lambda L: L.searchsorted(L.tensor([1, 2]), L.tensor([1]),
                                                   side="middle")),
    ("searchsorted-opposites", lambda L: L.searchsorted(L.tensor([1, 2]), L.tensor([1]),
                                                        side="left", right=True)),
    ("tril_indices-float", lambda L: L.tril_indices(3, 3, dtype=L.float32)),
    ("rot90-dims", lambda L: L.ones(2, 3).rot90(1, [0])),
    ("rot90-1d", lambda L: L.ones(3).rot90()),
    ("rot90-same", lambda L: L.ones(2, 3).rot90(1, [0, 0])),
    ("rot90-range", lambda L: L.ones(2, 3).rot90(1, [0, 2])),
]


@pytest.mark.parametrize("name, call", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_pytorchs(name, call):
    with pytest.raises(Exception) as ours:
        call(tg)
    torch = _torch()
    with pytest.raises(Exception) as theirs:
        call(torch)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


# ----- rot90, aminmax, std_mean, var_mean (recorded) ----------------------------------
A = RNG.normal(size=(3, 4, 2))


@pytest.mark.parametrize("k, dims", [(1, (0, 1)), (2, (0, 1)), (3, (0, 1)), (-1, (1, 2)),
                                     (5, (2, 0)), (0, (0, 1))])
def test_rot90_is_numpys_and_its_grad_the_inverse_rotation(k, dims):
    x = tg.tensor(A, requires_grad=True)
    y = x.rot90(k, dims)
    assert np.array_equal(y.detach().numpy(), np.rot90(A, k, dims))
    probe = RNG.normal(size=tuple(y.shape))
    (y * tg.tensor(probe)).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.rot90(probe, -k, dims))   # a permutation's
    assert not np.shares_memory(y.detach().numpy(), x.detach().numpy())   # a new tensor


@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), (-1, True)])
def test_aminmax_equals_amin_and_amax_with_their_grads(dim, keepdim):
    x = tg.tensor(A, requires_grad=True)
    r = x.aminmax(dim=dim, keepdim=keepdim) if dim is not None else tg.aminmax(x)
    assert r._fields == ("min", "max") and r[0] is r.min
    axis = None if dim is None else dim
    assert np.array_equal(r.min.detach().numpy(), A.min(axis=axis, keepdims=keepdim))
    assert np.array_equal(r.max.detach().numpy(), A.max(axis=axis, keepdims=keepdim))
    (r.min.sum() + 2 * r.max.sum()).backward()
    want = (A == A.min(axis=axis, keepdims=True)) + 2.0 * (A == A.max(axis=axis, keepdims=True))
    assert np.array_equal(x.grad.numpy(), want)       # (no ties in random data)


@pytest.mark.parametrize("fn, np_fn", [("std_mean", np.std), ("var_mean", np.var)])
@pytest.mark.parametrize("dim, correction", [(None, 1), (1, 0), ((0, 2), 1)])
def test_std_mean_and_var_mean_against_pytorch(fn, np_fn, dim, correction):
    torch = _torch()
    outs = []
    for L in (tg, torch):
        x = L.tensor(A, requires_grad=True)
        s, m = getattr(L, fn)(x, dim, correction=correction)
        (s.sum() + 3 * m.sum()).backward()
        outs.append((s.detach().numpy(), m.detach().numpy(), x.grad.numpy()))
    for ours, theirs in zip(outs[0], outs[1]):
        assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    axis = dim if dim is None else dim
    assert np.allclose(outs[0][0], np_fn(A, axis=axis, ddof=correction), rtol=1e-12)
    assert np.allclose(outs[0][1], A.mean(axis=axis), rtol=1e-12)


def test_rot90_and_aminmax_against_pytorch():
    torch = _torch()
    res = []
    for L in (tg, torch):
        x = L.tensor(A, requires_grad=True)
        mm = x.aminmax(dim=0)
        y = x.rot90(1, [2, 0]) * L.tensor(np.arange(24.0).reshape(2, 4, 3))
        (y.sum() + mm.max.sum() - mm.min.sum()).backward()
        res.append((y.detach().numpy(), x.grad.numpy()))
    assert np.array_equal(res[0][0], res[1][0])
    assert np.allclose(res[0][1], res[1][1], rtol=1e-12, atol=0)


def test_inside_tg_compile_the_values_read_are_a_guard():
    def f(x, seq):
        return (x * tg.bucketize(x, seq).to(tg.float64)).sum()
    cf = tg.compile(f)
    seq = tg.tensor([0.0, 1.0, 2.0])
    for v in ([0.5, 1.5], [1.5, 2.5], [-1.0, 0.5], [0.5, 1.5]):
        x1 = tg.tensor(v, requires_grad=True)
        x2 = tg.tensor(v, requires_grad=True)
        y1, y2 = f(x1, seq), cf(x2, seq)
        y1.backward()
        y2.backward()
        assert y1.item() == y2.item()
        assert np.array_equal(x1.grad.numpy(), x2.grad.numpy())


# ----- integer powers ------------------------------------------------------------------
def _int_pow_by_hand(b, e):
    """PyTorch's integer pow: repeated int64 products (wrapping), and for e < 0: 1 for a
    base of 1, +-1 for -1, else 0."""
    if e < 0:
        return 1 if b == 1 else (1 if e % 2 == 0 else -1) if b == -1 else 0
    r = np.int64(1)
    with np.errstate(over="ignore"):
        for _ in range(e):
            r = np.int64(r * np.int64(b))
    return int(r)


INT_POWERS = [(2, [0, 1, 2, -1, 62, 63, 70]), (-1, [-3, -2, 5, 0]), (1, [-5, 9]),
              (0, [-1, 0, 2]), (3, [40, -2]), (-7, [3, 23])]


@pytest.mark.parametrize("base, exps", INT_POWERS)
def test_a_python_int_to_an_integer_tensor_is_an_integer_power(base, exps):
    got = base ** tg.tensor(exps)
    assert got.dtype == tg.int64
    assert got.tolist() == [_int_pow_by_hand(base, e) for e in exps]
    both = tg.tensor([base] * len(exps)) ** tg.tensor(exps)        # tensor ** tensor
    assert both.tolist() == got.tolist()
    assert tg.pow(base, tg.tensor(exps)).tolist() == got.tolist()


def test_integer_powers_against_pytorch():
    torch = _torch()
    for base, exps in INT_POWERS:
        _same(base ** tg.tensor(exps), base ** torch.tensor(exps))
        _same(tg.tensor([base] * len(exps)) ** tg.tensor(exps),
              torch.tensor([base] * len(exps)) ** torch.tensor(exps))
    _same(2 ** tg.tensor([3], dtype=tg.int32), 2 ** torch.tensor([3], dtype=torch.int32))
    _same(tg.tensor([2], dtype=tg.int32) ** tg.tensor([3]),
          torch.tensor([2], dtype=torch.int32) ** torch.tensor([3]))
    _same(True ** tg.tensor([2]), True ** torch.tensor([2]))
    _same(3 ** tg.tensor([True, False]), 3 ** torch.tensor([True, False]))
    _same(2.0 ** tg.tensor([3]), 2.0 ** torch.tensor([3]))         # a float base: float32


def test_integer_powers_inside_tg_compile_follow_the_values():
    def f(x, k):
        return (x * (2 ** k).to(tg.float64)).sum()
    cf = tg.compile(f)
    for ks in ([1, 2], [3, -1], [1, 2], [10, 0]):
        outs = []
        for fn in (f, cf):
            x = tg.ones(2, dtype=tg.float64, requires_grad=True)
            fn(x, tg.tensor(ks)).backward()
            outs.append(x.grad.tolist())
        assert outs[0] == outs[1] == [float(_int_pow_by_hand(2, k)) for k in ks]
