"""tg.compile: a recorded tape replayed at new inputs gives what the eager run gives."""
import gc
import weakref

import numpy as np
import pytest

import tapegrad as tg


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 3))
    Y = X @ np.array([[0.2], [-1.3], [-0.5]]) + rng.standard_normal((100, 1))
    return X, Y, rng.standard_normal((3, 32)), rng.standard_normal((32, 1))


def _train(compiled, epochs=30, dtype=tg.float64):
    X, Y, W1, W2 = _data()
    x = tg.tensor(X, dtype=dtype)
    y = tg.tensor(Y, dtype=dtype)
    w1 = tg.tensor(W1, dtype=dtype, requires_grad=True)
    w2 = tg.tensor(W2, dtype=dtype, requires_grad=True)
    b1 = tg.zeros(1, 32, dtype=dtype, requires_grad=True)
    b2 = tg.zeros(1, 1, dtype=dtype, requires_grad=True)

    def loss_of(w1, b1, w2, b2):
        return (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()

    loss_fn = tg.compile(loss_of) if compiled else loss_of
    losses, grads = [], []
    for _ in range(epochs):
        loss = loss_fn(w1, b1, w2, b2)
        loss.backward()
        losses.append(loss.item())
        grads.append([w.grad.numpy().copy() for w in (w1, b1, w2, b2)])
        with tg.no_grad():
            for w in (w1, b1, w2, b2):
                w.sub_(1e-4 * w.grad)
                w.grad.zero_()
    return losses, grads, loss_fn


def test_walkthrough_loop_compiled_matches_eager():
    eager_losses, eager_grads, _ = _train(False)
    losses, grads, fn = _train(True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12)
    for ge, gc_ in zip(eager_grads, grads):
        for a, b in zip(ge, gc_):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    stats = fn.stats()
    assert stats["recordings"] == 1 and stats["replays"] == 29
    assert stats["kept"][0]["records"] > 0 and stats["kept"][0]["bytes"] > 0


def test_compiled_float32_close_to_eager():
    eager_losses, _, _ = _train(False, 10, tg.float32)
    losses, _, _ = _train(True, 10, tg.float32)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)


def test_captured_tensor_changed_in_place_is_seen():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64)
    w = tg.tensor([3.0, 4.0], dtype=tg.float64, requires_grad=True)
    f = tg.compile(lambda w: (w * x).sum())
    assert f(w).item() == 11.0
    with tg.no_grad():
        x.mul_(2)
    out = f(w)
    assert out.item() == 22.0
    out.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])


def test_rebound_global_records_again():
    global _captured
    _captured = tg.tensor([1.0, 2.0], dtype=tg.float64)
    w = tg.tensor([3.0, 4.0], dtype=tg.float64, requires_grad=True)
    f = tg.compile(lambda w: (w * _captured).sum())
    assert f(w).item() == 11.0
    _captured = tg.tensor([0.0, 1.0], dtype=tg.float64)
    assert f(w).item() == 4.0
    assert f.stats()["recordings"] == 2


def test_rebound_closure_variable_records_again():
    captured = tg.tensor([1.0, 2.0], dtype=tg.float64)
    w = tg.tensor([3.0, 4.0], dtype=tg.float64, requires_grad=True)
    f = tg.compile(lambda w: (w * captured).sum())
    for _ in range(3):
        assert f(w).item() == 11.0
    captured = tg.tensor([0.0, 1.0], dtype=tg.float64)   # the closure cell now holds another
    assert f(w).item() == 4.0
    assert f.stats()["recordings"] == 2


def test_deleted_global_runs_eagerly_and_raises_as_eager():
    global _gone
    _gone = tg.tensor([1.0, 2.0], dtype=tg.float64)
    w = tg.tensor([3.0, 4.0], dtype=tg.float64, requires_grad=True)
    f = tg.compile(lambda w: (w * _gone).sum())
    for _ in range(3):
        assert f(w).item() == 11.0
    del _gone
    with pytest.raises(NameError):
        f(w)


def test_python_branch_on_a_tensor_value_is_guarded():
    def f(x):
        if x.sum() > 0:          # a branch the tape cannot hold
            return (x * x).sum()
        return (x * 3).sum()

    g = tg.compile(f)
    for values in ([1.0, 2.0], [-1.0, -2.0], [3.0, -1.0], [-5.0, 1.0]):
        x = tg.tensor(values, dtype=tg.float64, requires_grad=True)
        out = g(x)
        out.backward()
        xe = tg.tensor(values, dtype=tg.float64, requires_grad=True)
        oe = f(xe)
        oe.backward()
        assert out.item() == oe.item()
        np.testing.assert_array_equal(x.grad.numpy(), xe.grad.numpy())
    assert g.stats()["guard_failures"] >= 2


