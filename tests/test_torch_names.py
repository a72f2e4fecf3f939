"""The torch names tutorials use: ranges and factories, devices, the legacy constructors,
``Variable``, ``argmax``/``argmin``, closeness, ``tg.linalg`` norms, ``format(t, spec)``.

Each case is written once against a module ``L`` (``tapegrad`` or ``torch``) and run with
both: the same values (float64 to 1e-12, float32 to one rounding), dtypes and shapes, and
the same errors in PyTorch's words (tapegrad writes ``tapegrad.`` for ``torch.`` in type
names).
"""
import math
import re

import numpy as np
import pytest

import tapegrad as tg

from conftest import fd_grad, still_works

pytestmark = pytest.mark.usefixtures("isolated")


def _torch():
    return pytest.importorskip("torch")


def _plain(r):
    """A result as comparable Python data: tensors as (dtype name, shape, float64 array)."""
    if isinstance(r, (tuple, list)):
        return [_plain(x) for x in r]
    if hasattr(r, "detach"):
        return (str(r.dtype).split(".")[-1], tuple(r.shape),
                np.array(r.detach().numpy(), np.float64))
    return r


def _assert_same(a, b, tol):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y, tol)
    elif isinstance(a, tuple) and len(a) == 3 and isinstance(a[2], np.ndarray):
        assert a[:2] == b[:2], (a, b)
        scale = np.finfo(np.float32).eps * 2 if a[0] == "float32" else tol
        np.testing.assert_allclose(a[2], b[2], rtol=scale, atol=scale)
    else:
        assert a == b


def same(case, tol=1e-12):
    """case(L) gives the same result with tapegrad and PyTorch."""
    torch = _torch()
    mine, theirs = _plain(case(tg)), _plain(case(torch))
    _assert_same(mine, theirs, tol)
    return mine


def _message(L, case):
    try:
        case(L)
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None, None


def same_error(case, whole=True):
    """case(L) raises the same exception, with the same words, in both libraries."""
    torch = _torch()
    ttyp, tmsg = _message(torch, case)
    assert ttyp is not None, "PyTorch raised nothing"
    gtyp, gmsg = _message(tg, case)
    assert gtyp is ttyp, (gtyp, gmsg, ttyp, tmsg)
    want = re.sub(r"\btorch\.(?=[A-Z])", "tapegrad.", tmsg)
    if whole:
        assert gmsg == want
    else:
        assert gmsg.split("\n")[0].startswith(want.split("\n")[0][:40]), (gmsg, want)
    still_works()


# ----- ranges -----------------------------------------------------------------------------
LINSPACE = [(0, 1, 5), (-math.pi, math.pi, 7), (0, 1, 1000), (-5, 3.3, 101), (2, -7.1, 33),
            (1, 0, 5), (0, 10, 1), (0, 10, 0), (3, 3, 4)]


@pytest.mark.parametrize("start,end,steps", LINSPACE)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_linspace(start, end, steps, dtype):
    r = same(lambda L: L.linspace(start, end, steps, dtype=getattr(L, dtype)))
    assert r[1] == (steps,)


def test_linspace_defaults_tensor_bounds_and_requires_grad():
    same(lambda L: L.linspace(0, 1, 5))
    same(lambda L: L.linspace(L.tensor(0.5), 2, 4))
    r = tg.linspace(0, 1, 3, requires_grad=True)
    assert r.requires_grad and r.is_leaf


@pytest.mark.parametrize("case", [
    lambda L: L.linspace(0, 1, -1),
    lambda L: L.eye(-1),
    lambda L: L.eye(2, -1),
], ids=["linspace_negative_steps", "eye_negative_n", "eye_negative_m"])
def test_range_errors(case):
    same_error(case)


def test_linspace_steps_must_be_an_int():
    with pytest.raises(TypeError, match="linspace\\(\\)"):
        tg.linspace(0, 1, 2.5)
    torch = _torch()
    with pytest.raises(TypeError, match="linspace\\(\\)"):
        torch.linspace(0, 1, 2.5)


@pytest.mark.parametrize("args", [(0, 2, 3), (0, 1, 4), (-1, 1, 5), (1, 3, 3)])
@pytest.mark.parametrize("kw", [{}, {"base": 2}, {"base": 0.5}, {"dtype": "float64"},
                                {"dtype": "int64"}])
