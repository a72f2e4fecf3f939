"""What ``tg.<name>(input, ...)`` takes as ``input`` (functions.py), and integer inputs of
the float ops.

* A Python number first in add, sub, mul, div and pow, as PyTorch takes it: values, dtypes,
  gradients and node names (``tg.sub(2.0, t)`` is SubBackward0, ``tg.div(3.0, t)`` divides,
  where ``3.0 / t`` is ``reciprocal(t) * 3.0``).
* Anything else that is not a tensor: PyTorch's TypeError (it was an AttributeError).
* Integer and bool tensors in true division and in the float-only unary ops are cast to the
  default float first, as PyTorch's: ``2 / tensor([2])`` is 1.0 (it was 0, computed with an
  integer reciprocal), ``tensor([1]).div(2)`` is 0.5 (it was 0).
"""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.graph import class_name

F64, F32 = tg.float64, tg.float32
V = np.random.default_rng(0).uniform(0.2, 3.0, 9)


def _closed_form(name, x, v, alpha=1.0):
    """(value, d value / d v) of name(x, v) for a number x, in float64."""
    if name == "add":
        return x + alpha * v, np.full_like(v, alpha)
    if name == "sub":
        return x - alpha * v, np.full_like(v, -alpha)
    if name == "mul":
        return x * v, np.full_like(v, float(x))
    if name == "div":
        return x / v, -x / v ** 2
    return x ** v, x ** v * np.log(x)         # pow


CASES = [("add", {}), ("add", {"alpha": 2}), ("sub", {}), ("sub", {"alpha": 0.5}),
         ("mul", {}), ("div", {}), ("pow", {})]


@pytest.mark.parametrize("name, kw", CASES)
@pytest.mark.parametrize("x", [1.7, 3, np.float64(0.4)])
def test_a_number_first_against_closed_forms(name, kw, x):
    t = tg.tensor(V, dtype=F64, requires_grad=True)
    out = getattr(tg, name)(x, t, **kw)
    out.sum().backward()
    value, grad = _closed_form(name, float(x), V, kw.get("alpha", 1.0))
    assert out.dtype is F64
    np.testing.assert_allclose(out.detach().numpy(), value, rtol=1e-15)
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-14)
    h = 1e-6                                  # and finite differences of the op itself
    up = getattr(tg, name)(x, tg.tensor(V + h, dtype=F64), **kw).numpy()
    dn = getattr(tg, name)(x, tg.tensor(V - h, dtype=F64), **kw).numpy()
    np.testing.assert_allclose(t.grad.numpy(), (up - dn) / (2 * h), rtol=1e-7)


def test_number_first_keeps_the_number_out_of_the_graph():
    t = tg.tensor(V, dtype=F64, requires_grad=True)
    got = {name: [None if n is None else class_name(n)
                  for n, _ in getattr(tg, name)(2.0, t).grad_fn.next_functions]
           for name in ("add", "sub", "mul", "div", "pow")}
    assert got == {"add": [None, "AccumulateGrad"], "sub": [None, "AccumulateGrad"],
                   "mul": [None, "AccumulateGrad"], "div": [None, "AccumulateGrad"],
                   "pow": ["AccumulateGrad"]}
    assert class_name(tg.sub(2.0, t).grad_fn) == "SubBackward0"
    assert class_name((2.0 - t).grad_fn) == "RsubBackward1"      # the operator stays its own
    assert class_name(tg.pow(2.0, t).grad_fn) == "PowBackward2"


def test_number_first_divides_where_the_operator_multiplies_by_a_reciprocal():
    t = tg.tensor(V, dtype=F64)
    assert np.array_equal(tg.div(3.0, t).numpy(), 3.0 / V)
    assert np.array_equal((3.0 / t).numpy(), (1.0 / V) * 3.0)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name, kw", CASES)