def test_item_inside_is_guarded():
    g = tg.compile(lambda x: x * float(x.sum().item() > 1.0))
    assert g(tg.tensor([2.0], dtype=tg.float64, requires_grad=True)).item() == 2.0
    assert g(tg.tensor([0.5], dtype=tg.float64, requires_grad=True)).item() == 0.0


def test_elementwise_branches_need_no_guard():
    f = tg.compile(lambda x: (x.relu() + x.abs() + x.clamp(min=-0.5) +
                              tg.where(x > 0, x, x * 2)).sum())
    rng = np.random.default_rng(3)
    for _ in range(5):
        v = rng.standard_normal(7)
        x = tg.tensor(v, dtype=tg.float64, requires_grad=True)
        out = f(x)
        out.backward()
        xe = tg.tensor(v, dtype=tg.float64, requires_grad=True)
        oe = (xe.relu() + xe.abs() + xe.clamp(min=-0.5) + tg.where(xe > 0, xe, xe * 2)).sum()
        oe.backward()
        assert abs(out.item() - oe.item()) < 1e-12
        np.testing.assert_allclose(x.grad.numpy(), xe.grad.numpy(), rtol=1e-12)
    assert f.stats()["recordings"] == 1 and f.stats()["guard_failures"] == 0


def test_scalar_graph_compiled():
    def horner(x, *cs):
        acc = cs[0]
        for c in cs[1:]:
            acc = acc * x + c
        return acc

    f = tg.compile(horner)
    rng = np.random.default_rng(5)
    for _ in range(3):
        vals = rng.standard_normal(50)
        xv = float(rng.uniform(-1, 1))
        x = tg.tensor(xv, dtype=tg.float64, requires_grad=True)
        cs = [tg.tensor(float(v), dtype=tg.float64, requires_grad=True) for v in vals]
        out = f(x, *cs)
        out.backward()
        want = np.polyval(vals, xv)
        dwant = np.polyval(np.polyder(vals), xv)
        assert abs(out.item() - want) < 1e-12 * max(1, abs(want))
        assert abs(x.grad.item() - dwant) < 1e-10 * max(1, abs(dwant))
        np.testing.assert_allclose([c.grad.item() for c in cs],
                                   xv ** np.arange(49, -1, -1), rtol=1e-12)
    assert f.stats()["recordings"] == 1


def test_new_signature_records_again_and_cache_is_bounded():
    f = tg.compile(lambda x: (x * 2).sum(), cache_size=2)
    for n in (2, 3, 4, 2):
        x = tg.ones(n, dtype=tg.float64, requires_grad=True)
        assert f(x).item() == 2.0 * n
    assert len(f.stats()["kept"]) == 2
    assert f.stats()["recordings"] == 4


def test_wrong_input_gives_the_eager_error():
    f = tg.compile(lambda a, b: a.mm(b))
    a = tg.ones(2, 3, requires_grad=True)
    f(a, tg.ones(3, 4))
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        f(a, tg.ones(4, 5))


def test_outputs_of_earlier_calls_keep_their_values_and_graph():
    f = tg.compile(lambda w: (w * w).sum())
    ws = [tg.tensor([1.0 + i, 2.0 + i], dtype=tg.float64, requires_grad=True)
          for i in range(3)]
    outs = [f(w) for w in ws]                # a recording, then two replays
    assert [o.item() for o in outs] == [5.0, 13.0, 25.0]
    for o in reversed(outs):
        o.backward()
    for i, w in enumerate(ws):
        np.testing.assert_array_equal(w.grad.numpy(), [2.0 + 2 * i, 4.0 + 2 * i])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        outs[1].backward()


def test_input_changed_in_place_before_backward_raises():
    f = tg.compile(lambda w: (w * w).sum())
    f(tg.ones(2, dtype=tg.float64, requires_grad=True))
    w = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    out = f(w)
    with tg.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_listing_shows_one_record_a_line():
    f = tg.compile(lambda w: (w * 2).exp().sum())
    f(tg.ones(3, dtype=tg.float64, requires_grad=True))
    text = f.listing()
    assert "mul(" in text and "exp(" in text and "sum(" in text
    assert len(text.splitlines()) == f.stats()["kept"][0]["records"]


def test_recording_memory_released_with_the_function():
    f = tg.compile(lambda w: (w * 2).sum())
    f(tg.ones(1000, dtype=tg.float64, requires_grad=True))
    rec = weakref.ref(next(iter(f.recordings.values())))
    del f
    gc.collect()
    assert rec() is None