def test_logspace(args, kw):
    def case(L):
        k = dict(kw)
        if "dtype" in k:
            k["dtype"] = getattr(L, k["dtype"])
        return L.logspace(*args, **k)
    same(case)


@pytest.mark.parametrize("args", [(3,), (2, 3), (3, 2), (0,), (1, 4)])
@pytest.mark.parametrize("dtype", [None, "float64", "int64", "bool"])
def test_eye(args, dtype):
    same(lambda L: L.eye(*args, **({} if dtype is None else {"dtype": getattr(L, dtype)})))


ARANGE = [(0, 1, 0.1), (1, 2.5, 0.5), (0, 1, 0.3), (-1.0, 1.0, 0.2), (10, 0, -3),
          (0, 10, 3), (0.5, 3), (5.0,), (0, 5, 1.5), (0.1, 1.0, 0.3), (1e-3, 1.0, 1e-1),
          (0, 2.0000000001, 0.5), (7,)]


@pytest.mark.parametrize("args", ARANGE, ids=[str(a) for a in ARANGE])
@pytest.mark.parametrize("dtype", [None, "float64", "int64"])
def test_arange_length_rule_and_values(args, dtype):
    def case(L):
        return L.arange(*args, **({} if dtype is None else {"dtype": getattr(L, dtype)}))
    if dtype == "int64" and len(args) == 3 and 0 < abs(args[2]) < 1:
        same_error(case)         # the step, truncated to an integer, is 0
        return
    r = same(case)
    if dtype is None:
        start, end, step = (0, args[0], 1) if len(args) == 1 else (tuple(args) + (1,))[:3]
        assert r[1] == (math.ceil((end - start) / step),)


@pytest.mark.parametrize("case", [
    lambda L: L.arange(0, 1, 0),
    lambda L: L.arange(0, -1, 1),
    lambda L: L.arange(1, 0),
    lambda L: L.arange(float("inf")),
    lambda L: L.arange(0, float("nan")),
], ids=["zero_step", "wrong_sign", "wrong_sign_default_step", "inf", "nan"])
def test_arange_errors(case):
    same_error(case)


# ----- factories: size=, *_like, device= ---------------------------------------------------
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_size_keyword(name):
    r = same(lambda L: getattr(L, name)(size=(2, 3), dtype=L.float64).zero_())
    assert r[1] == (2, 3)
    same(lambda L: getattr(L, name)(size=[4]).zero_())


@pytest.mark.parametrize("name", ["randn", "rand"])
def test_size_keyword_of_random_factories(name):
    x = getattr(tg, name)(size=(3, 2), dtype=tg.float64)
    assert x.shape == (3, 2) and x.dtype is tg.float64


@pytest.mark.parametrize("name", ["zeros", "ones", "randn", "rand"])
def test_size_given_twice(name):
    if name in ("zeros", "ones"):
        same_error(lambda L: getattr(L, name)(2, size=(3,)))
    else:                          # PyTorch's argument parser words these differently
        for L in (tg, _torch()):
            with pytest.raises(TypeError, match=f"^{name}\\(\\) "):
                getattr(L, name)(2, size=(3,))


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like"])
@pytest.mark.parametrize("dtype", [None, "float32", "int64"])
def test_like_with_dtype(name, dtype):
    kw = lambda L: {} if dtype is None else {"dtype": getattr(L, dtype)}   # noqa: E731
    same(lambda L: getattr(L, name)(L.ones(2, 3, dtype=L.float64), **kw(L)).zero_())


@pytest.mark.parametrize("fill,dtype", [(7, None), (2.5, None), (True, None), (3, "int64"),
                                        (2.5, "float64")])
def test_full_like(fill, dtype):
    same(lambda L: L.full_like(L.ones(2, dtype=L.int64), fill,
                               **({} if dtype is None else {"dtype": getattr(L, dtype)})))
    same(lambda L: L.full_like(L.ones(2, 2), fill))


