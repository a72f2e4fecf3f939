"""The composed methods (composite.py): values, gradients and errors against PyTorch and
closed forms, and tg.compile replays against eager calls."""
import math

import numpy as np
import pytest

import tapegrad as tg

X = [[1.0, -2.0, 3.0, float("nan")], [4.0, 0.0, -6.0, float("inf")], [-0.5, 7.0, 2.5, -1.0]]
FINITE = [[1.25, -2.0, 3.0, 0.25], [4.5, 0.75, -6.0, 1.5], [-0.5, 7.0, 2.5, -1.0]]   # off the masks' edges

# (name, function of (library, x)) with a differentiable float result
GRAD_CASES = {
    "masked_fill": lambda L, x: x.masked_fill(x > 1.0, 0.5),
    "masked_fill_tensor": lambda L, x: x.masked_fill(x < 0, L.tensor(3.0, dtype=L.float64)),
    "repeat": lambda L, x: x.repeat(2, 1, 3),
    "repeat_list": lambda L, x: x[0].repeat([2, 2]),
    "narrow": lambda L, x: x.narrow(1, 1, 2),
    "narrow_negative": lambda L, x: x.narrow(-1, -3, 2),
    "split": lambda L, x: L.cat([p * (i + 1) for i, p in enumerate(x.split(3, 1))], 1),
    "split_sizes": lambda L, x: L.cat([p * (i + 1) for i, p in enumerate(x.split([1, 2], 0))]),
    "chunk": lambda L, x: L.cat([p * (i + 1) for i, p in enumerate(x.chunk(2, 1))], 1),
    "tril": lambda L, x: x.tril(),
    "triu_1": lambda L, x: x.triu(1),
    "tril_neg": lambda L, x: L.tril(x, -1),
    "outer": lambda L, x: L.outer(x[0], x[1]),
    "type_as": lambda L, x: x.type_as(L.ones(1, dtype=L.float32)) * 3,
    "view_as": lambda L, x: x.view_as(L.ones(2, 6)),
}
BOOL_CASES = {
    "eq": lambda L, x: x.eq(1.0), "ne": lambda L, x: L.ne(x, x[0]),
    "lt": lambda L, x: x.lt(0), "le": lambda L, x: L.le(x, 0.0),
    "gt": lambda L, x: x.gt(x[2]), "ge": lambda L, x: L.ge(x, 4.0),
    "and": lambda L, x: (x > 0) & (x < 4), "or": lambda L, x: (x < -1) | (x > 3),
    "xor": lambda L, x: L.logical_xor(x > 0, x > 2), "not": lambda L, x: ~(x > 0),
    "logical_and": lambda L, x: L.logical_and(x > 0, x < 4),
    "logical_or": lambda L, x: (x > 0).logical_or(x < -1),
    "logical_not": lambda L, x: L.logical_not(x > 0),
    "and_python_bool": lambda L, x: True & (x > 0), "or_python_bool": lambda L, x: (x > 0) | False,
    "isnan": lambda L, x: x.isnan(), "isinf": lambda L, x: L.isinf(x),
    "isfinite": lambda L, x: L.isfinite(x),
    "isinf_int": lambda L, x: L.ones(3, dtype=L.int64).isinf(),
    "isfinite_int": lambda L, x: L.ones(3, dtype=L.int64).isfinite(),
    "all": lambda L, x: (x > -10).all(), "all_dim": lambda L, x: x.all(1),
    "any": lambda L, x: (x > 6).any(), "any_dim_keep": lambda L, x: L.any(x > 3, 0, True),
    "any_float": lambda L, x: L.zeros(3).any(),
}


def _x(L, data=X):
    return L.tensor(data, dtype=L.float64, requires_grad=True)