# ----- guards found missing or wrong (colleagues' reports) --------------------------------
def test_item_of_a_0d_value_guards_without_recording_again():
    """A guard on a 0-d array value (a sum) holds at every replay whose value is the
    recorded one: it used to compare a 1-element array with the recorded 0-d value and
    fail, so every call recorded again."""
    f = tg.compile(lambda x: x * 2.0 if x.sum().item() > 0 else x * 3.0)
    # the same sum (3.0) each time, then another (-3.0), then 3.0 again
    for v in ([1.0, 2.0], [2.0, 1.0], [0.5, 2.5], [-1.0, -2.0], [-2.0, -1.0], [1.5, 1.5]):
        x = tg.tensor(v, dtype=tg.float64, requires_grad=True)
        out = f(x)
        np.testing.assert_array_equal(out.detach().numpy(),
                                      np.array(v) * (2.0 if sum(v) > 0 else 3.0))
    assert f.stats()["recordings"] == 3 and f.stats()["guard_failures"] == 2
    assert f.stats()["replays"] == 3
    f2 = tg.compile(lambda x: x * 2.0 if bool(x.sum() > 0) else x * 3.0)
    for v in ([1.0, 2.0], [3.0, 4.0], [0.5, 0.25], [-1.0, -2.0], [-3.0, 1.0], [2.0, 2.0]):
        out = f2(tg.tensor(v, dtype=tg.float64, requires_grad=True))
        np.testing.assert_array_equal(out.detach().numpy(),
                                      np.array(v) * (2.0 if sum(v) > 0 else 3.0))
    s = f2.stats()       # the guard is on the 0-d comparison: one failure per branch change
    assert s["recordings"] == 3 and s["guard_failures"] == 2 and s["replays"] == 3


def test_integer_tensor_argument_as_index_is_guarded():
    """x[t] with an integer tensor argument t: the indices are part of the recording, so a
    call with other indices records again instead of gathering the old positions."""
    x = tg.tensor([10.0, 11.0, 12.0, 13.0], dtype=tg.float64, requires_grad=True)
    f = tg.compile(lambda x, t: x[t] * 1.0)
    g = tg.compile(lambda x, t: x.index_select(0, t) * 1.0)
    for idx in ([0, 2], [0, 2], [1, 1], [3, 0], [3, 0]):
        t = tg.tensor(idx)
        want = [10.0 + i for i in idx]
        assert f(x, t).tolist() == want
        assert g(x, t).tolist() == want
    for h in (f, g):         # one recording per signature kept: a new index records again
        s = h.stats()
        assert s["guard_failures"] == 2 and s["recordings"] == 3 and s["replays"] == 2
    k = tg.compile(lambda x, i: x[i] * 1.0)          # a 0-d integer tensor index
    assert [k(x, tg.tensor(i)).item() for i in (2, 0, 2)] == [12.0, 10.0, 12.0]


def test_item_of_an_input_leaf_is_guarded():
    """item() / tolist() called directly on an argument (not yet on the recording) keeps
    its value as a guard: the compiled function used to return 2, 2 for inputs 1 and 3."""
    f = tg.compile(lambda x: tg.tensor(x.item()) * 2)
    assert [f(tg.tensor(float(v))).item() for v in (1, 3, 3, 1)] == [2.0, 6.0, 6.0, 2.0]
    assert f.stats()["guard_failures"] == 2 and f.stats()["replays"] == 1
    g = tg.compile(lambda x: tg.tensor(x.tolist()) * 2)
    assert g(tg.tensor([1.0, 2.0])).tolist() == [2.0, 4.0]
    assert g(tg.tensor([3.0, 5.0])).tolist() == [6.0, 10.0]
    w = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    h = tg.compile(lambda w, c: w * c.numpy().sum())       # numpy() of a captured constant
    for c in ([1.0, 1.0], [2.0, 5.0]):
        assert h(w, tg.tensor(c, dtype=tg.float64)).tolist() == [sum(c), 2 * sum(c)]


def test_backward_of_a_replay_with_deferred_leaves_elsewhere():
    """A replayed call's backward goes the engine's general way when some leaf anywhere
    keeps its grad in Python (hooks): it must still sweep every family of the tape (here
    log_softmax, of the sweep's full tier)."""
    other = tg.ones(2, requires_grad=True)
    other.register_hook(lambda g: g)
    w = tg.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype=tg.float64, requires_grad=True)
    f = tg.compile(lambda w: -(w.log_softmax(1)[:, 0]).sum())
    for _ in range(3):
        w.grad = None
        f(w).backward()
        we = tg.tensor(w.detach().numpy(), dtype=tg.float64, requires_grad=True)
        (-(we.log_softmax(1)[:, 0]).sum()).backward()
        np.testing.assert_allclose(w.grad.numpy(), we.grad.numpy(), rtol=1e-12)
    assert f.stats()["replays"] == 2
    del other