@pytest.mark.parametrize("name", ["randn_like", "rand_like"])
def test_random_like(name, seed):
    x = getattr(tg, name)(tg.ones(4, 3, dtype=tg.float64))
    assert x.shape == (4, 3) and x.dtype is tg.float64
    y = getattr(tg, name)(tg.ones(2), dtype=tg.float64, requires_grad=True)
    assert y.dtype is tg.float64 and y.requires_grad and y.is_leaf
    values = getattr(tg, name)(tg.ones(2000)).numpy()
    if name == "rand_like":
        assert values.min() >= 0 and values.max() < 1
    else:
        assert abs(values.mean()) < 0.1 and abs(values.std() - 1) < 0.1


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "full_like", "rand_like"])
def test_like_of_a_list(name):
    args = (1.0,) if name == "full_like" else ()
    same_error(lambda L: getattr(L, name)([1.0, 2.0], *args))


def test_device_object():
    torch = _torch()
    for L in (tg, torch):
        d = L.device("cpu")
        assert (repr(d), str(d), d.type, d.index) == ("device(type='cpu')", "cpu", "cpu", None)
        d0 = L.device("cpu:0")
        assert (repr(d0), str(d0), d0.index) == ("device(type='cpu', index=0)", "cpu:0", 0)
        assert L.device("cpu", 0) == d0 and d0 != d and L.device(d) == d
        assert hash(L.device("cpu")) == hash(d)
        assert (d == "cpu") is False          # PyTorch compares devices with devices only
        cuda = L.device("cuda:1")              # made, as in PyTorch; only using it fails
        assert (cuda.type, cuda.index) == ("cuda", 1)
        x = L.ones(2)
        assert x.device == d and isinstance(x.device, L.device)
        assert x.cpu() is x and x.to("cpu") is x and x.to(L.device("cpu")) is x
        assert x.is_cuda is False and x.is_cpu is True
    assert not tg.cuda.is_available() and tg.cuda.device_count() == 0
    tg.cuda.manual_seed_all(0)


@pytest.mark.parametrize("case", [
    lambda L: L.device("gpu"),
    lambda L: L.device("cpu:x"),
    lambda L: L.device("cpu", -1),
    lambda L: L.device(3),
], ids=["unknown_type", "bad_index", "negative_index", "int"])
def test_device_errors(case):
    same_error(case)


@pytest.mark.parametrize("make", [
    lambda L, d: L.ones(2, device=d), lambda L, d: L.tensor([1.0], device=d),
    lambda L, d: L.zeros(2, 2, device=d), lambda L, d: L.randn(3, device=d),
    lambda L, d: L.arange(3, device=d), lambda L, d: L.linspace(0, 1, 3, device=d),
    lambda L, d: L.eye(2, device=d), lambda L, d: L.full((2,), 1.0, device=d),
    lambda L, d: L.zeros_like(L.ones(2), device=d), lambda L, d: L.ones(2).to(d),
    lambda L, d: L.ones(2).to(d, L.float64), lambda L, d: L.Tensor([1.0], device=d),
], ids=["ones", "tensor", "zeros", "randn", "arange", "linspace", "eye", "full",
        "zeros_like", "to", "to_dtype", "Tensor"])
def test_device_keyword(make, request):
    for d in ("cpu", tg.device("cpu"), "cpu:0"):
        assert make(tg, d).device == tg.device("cpu")
    with pytest.raises(AssertionError, match="tapegrad runs on the CPU only: there is no "
                                             "'cuda' device"):
        make(tg, "cuda")
    with pytest.raises(AssertionError, match="tapegrad runs on the CPU only"):
        make(tg, tg.device("cuda", 0))
    with pytest.raises(RuntimeError, match="tapegrad runs on the CPU only: there is no 'mps'"):
        make(tg, "mps")
    torch = _torch()                  # PyTorch without CUDA raises the same exception types
    legacy = request.node.callspec.id == "Tensor"     # (its legacy constructor: RuntimeError)
    with pytest.raises(RuntimeError if legacy else AssertionError):
        make(torch, "cuda")
    with pytest.raises(RuntimeError):
        make(torch, "mps")