def test_a_number_first_matches_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, dtype.name)
    for x in (1.7, 3, np.float64(0.4)):
        t = tg.tensor(V, dtype=dtype, requires_grad=True)
        u = torch.tensor(V, dtype=tdt, requires_grad=True)
        ours, theirs = getattr(tg, name)(x, t, **kw), getattr(torch, name)(x, u, **kw)
        ours.sum().backward()
        theirs.sum().backward()
        assert ours.dtype.name == str(theirs.dtype).split(".")[1]
        assert class_name(ours.grad_fn) == type(theirs.grad_fn).__name__
        if kw.get("alpha", 1) != 1 and name == "add":
            # PyTorch's CPU add fuses x + alpha * t (one rounding); ours rounds twice
            np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(),
                                       rtol=4e-7 if dtype is F32 else 1e-15)
        else:
            assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy())
        assert np.array_equal(t.grad.numpy(), u.grad.numpy())


@pytest.mark.parametrize("x, other, want", [
    (2, tg.tensor([1, 2]), "int64"), (2.0, tg.tensor([1, 2]), "float32"),
    (2, tg.tensor([1, 2], dtype=tg.int32), "int32"), (0.1, tg.tensor([1.0]), "float32"),
    (0.1, tg.tensor([1.0], dtype=F64), "float64"), (True, tg.tensor([1, 2]), "int64")])
def test_number_first_dtypes(x, other, want):
    assert tg.add(x, other).dtype.name == want
    assert tg.mul(x, other).dtype.name == want
    if x is not True:
        assert tg.sub(x, other).dtype.name == want
    assert tg.div(x, other).dtype.name == ("float32" if want.startswith("int") else want)


def test_number_first_in_a_compiled_function_equals_eager():
    f = tg.compile(lambda t: (tg.sub(2.0, t) * tg.div(3.0, t) + tg.pow(1.5, t)).sum())
    for k in range(4):
        vals = V * (1 + 0.1 * k)
        a = tg.tensor(vals, dtype=F64, requires_grad=True)
        b = tg.tensor(vals, dtype=F64, requires_grad=True)
        out_e = (tg.sub(2.0, a) * tg.div(3.0, a) + tg.pow(1.5, a)).sum()
        out_c = f(b)
        out_e.backward()
        out_c.backward()
        assert out_c.item() == out_e.item()
        assert np.array_equal(b.grad.numpy(), a.grad.numpy())
    assert f.stats()["replays"] >= 2


def _function_names():
    return sorted(n for n in dir(tg) if callable(getattr(tg, n)) and
                  str(getattr(getattr(tg, n), "__doc__", "")).startswith("tg."))


@pytest.mark.parametrize("bad", [2.0, None, [1.0, 2.0], np.zeros(2), "x"])
def test_an_input_that_is_not_a_tensor_is_pytorchs_type_error(bad):
    names = _function_names()
    assert len(names) > 80
    shown = {float: "float", type(None): "NoneType", list: "list", np.ndarray: "numpy.ndarray",
             str: "str"}[type(bad)]
    for name in names:
        if name in ("add", "sub", "mul", "div", "pow") and type(bad) is float:
            continue                        # a number is their first operand
        with pytest.raises(TypeError, match=rf"^{name}\(\): argument 'input' \(position 1\) "
                                            rf"must be Tensor, not {shown}$"):
            getattr(tg, name)(bad)
    with pytest.raises(TypeError, match=r"^add\(\): argument 'input' \(position 1\) must be "
                                        r"Tensor, not float$"):
        tg.add(2.0, 3.0)                    # a number first needs a tensor second
    with pytest.raises(TypeError, match="unexpected keyword argument 'rounding_mode'"):
        tg.div(2.0, tg.ones(2), rounding_mode="floor")


def test_the_type_errors_match_torch():
    torch = pytest.importorskip("torch")
    for name in ("exp", "atan2", "sum", "mm", "cumsum", "isnan"):
        for bad in (2.0, np.zeros(2), [1.0]):
            args = (bad, torch.ones(2)) if name in ("atan2", "mm") else (bad,)
            with pytest.raises(TypeError) as theirs:
                getattr(torch, name)(*args)
            with pytest.raises(TypeError) as ours:
                getattr(tg, name)(*((bad, tg.ones(2)) if len(args) == 2 else (bad,)))
            assert str(ours.value) == str(theirs.value).split("\n")[0]