def _run(L, f, data):
    x = _x(L, data)
    y = f(L, x)
    (y * L.arange(y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    return y.detach().numpy().copy(), x.grad.numpy().copy()


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_values_and_grads_match_pytorch(name):
    torch = pytest.importorskip("torch")
    y, g = _run(tg, GRAD_CASES[name], FINITE)
    ty, tgrad = _run(torch, GRAD_CASES[name], FINITE)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(g, tgrad)


@pytest.mark.parametrize("name", sorted(set(GRAD_CASES) - {"type_as"}))   # (float32: the
def test_grads_match_finite_differences(name):                # PyTorch test covers it)
    f = GRAD_CASES[name]
    base = np.array(FINITE)
    _, g = _run(tg, f, FINITE)
    num = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        up, dn = base.copy(), base.copy()
        up[i] += 1e-6
        dn[i] -= 1e-6
        w = lambda a: (lambda y: float((y * tg.arange(y.numel(), dtype=y.dtype)  # noqa: E731
                                        .reshape(y.shape)).sum()))(f(tg, _x(tg, a.tolist())))
        num[i] = (w(up) - w(dn)) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BOOL_CASES))
def test_bool_results_match_pytorch(name):
    got = BOOL_CASES[name](tg, _x(tg))
    assert got.dtype is tg.bool
    torch = pytest.importorskip("torch")
    want = BOOL_CASES[name](torch, _x(torch))
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_closed_forms_without_pytorch():
    x = _x(tg)
    assert x.isnan().numpy().tolist() == [[math.isnan(v) for v in r] for r in X]
    assert x.isinf().numpy().tolist() == [[math.isinf(v) for v in r] for r in X]
    assert tg.isfinite(x).numpy().tolist() == [[math.isfinite(v) for v in r] for r in X]
    a = np.array(FINITE)
    t = _x(tg, FINITE)
    np.testing.assert_array_equal(t.repeat(2, 1, 3).detach().numpy(), np.tile(a, (2, 1, 3)))
    np.testing.assert_array_equal(t.tril(1).detach().numpy(), np.tril(a, 1))
    np.testing.assert_array_equal(t.triu(-1).detach().numpy(), np.triu(a, -1))
    np.testing.assert_array_equal(tg.outer(t[0], t[1]).detach().numpy(), np.outer(a[0], a[1]))
    assert [p.shape for p in t.chunk(3, 1)] == [(3, 2), (3, 2)]
    assert [p.shape for p in tg.ones(6).chunk(4)] == [(2,), (2,), (2,)]
    assert t.split(3, 1)[0]._v.base is not None           # views, not copies
    assert t.t().is_contiguous() is False and t.is_contiguous() is True


ERRORS = [
    (lambda L: L.ones(3).masked_fill(L.tensor([1, 0, 1]), 2.0),
     "masked_fill_ only supports boolean masks, but got mask with dtype long int"),
    (lambda L: L.ones(3).masked_fill(L.tensor([True, False, True]), L.tensor([1.0, 2.0])),
     "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with 1 "
     "dimension(s)."),
    (lambda L: L.ones(2, 3).repeat(2),
     "Number of dimensions of repeat dims can not be smaller than number of dimensions of "
     "tensor"),
    (lambda L: L.ones(3).narrow(0, 2, 2), "start (2) + length (2) exceeds dimension size (3)."),
    (lambda L: L.ones(3).split(0),
     "split_size can only be 0 if dimension size is 0, but got dimension size of 3"),
    (lambda L: L.ones(3).split(-1),
     "split expects split_size be non-negative, but got split_size=-1"),
    (lambda L: L.ones(3).split([1, 1]),
     "split_with_sizes expects split_sizes to sum exactly to 3 (input tensor's size at "
     "dimension 0), but got split_sizes=[1, 1]"),
    (lambda L: L.ones(3).chunk(0), "chunk expects `chunks` to be greater than 0, got: 0"),
    (lambda L: L.ones(3).tril(), "tril: input tensor must have at least 2 dimensions"),
    (lambda L: L.outer(L.ones(2, 2), L.ones(3)), "outer: Expected 1-D argument self, but got 2-D"),
    (lambda L: L.outer(L.ones(3), L.ones(2, 2)), "outer: Expected 1-D argument vec2, but got 2-D"),
]


