"""An operation that overflows, divides by zero or makes a NaN gives inf or NaN silently,
as PyTorch's: no NumPy RuntimeWarning, eagerly, in its backward (the jitted sweep and
NumPy's BLAS for large products) and in tg.compile replays."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.layout import BLAS_MIN

BIG = 1e300


def _mm(L, n, p, q):
    a = L.full((n, p), BIG, dtype=L.float64, requires_grad=True)
    b = L.full((p, q), BIG, dtype=L.float64, requires_grad=True)
    return [a, b], lambda a, b: a.mm(b).sum()


CASES = {
    "mm_small": lambda L: _mm(L, 2, 3, 2),
    "mm_blas": lambda L: _mm(L, 40, 40, 40),             # 64,000 multiply-adds >= BLAS_MIN
    "matmul_broadcast": lambda L: (
        [L.full((2, 3, 4), BIG, dtype=L.float64, requires_grad=True),
         L.full((4, 5), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: (a @ b).sum()),
    "bmm": lambda L: (
        [L.full((2, 3, 4), BIG, dtype=L.float64, requires_grad=True),
         L.full((2, 4, 5), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: a.bmm(b).sum()),
    "dot": lambda L: (
        [L.full((3,), BIG, dtype=L.float64, requires_grad=True),
         L.full((3,), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: a.dot(b)),
    "mv": lambda L: (
        [L.full((2, 3), BIG, dtype=L.float64, requires_grad=True),
         L.full((3,), BIG, dtype=L.float64, requires_grad=True)],
        lambda a, b: a.mv(b).sum()),
    "mul_exp_div": lambda L: (
        [L.tensor([BIG, 0.0, -1.0, 800.0], dtype=L.float64, requires_grad=True)],
        lambda x: (x * x + x.exp() + 1.0 / x + x.log() + x.sqrt()).sum()),
    "prod_norm": lambda L: (
        [L.tensor([BIG, BIG, 0.5, 0.0], dtype=L.float64, requires_grad=True)],
        lambda x: x.prod() + x.norm() + x.norm(3) + x[:3].prod()),
    "scalar_mul": lambda L: (
        [L.tensor(BIG, dtype=L.float64, requires_grad=True)],
        lambda x: x * x * 10.0),
}


def _run(L, name):
    leaves, fn = CASES[name](L)
    out = fn(*leaves)
    out.backward()
    return float(out.detach()), [np.asarray(t.grad.tolist(), dtype=np.float64) for t in leaves]


def _same(a, b):
    """The same infs and NaNs, finite values to rounding (BLAS sums in its own order)."""
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=0)
    return True


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_warning_and_the_inf_or_nan_pytorch_gives(name):
    assert 40 * 40 * 40 >= BLAS_MIN            # mm_blas goes through NumPy's BLAS backward
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a RuntimeWarning would raise here
        value, grads = _run(tg, name)
    assert not np.isfinite(value) or any(not np.isfinite(g).all() for g in grads)
    torch = pytest.importorskip("torch")
    t_value, t_grads = _run(torch, name)
    assert _same(value, t_value)
    for g, tg_ in zip(grads, t_grads):
        assert _same(g, tg_)


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_warning_in_tg_compile_replays(name):
    leaves, fn = CASES[name](tg)
    f = tg.compile(fn)
    eager = _run(tg, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):                      # a recording, then replays
            for t in leaves:
                t.grad = None
            out = f(*leaves)
            out.backward()
    assert _same(float(out.detach()), eager[0])
    for t, g in zip(leaves, eager[1]):
        assert _same(np.asarray(t.grad.tolist(), dtype=np.float64), g)


# ----- 0-d pow past the range: inf and its grad, as PyTorch's (it raised OverflowError) ---
POW_CASES = [(1e300, 1.7), (1e300, 2), (1e200, 2.0), (1e-300, -2.0), (3e38, 2.0), (2.0, 0.5)]


def _pow(L, v, e, dtype):
    x = L.tensor(v, dtype=dtype, requires_grad=True)
    y = x ** e
    y.backward()
    return float(y.detach()), float(x.grad)


@pytest.mark.parametrize("v,e", POW_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_0d_pow_overflows_to_inf(v, e, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _pow(tg, v, e, getattr(tg, dtype))
    with np.errstate(over="ignore"):        # the closed form, rounded to the dtype
        want = float(np.float64(v) ** np.float64(e))
        want = float(np.float32(want)) if dtype == "float32" else want
        dwant = float(np.float64(e) * np.float64(v) ** np.float64(e - 1))
        dwant = float(np.float32(dwant)) if dtype == "float32" else dwant
    assert got[0] == want
    np.testing.assert_allclose(got[1], dwant, rtol=1e-6 if dtype == "float32" else 1e-14)
    torch = pytest.importorskip("torch")
    assert got == _pow(torch, v, e, getattr(torch, dtype))


# ----- casts: past float32's range is inf, silently; a fill there is PyTorch's error ------
B = 1e300
SILENT_CASTS = {
    "tensor_number": lambda L: L.tensor(B, dtype=L.float32),
    "tensor_list": lambda L: L.tensor([B, 1.0], dtype=L.float32),
    "tensor_nested": lambda L: L.tensor([[B], [-B]], dtype=L.float32),
    "as_tensor": lambda L: L.as_tensor(np.array([B, 1.0]), dtype=L.float32),
    "to": lambda L: L.tensor([B, 1.0], dtype=L.float64).to(L.float32),
    "float": lambda L: L.tensor([B, 1.0], dtype=L.float64).float(),
    "float_0d": lambda L: L.tensor(B, dtype=L.float64).float(),
    "type": lambda L: L.tensor([B], dtype=L.float64).type(L.float32),
    "to_with_grad": lambda L: L.tensor([B], dtype=L.float64, requires_grad=True).to(L.float32),
    "mul_number_0d": lambda L: L.tensor(3e38, dtype=L.float32) * 10.0,
    "copy_": lambda L: L.zeros(2, dtype=L.float32).copy_(L.tensor([B, 1.0], dtype=L.float64)),
    "new_tensor": lambda L: L.zeros(1, dtype=L.float32).new_tensor([B]),
}
FILLS = {
    "full": lambda L: L.full((2,), B, dtype=L.float32),
    "setitem": lambda L: L.zeros(2, dtype=L.float32).__setitem__(0, -B),
    "fill_": lambda L: L.zeros(2, dtype=L.float32).fill_(B),
    "linspace": lambda L: L.linspace(0, B, 3, dtype=L.float32),
    "new_full": lambda L: L.zeros(1, dtype=L.float32).new_full((2,), B),
    "full_like": lambda L: L.full_like(L.zeros(2, dtype=L.float32), B),
}


@pytest.mark.parametrize("name", sorted(SILENT_CASTS))
def test_a_cast_past_float32s_range_is_inf_silently(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = SILENT_CASTS[name](tg).detach().tolist()
    assert np.isinf(np.asarray(got)).any()
    torch = pytest.importorskip("torch")
    assert got == SILENT_CASTS[name](torch).detach().tolist()


@pytest.mark.parametrize("name", sorted(FILLS))
def test_a_fill_past_float32s_range_is_pytorchs_error(name):
    words = "value cannot be converted to type float without overflow"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match=words):
            FILLS[name](tg)
    assert tg.full((2,), float("inf"), dtype=tg.float32).tolist() == [float("inf")] * 2
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match=words):
        FILLS[name](torch)


def test_as_tensor_shares_what_pytorchs_shares():
    a = np.arange(3.0)
    t = tg.as_tensor(a)
    a[0] = 7.0
    assert t.tolist() == [7.0, 1.0, 2.0] and t.dtype is tg.float64   # shared
    c = tg.as_tensor(a, dtype=tg.float32)
    a[1] = 9.0
    assert c.tolist() == [7.0, 1.0, 2.0] and c.dtype is tg.float32   # copied
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert tg.as_tensor(x) is x
    y = tg.as_tensor(x, dtype=tg.float64)
    assert y.grad_fn.name() == "ToCopyBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    assert tg.as_tensor([1, 2]).dtype is tg.int64 and tg.as_tensor(3.5).dtype is tg.float32