def test_cuda_method_and_to_forms():
    with pytest.raises(AssertionError, match="CPU only"):
        tg.ones(2).cuda()
    same(lambda L: L.ones(2).to("cpu", L.float64))
    same(lambda L: L.ones(2).to(device="cpu", dtype=L.int64))
    same(lambda L: L.ones(2).to(L.ones(1, dtype=L.float64)))
    same(lambda L: L.ones(2).to(L.float64, copy=True))
    x = tg.ones(2)
    assert x.to("cpu", copy=True) is not x and x.to(dtype=tg.float32) is x
    same_error(lambda L: L.ones(2).to("gpu"))


# ----- the legacy constructors and Variable -------------------------------------------------
@pytest.mark.parametrize("case", [
    lambda L: L.Tensor([1, 2, 3]), lambda L: L.Tensor([[1, 2], [3, 4]]),
    lambda L: L.Tensor(2, 3).zero_(), lambda L: L.Tensor(), lambda L: L.Tensor((2, 3)),
    lambda L: L.Tensor(L.Size([2, 3])).zero_(), lambda L: L.Tensor(np.array([1.0, 2.0])),
    lambda L: L.Tensor(L.ones(2, dtype=L.float64)), lambda L: L.Tensor(L.ones(2, dtype=L.int64)),
    lambda L: L.FloatTensor([1, 2]), lambda L: L.DoubleTensor([1, 2]),
    lambda L: L.LongTensor([1.7, -2.7]), lambda L: L.LongTensor(2, 2).zero_(),
    lambda L: L.FloatTensor(3).zero_(), lambda L: L.ones(2).type(L.DoubleTensor),
], ids=["list", "nested", "sizes", "empty", "tuple_is_data", "Size", "ndarray",
        "tensor_float64", "tensor_int64", "FloatTensor", "DoubleTensor", "LongTensor",
        "LongTensor_sizes", "FloatTensor_size", "type"])
def test_legacy_constructors(case):
    same(case)


def test_legacy_constructor_of_a_tensor_shares_its_memory():
    a = tg.ones(2)
    b = tg.Tensor(a)
    assert b is not a
    b[0] = 5.0
    assert a.tolist() == [5.0, 1.0] and a._version == b._version == 1
    assert tg.FloatTensor(a).tolist() == [5.0, 1.0]


@pytest.mark.parametrize("case", [
    lambda L: L.Tensor("a"), lambda L: L.Tensor(2.5), lambda L: L.Tensor(2, [3]),
    lambda L: L.LongTensor(L.ones(2, dtype=L.float64)),
], ids=["str", "float", "mixed_sizes", "dtype_mismatch"])
def test_legacy_constructor_errors(case):
    same_error(case)


def test_legacy_constructor_keywords_are_refused():
    same_error(lambda L: L.Tensor([1, 2], dtype=L.float64), whole=False)
    same_error(lambda L: L.Tensor([1, 2], requires_grad=True), whole=False)


def test_variable():
    torch = _torch()
    from torch.autograd import Variable as TV
    for L, V in ((tg, tg.autograd.Variable), (torch, TV)):
        w = L.ones(2)
        v = V(w, requires_grad=True)
        assert v is not w and v.requires_grad and v.is_leaf and isinstance(v, V)
        with L.no_grad():
            v[0] = 5.0
        assert w.tolist() == [5.0, 1.0]
        assert not V(w).requires_grad and V().shape == (0,)
        (v * v).sum().backward()
        assert v.grad.tolist() == [10.0, 2.0]
    same_error(lambda L: (tg.autograd.Variable if L is tg else TV)([1, 2]))


# ----- argmax, argmin ---------------------------------------------------------------------
A = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
ARG_CASES = [
    lambda L, f: f(L.tensor(A)), lambda L, f: f(L.tensor(A), 1),
    lambda L, f: f(L.tensor(A), dim=0, keepdim=True), lambda L, f: f(L.tensor(A), -1),
    lambda L, f: f(L.tensor(A), None, True), lambda L, f: f(L.tensor(3.0)),
    lambda L, f: f(L.tensor(3.0), 0), lambda L, f: f(L.tensor([1, 3, 3])),
    lambda L, f: f(L.tensor([float("nan"), 1.0, float("nan")])),
    lambda L, f: f(L.tensor([2.0, float("nan")]), 0),
    lambda L, f: f(L.empty(2, 0), 0), lambda L, f: f(L.tensor(A, requires_grad=True) * 2, 1),
]