@pytest.mark.parametrize("make,words", ERRORS)
def test_errors_in_pytorchs_words(make, words):
    with pytest.raises(RuntimeError) as info:
        make(tg)
    assert str(info.value) == words
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as info:
        make(torch)
    assert str(info.value) == words


def test_bitwise_ops_on_integers_say_they_are_not_supported():
    with pytest.raises(NotImplementedError, match="bool tensors only"):
        tg.ones(3, dtype=tg.int64) & tg.ones(3, dtype=tg.int64)


def test_inference_mode_records_nothing():
    x = _x(tg, FINITE)
    with tg.inference_mode():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None


@pytest.mark.parametrize("name", ["masked_fill", "repeat", "split", "tril", "outer"])
def test_tg_compile_replays_equal_eager_calls(name):
    f = GRAD_CASES[name]
    comp = tg.compile(lambda x: f(tg, x))
    rng = np.random.default_rng(3)
    for _ in range(3):                         # a recording, then replays
        data = rng.standard_normal((3, 4)).tolist()
        xe, xc = _x(tg, data), _x(tg, data)
        ye, yc = f(tg, xe), comp(xc)
        np.testing.assert_array_equal(yc.detach().numpy(), ye.detach().numpy())
        ye.sum().backward()
        yc.sum().backward()
        np.testing.assert_array_equal(xc.grad.numpy(), xe.grad.numpy())
    assert comp.counts["replays"] >= 2


def test_tg_compile_replays_bool_composites():
    comp = tg.compile(lambda x: ((x > 0) & (x < 1)).logical_or(x.isnan()).any(0))
    rng = np.random.default_rng(4)
    for _ in range(3):
        data = rng.standard_normal((3, 4))
        data[0, 1] = np.nan
        want = (((data > 0) & (data < 1)) | np.isnan(data)).any(0)
        np.testing.assert_array_equal(comp(_x(tg, data.tolist())).numpy(), want)
    assert comp.counts["replays"] >= 2


# ----- randint, randperm ------------------------------------------------------------------
def test_randint_and_randperm_draw_what_they_say():
    tg.manual_seed(5)
    a = tg.randint(2, 5, (2000,)).numpy()
    assert a.dtype == np.int64 and a.min() == 2 and a.max() == 4 and len(set(a)) == 3
    assert tg.randint(3, (2, 3)).shape == (2, 3) and tg.randint(10, ()).shape == ()
    assert tg.randint(-2, 3, size=(4,), dtype=tg.float32).dtype is tg.float32
    p = tg.randperm(50)
    assert p.dtype is tg.int64 and sorted(p.tolist()) == list(range(50))
    tg.manual_seed(5)
    assert (tg.randint(2, 5, (2000,)).numpy() == a).all()      # the seed replays the draws


RANDOM_ERRORS = [
    (lambda L: L.randint(0, 0, (3,)), RuntimeError,
     "random_ expects 'from' to be less than 'to', but got from=0 >= to=0"),
    (lambda L: L.randint(3, 4), TypeError,
     "randint(): argument 'size' (position 2) must be tuple of ints, not int"),
    (lambda L: L.randperm(-1), RuntimeError,
     "Trying to create tensor with negative dimension -1: [-1]"),
    (lambda L: L.randint(3, (2,), requires_grad=True), RuntimeError,
     "Only Tensors of floating point and complex dtype can require gradients"),
]


@pytest.mark.parametrize("make,kind,words", RANDOM_ERRORS)
def test_random_errors_in_pytorchs_words(make, kind, words):
    with pytest.raises(kind) as info:
        make(tg)
    assert str(info.value) == words
    torch = pytest.importorskip("torch")
    with pytest.raises(kind) as info:
        make(torch)
    assert str(info.value) == words
