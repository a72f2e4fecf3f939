"""What the eager path caches from one training step to the next (an array source's rows
and head on its node, a reduction's lane map, the tapes by id) follows the tensors when
they change: requires_grad, dtype or value swapped between steps, tapes that die."""
import gc

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.tape import LIVE

pytestmark = pytest.mark.usefixtures("isolated")


def test_a_parameter_reused_over_steps_gets_its_gradient_every_step():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    W = rng.standard_normal((3, 2))
    x = tg.tensor(X)
    w = tg.tensor(W.copy(), requires_grad=True)
    for _ in range(3):
        loss = x.mm(w).pow(2).sum()
        loss.backward()
        want = 2 * X.T @ (X @ w.detach().numpy())
        np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)
        with tg.no_grad():
            w.sub_(0.1 * w.grad)
            w.grad.zero_()


def test_requires_grad_switched_between_steps():
    w = tg.tensor(np.ones((2, 2)), requires_grad=True)
    c = tg.tensor(np.full((2, 2), 3.0))
    (w * c).sum().backward()                 # c a constant: no grad
    assert c.grad is None
    c.requires_grad_(True)                   # now a leaf: its grad arrives
    (w * c).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 2), 6.0))
    c.requires_grad_(False)                  # a constant again: its grad stays as it was
    (w * c).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 2), 9.0))


def test_a_value_swapped_by_data_between_steps():
    w = tg.tensor(np.ones((2, 3)), requires_grad=True)
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 2.0))
    w.data = tg.tensor(np.arange(6.0).reshape(2, 3))       # same shape, new value
    w.grad = None
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))
    x = tg.tensor(np.ones((4, 4)))
    y = x.sum()
    x.data = tg.tensor(np.ones(3))           # a constant's value of another shape
    z = tg.tensor(np.ones(3), requires_grad=True)
    (x * z).sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), np.ones(3))
    assert y.item() == 16.0


def test_reductions_of_the_same_shape_over_other_dims():
    v = np.arange(24.0).reshape(2, 3, 4)
    for dim in (None, 0, 1, 2, (0, 2)):
        x = tg.tensor(v, requires_grad=True)
        (x.sum() if dim is None else x.sum(dim)).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.ones_like(v))
        x = tg.tensor(v, requires_grad=True)
        m = x.mean() if dim is None else x.mean(dim)
        m.sum().backward()
        n = v.size // m.numel()
        np.testing.assert_allclose(x.grad.numpy(), np.full_like(v, 1.0 / n), rtol=1e-15)


def test_live_tapes_by_id():
    y = tg.tensor(np.ones(2), requires_grad=True) * 2.0
    tape = y._tape
    assert tape.id in LIVE and LIVE[tape.id] is tape and LIVE.get(tape.id) is tape
    tid = tape.id
    del y, tape
    gc.collect()
    assert tid not in LIVE and LIVE.get(tid) is None
    with pytest.raises(KeyError):
        LIVE[tid]


def test_backward_of_a_non_scalar_and_of_a_leaf_keep_their_words():
    y = tg.tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        y.backward()
    c = tg.tensor(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        (c * 2.0).sum().backward()
    s = tg.tensor(2.0, requires_grad=True)
    s.backward()
    assert s.grad.item() == 1.0
    z = (tg.tensor(np.ones(2), requires_grad=True) * 3.0).sum()
    z.backward(retain_graph=True)
    z.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.backward()


def test_a_record_made_again_at_the_same_place_follows_what_differs():
    """Each step below records the same ops at the same places on a new tape, with one
    thing changed: the number operand, the constant, which operand requires grad, a
    number's side, the dtype. Whatever a step caches (a source's rows, a record's plan)
    must follow; every gradient is checked against its closed form."""
    A = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])
    B = np.array([[2.0, 1.0, -1.0], [0.5, -3.0, 4.0]])

    def step(k, rg_a, rg_b, first, dtype=tg.float64):
        a = tg.tensor(A, dtype=dtype, requires_grad=rg_a)
        b = tg.tensor(B, dtype=dtype, requires_grad=rg_b)
        u = a * k if not first else k * a            # the number on either side
        y = (u * b).pow(k).sum() if k else (u * b).sum()
        y.backward()
        return a.grad, b.grad

    for k in (2.0, 3.0, 2.0, 0.0, -0.0, 2.0):
        for rg_a, rg_b in ((True, True), (True, False), (False, True), (True, True)):
            for first in (False, True):
                ga, gb = step(k, rg_a, rg_b, first)
                p = k if k else 1.0                  # y = sum (k a b)^p
                inner = k * A * B
                d = p * inner ** (p - 1)             # dy/d(inner)
                if rg_a:
                    np.testing.assert_allclose(ga.numpy(), d * k * B, rtol=1e-13)
                else:
                    assert ga is None
                if rg_b:
                    np.testing.assert_allclose(gb.numpy(), d * k * A, rtol=1e-13)
                else:
                    assert gb is None
    ga, gb = step(2.0, True, True, False, tg.float32)  # same ops and places, float32
    assert ga.dtype == tg.float32 and gb.dtype == tg.float32
    np.testing.assert_allclose(ga.numpy(), 8 * A * B * B, rtol=1e-6)


def test_a_kept_value_follows_the_step_that_keeps_it():
    """The same places on the tape keep a's value in one step and not in another: a * b
    keeps a's value only while b requires grad (d/db = a). Changing a in place after the
    record then raises at backward exactly when it was kept, and the grads are right."""
    for rg_b in (True, False, True, False):
        a = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
        b = tg.tensor(np.array([3.0, 4.0]), requires_grad=rg_b)
        y = (a * b).sum()
        with tg.no_grad():
            a.mul_(2.0)
        if rg_b:
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                y.backward()
        else:
            y.backward()
            np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])
