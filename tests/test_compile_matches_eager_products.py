"""A tg.compile replay computes matrix products, and their gradients, to the bit as eager
mode does: forward values, the gradients of a compiled function's backward, and a whole
compiled training step (backward and update inside the replay).

Before, the replay multiplied with loops of its own (replay_kernels._mm/_mv) and a whole
step took the gradients of products with loops other than eager's (replay_backward), and
the sums of a broadcast add's gradient in float64: values and gradients differed from
eager in the last bits (for (100, 3) @ (3, 32), 4,187 of 12,800 values over four replays).
Now the replay calls NumPy's matmul loop, the one eager np.matmul runs (BLAS or NumPy's
own loop, as NumPy picks), on operands laid out as eager's (matmul.py multiplies
C-ordered arrays), and a whole step's backward takes products through the sweep eager
uses, the large ones by the same matmul loop as eager's products.py.
"""
import numpy as np
import pytest

import tapegrad as tg

pytestmark = pytest.mark.usefixtures("isolated")

DTYPES = [np.float64, np.float32]
PRODUCTS = [
    ("mm small", lambda a, b: a.mm(b), [(4, 3), (3, 2)]),
    ("mm square", lambda a, b: a.mm(b), [(20, 30), (30, 30)]),
    ("mm walkthrough", lambda a, b: a.mm(b), [(100, 3), (3, 32)]),
    ("mm one row", lambda a, b: a.mm(b), [(1, 5), (5, 7)]),
    ("mm one column", lambda a, b: a.mm(b), [(6, 5), (5, 1)]),
    ("mm 1x1", lambda a, b: a.mm(b), [(1, 5), (5, 1)]),
    ("mm large", lambda a, b: a.mm(b), [(64, 100), (100, 40)]),     # BLAS-sized (BIG)
    ("mv", lambda a, b: a.mv(b), [(6, 5), (5,)]),
    ("dot", lambda a, b: a.dot(b), [(50,), (50,)]),
    ("bmm", lambda a, b: a.bmm(b), [(3, 4, 5), (3, 5, 6)]),
    ("matmul broadcast", lambda a, b: a @ b, [(2, 3, 4, 5), (5, 6)]),
    ("transposed operand", lambda a, b: a.t().mm(b), [(30, 20), (30, 30)]),
    ("x @ w.t()", lambda a, b: a.mm(b.t()), [(64, 100), (10, 100)]),
    ("chain", lambda a, b: a.mm(b).relu().mm(b.t()), [(16, 8), (8, 8)]),
]


def _bits_equal(x, y):
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    return x.dtype == y.dtype and x.shape == y.shape and \
        np.array_equal(x.view(np.uint8), y.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name,f,shapes", PRODUCTS, ids=[p[0] for p in PRODUCTS])
def test_replayed_products_and_their_grads_are_eagers(name, f, shapes, dtype):
    rng = np.random.default_rng(len(name))
    g = tg.compile(f)
    for k in range(4):
        args = [tg.tensor(rng.standard_normal(s).astype(dtype) * (k + 1), requires_grad=True)
                for s in shapes]
        seed = rng.standard_normal(f(*args).shape).astype(dtype)
        eager = f(*args)
        eager.backward(tg.tensor(seed))
        want = [a.grad.numpy().copy() for a in args]
        for a in args:
            a.grad = None
        got = g(*args)
        assert _bits_equal(got.detach().numpy(), eager.detach().numpy()), k
        got.backward(tg.tensor(seed))
        for a, w in zip(args, want):
            assert _bits_equal(a.grad.numpy(), w), k
    assert g.stats()["replays"] == 3


def _train(compiled, dtype, zero, steps=30, seed=3):
    """A small net with every broadcast kind of an add's operand (a row, a column, one
    value), a BLAS-sized product and a small one, trained a whole step at a time; grads
    zeroed each step or accumulated (``zero``)."""
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((64, 100)), dtype=dtype)
    y = tg.tensor(rng.standard_normal((64, 3)), dtype=dtype)
    ws = [tg.tensor(rng.standard_normal(s) * 0.1, dtype=dtype, requires_grad=True)
          for s in [(100, 40), (1, 40), (40, 3), (64, 1), (1, 1)]]

    def step(w1, b1, w2, c, d):
        h = (x.mm(w1) + b1).tanh() - c
        loss = ((h.mm(w2) - d - y) ** 2).mean()
        loss.backward()
        with tg.no_grad():
            for w in (w1, b1, w2, c, d):
                w.sub_(0.05 * w.grad)
                if zero:
                    w.grad.zero_()
        return loss
    f = tg.compile(step) if compiled else step
    losses = [f(*ws).item() for _ in range(steps)]
    return losses, [w.detach().numpy().copy() for w in ws], [w.grad.numpy().copy() for w in ws], f


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("zero", [True, False], ids=["zeroed", "accumulated"])
def test_a_compiled_training_step_is_eagers_to_the_bit(dtype, zero):
    el, ew, eg, _ = _train(False, dtype, zero)
    cl, cw, cg, f = _train(True, dtype, zero)
    assert cl == el
    for a, b in zip(cw + cg, ew + eg):
        assert _bits_equal(a, b)
    assert f.stats()["replays"] > 20


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32], ids=["float64", "float32"])
def test_the_walkthrough_step_compiled_is_eagers_to_the_bit(dtype):
    from test_compile_step import _walkthrough
    el, ep, eg, _ = _walkthrough(False, False, dtype=dtype)
    cl, cp, cg, f = _walkthrough(True, False, dtype=dtype)
    assert cl == el
    for a, b in zip(cp + cg, ep + eg):
        assert _bits_equal(a, b)
    assert f.stats()["replays"] == 198


@pytest.mark.parametrize("shapes", [[(4, 3), (3, 5)], [(64, 100), (100, 40)]],
                         ids=["small", "blas-sized"])
def test_a_float32_product_in_a_float64_arena_is_float32s(shapes):
    """A recording that also holds float64 values replays in float64: its float32 product
    must still be float32's (sgemm's), not a float64 product rounded."""
    rng = np.random.default_rng(1)

    def f(a, b, c):
        return a.mm(b).double() * c.sum() + c.sum() ** 2
    g = tg.compile(f)
    for k in range(4):
        a, b = (tg.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
                for s in shapes)
        c = tg.tensor(rng.standard_normal(3), requires_grad=True)
        want = f(a, b, c)
        want.sum().backward()
        grads = [t.grad.numpy().copy() for t in (a, b, c)]
        for t in (a, b, c):
            t.grad = None
        got = g(a, b, c)
        assert _bits_equal(got.detach().numpy(), want.detach().numpy())
        got.sum().backward()
        for t, w in zip((a, b, c), grads):
            assert _bits_equal(t.grad.numpy(), w)
    assert g.stats()["replays"] == 3