@pytest.mark.parametrize("case", ARG_CASES)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(case, name):
    same(lambda L: case(L, getattr(L, name)))
    same(lambda L: case(L, lambda t, *a, **k: getattr(t, name)(*a, **k)))


@pytest.mark.parametrize("case", [
    lambda L, f: f(L.empty(0)), lambda L, f: f(L.tensor(A), 2),
    lambda L, f: f(L.empty(2, 0), 1), lambda L, f: f(L.tensor([True, False])),
], ids=["empty", "dim_out_of_range", "empty_dim", "bool"])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_errors(case, name):
    same_error(lambda L: case(L, getattr(L, name)))


# ----- allclose, isclose, equal ----------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
CLOSE = [
    ([1.0, 2.0, NAN], [1.0, 2.0 + 1e-7, NAN], {}),
    ([1.0, 2.0, NAN], [1.0, 2.0 + 1e-7, NAN], {"equal_nan": True}),
    ([INF, -INF, 1.0], [INF, INF, 1.0 + 1e-3], {}),
    ([1.0, 100.0], [1.00001, 100.001], {}),
    ([1.0, 100.0], [1.00001, 100.001], {"rtol": 0, "atol": 0}),
    ([0.0, 1e-9], [1e-9, 0.0], {"atol": 1e-9, "rtol": 0}),
    ([1, 2, 3], [1, 2, 4], {}),
    ([[1.0], [2.0]], [1.0, 2.0 + 1e-9], {}),
]


@pytest.mark.parametrize("a,b,kw", CLOSE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_isclose_allclose(a, b, kw, dtype):
    def t(L, v):
        dt = None if isinstance(v[0], int) else getattr(L, dtype)
        return L.tensor(v, dtype=dt)
    same(lambda L: L.isclose(t(L, a), t(L, b), **kw))
    same(lambda L: t(L, a).isclose(t(L, b), **kw))
    same(lambda L: [L.allclose(t(L, a), t(L, b), **kw), t(L, a).allclose(t(L, b), **kw)])


def test_equal():
    same(lambda L: [L.equal(L.tensor(A), L.tensor(A)), L.equal(L.ones(2), L.ones(3)),
                    L.equal(L.ones(2), L.ones(2, dtype=L.float64)),
                    L.equal(L.ones(2), L.ones(1, 2)), L.tensor(A).equal(L.tensor(A) + 1),
                    L.equal(L.tensor([NAN]), L.tensor([NAN]))])


@pytest.mark.parametrize("case", [
    lambda L: L.allclose(L.ones(2), L.ones(3)),
    lambda L: L.allclose(L.ones(2), L.ones(2, dtype=L.float64)),
    lambda L: L.isclose(L.ones(2), L.ones(2, dtype=L.float64)),
    lambda L: L.allclose(L.ones(2), 1.0),
    lambda L: L.isclose(L.ones(2), L.ones(2), rtol=-1),
    lambda L: L.isclose(L.ones(2), L.ones(2), atol=-1.5),
], ids=["shapes", "dtypes_allclose", "dtypes_isclose", "number", "rtol", "atol"])
def test_closeness_errors(case):
    same_error(case)


# ----- tg.linalg -----------------------------------------------------------------------------
M = np.array([[1.0, -2.0, 0.5], [3.0, 4.0, -1.0]])
NORMS = [
    ("vector_norm", (), {}), ("vector_norm", (1,), {}), ("vector_norm", (3,), {"dim": 1}),
    ("vector_norm", (INF,), {}), ("vector_norm", (-INF,), {"dim": 0}),
    ("vector_norm", (-1,), {"dim": 1}), ("vector_norm", (-2.5,), {}),
    ("vector_norm", (2,), {"dim": (0, 1), "keepdim": True}), ("vector_norm", (0.5,), {"dim": -1}),
    ("norm", (), {}), ("norm", ("fro",), {}), ("norm", (1,), {}), ("norm", (-1,), {}),
    ("norm", (INF,), {}), ("norm", (-INF,), {}), ("norm", (3,), {"dim": 1}),
    ("norm", (None,), {"dim": (0, 1)}), ("norm", (1,), {"dim": (1, 0), "keepdim": True}),
    ("norm", (INF,), {"dim": (0, 1), "keepdim": True}),
    ("matrix_norm", (), {}), ("matrix_norm", (1,), {}), ("matrix_norm", (-INF,), {}),
]


@pytest.mark.parametrize("fn,args,kw", NORMS, ids=[f"{f}{a}{k}" for f, a, k in NORMS])
def test_norms_values_grads_and_nodes(fn, args, kw):
    torch = _torch()

    def case(L):
        x = L.tensor(M, dtype=L.float64, requires_grad=True)
        y = getattr(L.linalg, fn)(x, *args, **kw)
        y.sum().backward()
        return [y, x.grad]
    same(case, tol=1e-12)
    names = []
    for L in (tg, torch):
        x = L.tensor(M, dtype=L.float64, requires_grad=True)
        names.append(getattr(L.linalg, fn)(x, *args, **kw).grad_fn.name())
    order = args[0] if args else 2
    if not (fn == "vector_norm" and math.isinf(order)):
        assert names[0] == names[1]
    else:               # tapegrad: the inf-norms are amax/amin of abs (same gradients)
        assert names == [("AmaxBackward0" if order > 0 else "AminBackward0"),
                         "LinalgVectorNormBackward0"]
    x = tg.tensor(M, dtype=tg.float64, requires_grad=True)
    f = lambda v: float(getattr(tg.linalg, fn)(tg.tensor(v, dtype=tg.float64), *args,  # noqa
                                               **kw).sum().item())
    getattr(tg.linalg, fn)(x, *args, **kw).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), fd_grad(f, M), rtol=1e-6, atol=1e-6)


