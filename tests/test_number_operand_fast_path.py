"""face._binary's fast path: an array that needs no grad with a Python float (a training
step's update, ``LR * w.grad``) skips type promotion and the tape. It must give what the
general path gives: the array's dtype, the same values, a new tensor that needs no grad;
and inside a tg.compile recording the general path still records it."""
import numpy as np
import pytest

import tapegrad as tg

pytestmark = pytest.mark.usefixtures("isolated")

OPS = [("mul", lambda t, c: t * c, lambda a, c: a * c),
       ("rmul", lambda t, c: c * t, lambda a, c: c * a),
       ("add", lambda t, c: t + c, lambda a, c: a + c),
       ("sub", lambda t, c: t - c, lambda a, c: a - c),
       ("rsub", lambda t, c: c - t, lambda a, c: c - a),
       ("div", lambda t, c: t / c, lambda a, c: a / c)]


@pytest.mark.parametrize("name,op,ref", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 0)])
def test_an_array_and_a_float_keep_the_arrays_dtype_and_values(name, op, ref, dtype, shape):
    a = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    t = tg.tensor(a)
    for grad_on in (True, False):               # the same under no_grad as without
        with tg.set_grad_enabled(grad_on):
            out = op(t, 0.37)
        assert out.dtype == t.dtype
        assert not out.requires_grad and out.grad_fn is None and out.is_leaf
        want = np.asarray(ref(a, 0.37), dtype)
        np.testing.assert_array_equal(out.numpy(), want)
        assert out.shape == t.shape


def test_the_result_is_a_new_tensor_that_does_not_share_the_operands_memory():
    g = tg.tensor(np.ones(3))
    out = 0.5 * g
    out.zero_()
    np.testing.assert_array_equal(g.numpy(), np.ones(3))


def test_an_int_tensor_and_a_float_still_promote():
    out = tg.tensor([1, 2, 3]) * 0.5             # the general path: int64 -> float32
    assert out.dtype == tg.float32
    np.testing.assert_array_equal(out.numpy(), np.array([0.5, 1.0, 1.5], np.float32))


def test_an_array_that_requires_grad_and_a_float_is_still_recorded():
    w = tg.tensor(np.arange(3.0), requires_grad=True)
    out = w * 2.5
    assert out.grad_fn is not None and out.grad_fn.name() == "MulBackward0"
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 2.5))


def test_inside_a_compile_recording_a_constant_times_a_float_is_replayed():
    @tg.compile
    def f(x, c):
        return (x * (c * 3.0)).sum()             # c needs no grad: recorded all the same

    x = tg.tensor(np.ones(3), requires_grad=True)
    for value in (1.0, 2.0, -4.0):
        c = tg.tensor(np.full(3, value))
        x.grad = None
        f(x, c).backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0 * value))


def test_matches_pytorch_for_an_update_step():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    W = rng.standard_normal((4, 3)).astype(np.float32)
    G = rng.standard_normal((4, 3)).astype(np.float32)
    w = tg.tensor(W.copy(), requires_grad=True)
    w.grad = tg.tensor(G)
    tw = torch.tensor(W.copy(), requires_grad=True)
    tw.grad = torch.tensor(G)
    with tg.no_grad():
        w.sub_(1e-3 * w.grad)
    with torch.no_grad():
        tw.sub_(1e-3 * tw.grad)
    np.testing.assert_array_equal(w.detach().numpy(), tw.detach().numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_0d_array_value_stays_a_0d_array_of_its_dtype(dtype):
    w = tg.tensor(np.arange(1.0, 4.0).astype(dtype), requires_grad=True)
    d = (w * 1.5).sum().detach()                 # a 0-d ndarray value (an array record's)
    assert isinstance(d._v, np.ndarray) and d._v.ndim == 0
    out = d * 0.37
    assert out.shape == () and out.dtype == d.dtype
    assert isinstance(out._v, np.ndarray) and out._v.dtype == dtype
    assert out.item() == float(np.asarray(d._v * 0.37, dtype))
