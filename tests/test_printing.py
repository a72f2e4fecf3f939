"""format_tensor must print exactly what PyTorch's repr(tensor) prints."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[1]
if (_ROOT / "tapegrad" / "__init__.py").exists():
    from tapegrad.printing import format_tensor
else:  # the core package is not there yet: load the module by file path
    _spec = importlib.util.spec_from_file_location(
        "tapegrad_printing", _ROOT / "tapegrad" / "printing.py")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    format_tensor = _module.format_tensor


# --- without torch: outputs quoted from PyTorch's documentation ----------------

def test_walkthrough_matrix():
    x = np.ones((2, 2), dtype=np.float32) * np.float32(0.25)
    assert format_tensor(x) == ("tensor([[0.2500, 0.2500],\n"
                                "        [0.2500, 0.2500]])")


def test_walkthrough_scalar_with_grad_fn():
    x = np.array(28.83, dtype=np.float32)
    assert (format_tensor(x, suffixes=("grad_fn=<MeanBackward0>",))
            == "tensor(28.8300, grad_fn=<MeanBackward0>)")


def test_whole_numbers_and_empty():
    assert format_tensor(np.array([1.0, 2.0], dtype=np.float32)) == "tensor([1., 2.])"
    assert format_tensor(np.zeros(0, dtype=np.float32)) == "tensor([])"
    assert format_tensor(np.zeros((0, 3), dtype=np.float32)) == "tensor([], size=(0, 3))"


def test_default_dtype_name_prints_no_suffix():
    x = np.arange(3, dtype=np.int64)
    assert format_tensor(x, "int64") == format_tensor(x) == "tensor([0, 1, 2])"


# --- against real PyTorch ------------------------------------------------------

nan, inf = math.nan, math.inf


def _requires_grad(t):
    return t.requires_grad_()


# (id, builder taking the torch module and returning a tensor)
CASES = [
    # walkthrough
    ("quarter_ones", lambda T: T.ones(2, 2) * 0.25),
    ("mean_0d", lambda T: T.tensor([[10.0, 40.0], [30.0, 35.32]], requires_grad=True).mean()),
    # autograd suffixes
    ("requires_grad_1d", lambda T: _requires_grad(T.tensor([1.5, -2.0, 3.25]))),
    ("requires_grad_2d", lambda T: _requires_grad(T.randn(3, 4))),
    ("mul_backward", lambda T: T.randn(2, 3, requires_grad=True) * 2),
    ("sum_backward", lambda T: T.randn(4, requires_grad=True).sum()),
    ("add_backward_f64", lambda T: T.randn(3, dtype=T.float64, requires_grad=True) + 1),
    ("requires_grad_f64", lambda T: T.randn(2, 2, dtype=T.float64, requires_grad=True)),
    # suffix that does not fit on the last line goes to a new line
    ("suffix_wraps", lambda T: T.randn(9, requires_grad=True) * 3),
    ("suffix_wraps_f64", lambda T: T.randn(2, 8, dtype=T.float64, requires_grad=True)),
    ("suffix_wraps_two", lambda T: _requires_grad(T.randn(7, dtype=T.float64) * 100)),
    # fits after "tensor([...]" only when measured as "dtype=torch.float64"
    ("dtype_suffix_boundary", lambda T: T.tensor([1.5, 2.5, 3.5, 4.5, 5.5, 6.5], dtype=T.float64)),
    ("suffix_wraps_long_row", lambda T: T.randn(30, requires_grad=True).exp()),
    # dtypes
    ("float64", lambda T: T.tensor([1.5, 2.25, -3.125], dtype=T.float64)),
    ("float64_whole", lambda T: T.tensor([1.0, 2.0], dtype=T.float64)),
    ("int64", lambda T: T.arange(10)),
    ("int64_neg", lambda T: T.tensor([-5, 100, 3])),
    ("int64_2d", lambda T: T.arange(-6, 6).reshape(3, 4)),
    ("int64_big", lambda T: T.tensor([2**62, -7])),
    ("int32", lambda T: T.tensor([1, -2, 300], dtype=T.int32)),
    ("int32_2d", lambda T: T.arange(12, dtype=T.int32).reshape(3, 4)),
    ("bool", lambda T: T.tensor([True, False])),
    ("bool_all_true", lambda T: T.tensor([True, True])),
    ("bool_2d", lambda T: T.tensor([[True, False, True], [False, False, True]])),
    # scientific notation
    ("sci_big", lambda T: T.tensor([1e10, 1.0])),
    ("sci_small", lambda T: T.tensor([1e-5, 1.0])),
    ("sci_ratio", lambda T: T.tensor([1234.5, 0.5])),
    ("sci_ratio_edge", lambda T: T.tensor([1000.0, 1.0, 0.5])),
    ("sci_whole_huge", lambda T: T.tensor([2e8, 3e8])),
    ("sci_tiny_only", lambda T: T.tensor([1e-8, -2e-8])),
    ("sci_f64", lambda T: T.tensor([1e-300, 1e300], dtype=T.float64)),
    ("fixed_large", lambda T: T.tensor([12345.678, 99999.5])),
    ("whole_big_fixed", lambda T: T.tensor([12345678.0, 50000000.0])),
    # whole numbers, zeros, negative zero
    ("whole", lambda T: T.tensor([1.0, 2.0])),
    ("whole_neg", lambda T: T.tensor([-3.0, 100.0, 7.0])),
    ("zeros", lambda T: T.zeros(2, 3)),
    ("neg_zero", lambda T: T.tensor([-0.0, 1.0])),
    ("neg_zero_frac", lambda T: T.tensor([-0.0, 0.5])),
    ("neg_zero_only", lambda T: T.tensor([-0.0, 0.0])),
    ("neg_tiny_rounds", lambda T: T.tensor([-0.00001, 0.5])),
    ("neg_small_fixed", lambda T: T.tensor([-0.00004, 0.3])),
    # nan / inf
    ("nan_inf", lambda T: T.tensor([nan, 1.5, inf, -inf])),
    ("nan_only", lambda T: T.tensor([nan])),
    ("nan_whole", lambda T: T.tensor([nan, 2.0])),
    ("inf_whole", lambda T: T.tensor([-inf, 1.0, 10.0])),
    ("nan_sci", lambda T: T.tensor([nan, inf, 1e10, 1.5])),
    ("nonfinite_zero", lambda T: T.tensor([inf, 0.0, -inf])),
    ("nan_2d", lambda T: T.tensor([[nan, 1.25], [0.0, -inf]])),
    # negatives
    ("negative", lambda T: T.tensor([-1.5, 2.25, -0.001])),
    ("negative_2d", lambda T: -T.rand(3, 3)),
    # 0-d
    ("scalar_float", lambda T: T.tensor(0.1)),
    ("scalar_whole", lambda T: T.tensor(3.0)),
    ("scalar_neg_zero", lambda T: T.tensor(-0.0)),
    ("scalar_int", lambda T: T.tensor(-42)),
    ("scalar_bool", lambda T: T.tensor(False)),
    ("scalar_tiny", lambda T: T.tensor(1e-8)),
    ("scalar_nan", lambda T: T.tensor(nan)),
    ("scalar_f64", lambda T: T.tensor(2.5, dtype=T.float64)),
    ("scalar_f64_grad", lambda T: T.tensor(2.5, dtype=T.float64, requires_grad=True) * 3),
    # float32 values print from their float32 value
    ("float32_rounding", lambda T: T.tensor([1.00005, 2.00025, 0.33335, 0.20005])),
    ("float64_rounding", lambda T: T.tensor([1.00005, 2.00025, 0.33335], dtype=T.float64)),
    # empty
    ("empty", lambda T: T.tensor([])),
    ("empty_2d", lambda T: T.empty(0, 3)),
    ("empty_3d", lambda T: T.empty(2, 0, 4)),
    ("empty_int", lambda T: T.tensor([], dtype=T.int64)),
    ("empty_int32_2d", lambda T: T.empty(3, 0, dtype=T.int32)),
    ("empty_bool", lambda T: T.empty(0, 2, dtype=T.bool)),
    ("empty_f64", lambda T: T.empty(0, dtype=T.float64)),
    ("empty_grad", lambda T: T.empty(0, 3, dtype=T.float64, requires_grad=True)),
    # 3-d and more
    ("arange_3d", lambda T: T.arange(24).reshape(2, 3, 4)),
    ("randn_3d", lambda T: T.randn(2, 3, 4)),
    ("randn_4d", lambda T: T.randn(2, 2, 2, 2, dtype=T.float64)),
    ("ones_5d", lambda T: T.ones(1, 2, 1, 2, 1)),
    # summarization (numel > 1000)
    ("summarize_1d", lambda T: T.randn(2000)),
    ("summarize_arange", lambda T: T.arange(2000)),
    ("summarize_2d", lambda T: T.randn(40, 50)),
    ("summarize_whole_2d", lambda T: T.arange(2000.0).reshape(20, 100)),
    ("summarize_3d", lambda T: T.randn(10, 10, 20)),
    ("summarize_narrow", lambda T: T.randn(1001, 1, dtype=T.float64)),
    ("summarize_wide", lambda T: T.randn(2, 1000)),
    ("summarize_grad", lambda T: T.randn(50, 30, requires_grad=True) * 2),
    ("summarize_bool", lambda T: T.rand(30, 40) > 0.5),
    ("summarize_sci", lambda T: T.randn(1500) * 1e6),
    ("summarize_hidden_outlier", lambda T: T.cat([T.ones(500), T.full((500,), 1e9), T.ones(500) * 0.5])),
    # rows wrapping past 80 columns
    ("wrap_1d", lambda T: T.randn(30)),
    ("wrap_whole", lambda T: T.arange(100.0) * 3),
    ("wrap_sci", lambda T: T.randn(12) * 1e5),
    ("wrap_int", lambda T: T.arange(0, 300, 7)),
    ("wrap_2d", lambda T: T.randn(3, 20, dtype=T.float64)),
    ("wrap_3d", lambda T: T.randn(2, 2, 15)),
    ("wrap_bool", lambda T: T.arange(40) % 3 == 0),
]

# randn matrices of several shapes and scales, in float32 and float64
for _shape in [(1,), (1, 1), (3, 1), (1, 7), (5, 5), (8, 3), (4, 9), (10, 10), (3, 40), (2, 3, 5)]:
    for _dtype in ("float32", "float64"):
        for _scale in (1.0, 1e-3, 1e4):
            CASES.append((
                f"randn_{'x'.join(map(str, _shape))}_{_dtype}_{_scale:g}",
                lambda T, s=_shape, d=_dtype, k=_scale: T.randn(*s, dtype=getattr(T, d)) * k,
            ))


def _check_against_torch(torch, t):
    expected = repr(t).replace("torch.", "tapegrad.")
    default = t.dtype in (torch.float32, torch.int64, torch.bool)
    dtype_name = None if default else str(t.dtype).split(".")[-1]
    suffixes = ()
    if t.grad_fn is not None:
        suffixes = (f"grad_fn=<{type(t.grad_fn).__name__}>",)
    elif t.requires_grad:
        suffixes = ("requires_grad=True",)
    got = format_tensor(t.detach().numpy(), dtype_name, suffixes)
    assert got == expected, f"\n--- got ---\n{got}\n--- torch ---\n{expected}"


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch(build):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    _check_against_torch(torch, build(torch))


def test_matches_torch_random_fuzz():
    """Random shapes, dtypes, magnitudes and special values."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1234)
    for _ in range(400):
        ndim = int(rng.integers(0, 4))
        shape = tuple(int(n) for n in rng.integers(1, 9, size=ndim))
        if rng.random() < 0.1:
            shape = (int(rng.integers(1001, 1300)),)
        kind = rng.choice(["float32", "float64", "int64", "int32", "bool"])
        if kind == "bool":
            arr = rng.random(shape) < 0.5
        elif kind.startswith("int"):
            arr = rng.integers(-(10 ** int(rng.integers(1, 12))), 10 ** 6, size=shape)
        else:
            arr = rng.standard_normal(shape) * 10.0 ** int(rng.integers(-7, 10))
            if rng.random() < 0.3:
                arr = np.round(arr)
            if rng.random() < 0.2 and arr.size:
                flat = arr.reshape(-1)
                flat[rng.integers(0, flat.size)] = rng.choice([nan, inf, -inf, 0.0, -0.0])
        t = torch.from_numpy(np.asarray(arr).astype(kind))
        if kind.startswith("float") and rng.random() < 0.3:
            t = t.requires_grad_() * 1 if rng.random() < 0.5 else t.requires_grad_()
        _check_against_torch(torch, t)


def test_a_tensor_and_its_node_print_the_node_class_as_pytorch():
    """CopySlices: name() is torch::autograd::CopySlices, printed as its class, CopySlices."""
    torch = pytest.importorskip("torch")
    import tapegrad as tg
    got = []
    for L in (tg, torch):
        y = L.ones(3, dtype=L.float64, requires_grad=True) * 1
        y[0] = 2.0
        got.append((repr(y).replace(L.__name__ + ".", ""), repr(y.grad_fn).split(" object at")[0],
                    y.grad_fn.name()))
    assert got[0] == got[1]