def test_vector_norm_of_a_vector_with_zeros_and_dtype():
    same(lambda L: L.linalg.vector_norm(L.tensor([0.0, 2.0, -3.0]), -1))
    same(lambda L: L.linalg.vector_norm(L.tensor([0.0, 2.0, -3.0]), 0))
    same(lambda L: L.linalg.vector_norm(L.tensor([1.0, 2.0]), dtype=L.float64))
    same(lambda L: L.linalg.vector_norm(L.tensor(-3.0)))
    same(lambda L: L.linalg.norm(L.tensor([3.0, -4.0]), 1))


@pytest.mark.parametrize("case", [
    lambda L: L.linalg.vector_norm(L.tensor([1, 2])),
    lambda L: L.linalg.vector_norm(L.tensor([1.0, 2.0]), dtype=L.int64),
    lambda L: L.linalg.vector_norm(L.ones(2), "fro"),
    lambda L: L.linalg.vector_norm(L.ones(2, 2), dim=(0, 0)),
    lambda L: L.linalg.vector_norm(L.empty(0), INF),
    lambda L: L.linalg.vector_norm(L.ones(2, 2), dim=2),
    lambda L: L.linalg.norm(L.ones(2, 2, 2), 1),
    lambda L: L.linalg.norm(L.ones(2), "fro"),
    lambda L: L.linalg.norm(L.ones(2, 2), 3),
    lambda L: L.linalg.norm(L.ones(2, 2), dim=(0, 1, 1)),
    lambda L: L.linalg.norm(L.ones(2, 2), dim=(0, 0)),
    lambda L: L.linalg.matrix_norm(L.ones(2, 2), "abc"),
    lambda L: L.linalg.matrix_norm(L.ones(2, 2), dim=(1, 1)),
    lambda L: L.linalg.matrix_norm(L.ones(2, 2), dim=1),
], ids=["int_input", "int_dtype", "str_ord", "repeated_dim", "inf_of_empty", "dim_range",
        "3d_with_ord", "fro_of_vector", "order_3", "three_dims", "same_dims", "order_abc",
        "matrix_same_dims", "matrix_one_dim"])
def test_norm_errors(case, request):
    # matrix_norm(dim=int): PyTorch's argument parser lists the signatures at length
    same_error(case, whole=request.node.callspec.id != "matrix_one_dim")


@pytest.mark.parametrize("ord", [2, -2, "nuc"])
def test_norms_needing_singular_values_say_so(ord):
    with pytest.raises(NotImplementedError, match="singular values"):
        tg.linalg.norm(tg.ones(2, 2), ord)