INTS = np.arange(-40, 41)
NONZERO = INTS[INTS != 0]


@pytest.mark.parametrize("dtype", [tg.int64, tg.int32, tg.int16, tg.int8, tg.uint8, tg.bool])
def test_integer_true_division_is_the_float32_division_of_the_cast_values(dtype):
    a = np.abs(NONZERO) if dtype in (tg.uint8, tg.bool) else NONZERO
    a = a.astype(dtype.np)
    x = tg.tensor(a, dtype=dtype)
    f = a.astype(np.float32)
    cases = {"x / x": (x / x, f / f), "x.div(3)": (x.div(3), f / np.float32(3)),
             "7 / x": (7 / x, np.float32(1) / f * np.float32(7)),
             "tg.div(7, x)": (tg.div(7, x), np.float32(7) / f),
             "x / 2.5": (x / 2.5, f / np.float32(2.5)),
             "x.reciprocal()": (x.reciprocal(), np.float32(1) / f)}
    for label, (ours, want) in cases.items():
        assert ours.dtype is tg.float32, label
        assert np.array_equal(ours.numpy(), want), label


def test_integer_zero_d_division():
    two = tg.tensor(2)
    assert (1 / two).item() == 0.5 and two.div(4).item() == 0.5
    assert (two / two).dtype is tg.float32 and (two / two).item() == 1.0


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid", "reciprocal",
                                  "rsqrt", "erf", "atan", "expm1", "log1p"])
def test_float_ops_of_an_integer_tensor_are_those_of_its_float32_cast(name):
    ints = tg.tensor(NONZERO)
    floats = tg.tensor(NONZERO.astype(np.float32))
    with np.errstate(all="ignore"):
        ours, want = getattr(ints, name)(), getattr(floats, name)()
    assert ours.dtype is tg.float32
    assert np.array_equal(ours.numpy(), want.numpy(), equal_nan=True)


def test_integer_ops_against_torch():
    torch = pytest.importorskip("torch")
    x, u = tg.tensor(NONZERO), torch.tensor(NONZERO)
    pairs = [(x / x, u / u), (x.div(3), u.div(3)), (7 / x, 7 / u), (tg.div(7, x), torch.div(7, u)),
             (x.reciprocal(), u.reciprocal()), (x / 2.5, u / 2.5), (x.tanh(), u.tanh())]
    for ours, theirs in pairs:
        assert str(theirs.dtype) == "torch." + ours.dtype.name
        assert np.array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("fn", [
    lambda x, k: (x / k).sum(), lambda x, k: (1 / k).sum() + x.sum(),
    lambda x, k: (k.exp() * x).sum(), lambda x, k: (k / k * x).sum(),
    lambda x, k: (tg.div(3, k) * x.tanh()).sum(), lambda x, k: (k.sqrt() * x).sum()],
    ids=["x/k", "1/k", "exp(k)", "k/k", "div(3,k)", "sqrt(k)"])
def test_integer_casts_replay_as_eager_runs_them(fn):
    """The cast of an integer tensor is a record inside tg.compile: a replay at new integer
    values casts and computes as the eager call does, to the bit."""
    f = tg.compile(fn)
    rng = np.random.default_rng(3)
    for _ in range(4):
        k, x = rng.integers(1, 9, 5), rng.uniform(-1.0, 1.0, 5)
        a = tg.tensor(x, dtype=F64, requires_grad=True)
        b = tg.tensor(x, dtype=F64, requires_grad=True)
        out_e, out_c = fn(a, tg.tensor(k)), f(b, tg.tensor(k))
        out_e.backward()
        out_c.backward()
        assert out_c.item() == out_e.item()
        assert np.array_equal(b.grad.numpy(), a.grad.numpy())
    assert f.stats()["replays"] == 3