# ----- format, numpy(force), is_tensor, numel, new_* ---------------------------------------------
@pytest.mark.parametrize("value,dtype,spec", [
    (1.23456, "float32", "+.2f"), (1.23456, "float32", ".3e"), (1.23456, "float32", ""),
    (-2.5, "float64", "8.3f"), (-2.5, "float64", ""), (3, "int64", "d"), (3, "int64", ">5"),
    (True, "bool", ""),
])
def test_format_of_a_0d_tensor(value, dtype, spec):
    torch = _torch()
    mine = format(tg.tensor(value, dtype=getattr(tg, dtype)), spec)
    theirs = format(torch.tensor(value, dtype=getattr(torch, dtype)), spec)
    assert mine == theirs
    t = tg.tensor(value, dtype=getattr(tg, dtype), requires_grad=dtype.startswith("float"))
    assert f"{t:{spec}}" == theirs


def test_format_of_other_tensors():
    same_error(lambda L: format(L.ones(2), "+.2f"))
    assert f"{tg.ones(2)}" == str(tg.ones(2))


def test_numpy_force_is_tensor_numel_new():
    torch = _torch()
    for L in (tg, torch):
        x = L.ones(2, 3, requires_grad=True)
        assert x.numpy(force=True).tolist() == [[1.0] * 3] * 2
        assert L.is_tensor(x) and not L.is_tensor([1.0]) and L.numel(x) == 6
    same_error(lambda L: L.ones(2, requires_grad=True).numpy())
    same(lambda L: [L.ones(2, dtype=L.float64).new_ones(3), L.ones(2).new_zeros((2, 2)),
                    L.ones(2, dtype=L.float64).new_full((2,), 3),
                    L.ones(2, dtype=L.float64).new_tensor([1, 2]),
                    L.ones(2).new_ones(2, dtype=L.int64), L.ones(2).new_empty(2).zero_()])


# ----- PyTorch's beginner tutorials, with `import tapegrad as torch` -------------------------
# Faithful paraphrases of the tutorials' code (sources named); random draws are replaced by
# fixed values so that the printed numbers can be compared with PyTorch's.
TENSORS_TUTORIAL = '''
# beginner_source/basics/tensorqs_tutorial.py
data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
np_array = np.array(data)
x_np = torch.from_numpy(np_array)
x_ones = torch.ones_like(x_data)
print(f"Ones Tensor: \\n {x_ones} \\n")
x_rand = torch.rand_like(x_data, dtype=torch.float)
print(x_rand.shape, x_rand.dtype)
shape = (2, 3,)
rand_tensor = torch.rand(shape)
ones_tensor = torch.ones(shape)
zeros_tensor = torch.zeros(shape)
print(f"Ones Tensor: \\n {ones_tensor} \\n")
print(f"Zeros Tensor: \\n {zeros_tensor}")
tensor = torch.rand(3, 4)
print(f"Shape of tensor: {tensor.shape}")
print(f"Datatype of tensor: {tensor.dtype}")
print(f"Device tensor is stored on: {tensor.device}")
tensor = torch.ones(4, 4)
print(f"First row: {tensor[0]}")
print(f"First column: {tensor[:, 0]}")
print(f"Last column: {tensor[..., -1]}")
tensor[:, 1] = 0
print(tensor)
t1 = torch.cat([tensor, tensor, tensor], dim=1)
print(t1)
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.rand_like(y1)
torch.matmul(tensor, tensor.T, out=y3)
z1 = tensor * tensor
z2 = tensor.mul(tensor)
z3 = torch.rand_like(tensor)
torch.mul(tensor, tensor, out=z3)
print(y1, y2, y3, z1, z2, z3)
agg = tensor.sum()
agg_item = agg.item()
print(agg_item, type(agg_item))
tensor.add_(5)
print(tensor)
t = torch.ones(5)
n = t.numpy()
t.add_(1)
print(f"t: {t}")
print(f"n: {n}")
n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
print(f"t: {t}")
print(f"n: {n}")
'''

AUTOGRAD_TUTORIAL = '''
# beginner_source/basics/autogradqs_tutorial.py (w and b fixed instead of drawn)
x = torch.ones(5)  # input tensor
y = torch.zeros(3)  # expected output
w = torch.tensor(np.linspace(-1, 1, 15).reshape(5, 3), dtype=torch.float, requires_grad=True)
b = torch.tensor([0.1, -0.2, 0.3], requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
print(f"Gradient function for z = {z.grad_fn.name()}")
# (the tutorial prints loss.grad_fn too: tapegrad composes the loss, its node is MeanBackward0)
loss.backward()
print(w.grad)
print(b.grad)
z = torch.matmul(x, w) + b
print(z.requires_grad)
with torch.no_grad():
    z = torch.matmul(x, w) + b
print(z.requires_grad)
z = torch.matmul(x, w) + b
z_det = z.detach()
print(z_det.requires_grad)
inp = torch.eye(4, 5, requires_grad=True)
out = (inp + 1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\\n{inp.grad}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\\nSecond call\\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\\nCall after zeroing gradients\\n{inp.grad}")
'''

POLYNOMIAL_TUTORIAL = '''
# beginner_source/examples_tensor/polynomial_tensor.py and
# examples_autograd/polynomial_autograd.py (a, b, c, d fixed; 300 steps instead of 2000)
dtype = torch.float
device = torch.device("cpu")
x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)
a, b, c, d = (torch.full((), v, device=device, dtype=dtype) for v in (0.1, -0.2, 0.3, 0.05))
learning_rate = 1e-6
for t in range(300):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum().item()
    if t % 100 == 99:
        print(t, f"{loss:.4f}")
    grad_y_pred = 2.0 * (y_pred - y)
    grad_a = grad_y_pred.sum()
    grad_b = (grad_y_pred * x).sum()
    grad_c = (grad_y_pred * x ** 2).sum()
    grad_d = (grad_y_pred * x ** 3).sum()
    a -= learning_rate * grad_a
    b -= learning_rate * grad_b
    c -= learning_rate * grad_c
    d -= learning_rate * grad_d
print(f"Result: y = {a.item():.5f} + {b.item():.5f} x + {c.item():.5f} x^2 + {d.item():.5f} x^3")
a, b, c, d = (torch.full((), v, dtype=dtype, requires_grad=True) for v in (0.1, -0.2, 0.3, 0.05))
for t in range(300):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99:
        print(t, f"{loss.item():.4f}")
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None
print(f"Result: y = {a.item():.5f} + {b.item():.5f} x + {c.item():.5f} x^2 + {d.item():.5f} x^3")
'''


def _run_script(source, module):
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(source, {"torch": module, "np": np, "math": math})    # noqa: S102
    return out.getvalue()


@pytest.mark.parametrize("source", [TENSORS_TUTORIAL, AUTOGRAD_TUTORIAL, POLYNOMIAL_TUTORIAL],
                         ids=["tensors", "autograd", "polynomial"])
def test_tutorial_prints_what_pytorch_prints(source):
    """The same text; numbers the same to float32 rounding (sums of float32 values may
    round differently in the last digit printed)."""
    torch = _torch()
    number = r"-?\d+\.\d+(?:e[-+]\d+)?"
    mine = _run_script(source, tg)
    theirs = re.sub(r"\btorch\.", "tapegrad.", _run_script(source, torch))
    assert re.split(number, mine) == re.split(number, theirs)
    np.testing.assert_allclose([float(v) for v in re.findall(number, mine)],
                               [float(v) for v in re.findall(number, theirs)], rtol=2e-6,
                               atol=1e-4)
    assert len(mine.splitlines()) >= 8


def test_values_read_inside_tg_compile_are_guarded():
    """argmax, isclose, allclose, equal read values the tape does not recompute: a
    tg.compile replay with other values records again instead of returning stale ones."""
    fns = {"argmax": lambda x: x.argmax(), "argmin_dim": lambda x: (x * 2).argmin(0),
           "isclose": lambda x: tg.isclose(x, tg.ones(3)),
           "allclose": lambda x: tg.tensor(float(tg.allclose(x, tg.ones(3)))),
           "equal": lambda x: tg.tensor(float(tg.equal(x, tg.ones(3))))}
    for name, fn in fns.items():
        compiled = tg.compile(fn)
        for v in ([1.0, 3.0, 2.0], [5.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 3.0, 2.0]):
            got, want = compiled(tg.tensor(v)), fn(tg.tensor(v))
            assert got.tolist() == want.tolist(), (name, v)
