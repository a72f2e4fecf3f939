"""Threads: each thread records on a tape of its own; two networks trained at once in two
threads give bit-for-bit what they give one after the other; grad mode is per thread; a
tensor made in one thread can be used in another.

The sweep is jitted with ``nogil=True``, so two backwards really run at the same time: a
shared arena or scratch buffer would show up here as a wrong number.
"""
import math
import sys
import threading

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.state import thread_state

from conftest import still_works

pytestmark = pytest.mark.usefixtures("isolated")   # a fresh tape per test (tests/conftest.py)


@pytest.fixture
def fast_switching():
    """Switch threads every microsecond (default 5 ms): interleaves the Python halves of
    recording and backward as finely as the interpreter allows."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _run_threads(fns, barrier=None):
    """Runs each fn(barrier) in a thread of its own, all started together; returns their
    results in order, re-raising the first exception."""
    results = [None] * len(fns)
    errors = []

    def target(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            errors.append(e)
            if barrier is not None:
                barrier.abort()
    threads = [threading.Thread(target=target, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ----- the walkthrough network --------------------------------------------------------------
def _data(seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 3))
    Y = X @ np.array([[0.2], [-1.3], [-0.5]]) + 0.1 * rng.standard_normal((100, 1))
    params = [rng.standard_normal((3, 32)), np.zeros((1, 32)), rng.standard_normal((32, 1)),
              np.zeros((1, 1))]
    return (tg.tensor(X, dtype=dtype), tg.tensor(Y, dtype=dtype),
            [tg.tensor(p, dtype=dtype, requires_grad=True) for p in params])


def _train(seed, dtype=tg.float64, epochs=60, barrier=None, lr=1e-4):
    """The walkthrough's loop; returns the losses, the final weights and the tapes used."""
    x, y, params = _data(seed, dtype)
    w1, b1, w2, b2 = params
    losses, tapes = [], set()
    for epoch in range(epochs):
        if barrier is not None and epoch % 10 == 0:
            barrier.wait()                          # keep the two threads in lockstep
        y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
        loss = (y_pred - y).pow(2).sum()
        tapes.add(id(loss._tape))
        loss.backward()
        losses.append(loss.item())
        with tg.no_grad():
            for w in params:
                w.sub_(lr * w.grad)
                w.grad.zero_()
    return losses, [w.detach().numpy().copy() for w in params], tapes


def _scalar_train(seed, steps=30, barrier=None):
    """A scalar network (the Python-float fast path): a tiny MLP written with 0-d tensors."""
    rng = np.random.default_rng(seed)
    ws = [tg.tensor(float(v), dtype=tg.float64, requires_grad=True)
          for v in rng.standard_normal(7)]
    data = [(float(a), float(math.sin(a))) for a in rng.uniform(-2, 2, 12)]
    losses = []
    for step in range(steps):
        if barrier is not None and step % 5 == 0 and step < 30:
            barrier.wait()                          # as many waits as _train's six
        loss = None
        for a, t in data:
            h1 = (ws[0] * a + ws[1]).tanh()
            h2 = (ws[2] * a + ws[3]).tanh()
            out = ws[4] * h1 + ws[5] * h2 + ws[6]
            term = (out - t) * (out - t)
            loss = term if loss is None else loss + term
        loss.backward()
        losses.append(loss.item())
        with tg.no_grad():
            for w in ws:
                w.sub_(0.01 * w.grad)
                w.grad.zero_()
    return losses, [w.item() for w in ws]


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32], ids=["float64", "float32"])
def test_two_networks_at_once_equal_one_after_the_other(dtype, fast_switching):
    alone = [_train(1, dtype), _train(2, dtype)]
    barrier = threading.Barrier(2, timeout=60)
    together = _run_threads([lambda: _train(1, dtype, barrier=barrier),
                             lambda: _train(2, dtype, barrier=barrier)], barrier)
    for (la, wa, _), (lt, wt, _) in zip(alone, together):
        assert la == lt                                   # bit for bit
        for a, b in zip(wa, wt):
            np.testing.assert_array_equal(a, b)
    assert alone[0][0][-1] < alone[0][0][0]               # it trained


def test_four_networks_at_once_scalar_and_array(fast_switching):
    alone = [_train(3), _train(4), _scalar_train(5), _scalar_train(6)]
    barrier = threading.Barrier(4, timeout=60)
    together = _run_threads([lambda: _train(3, barrier=barrier),
                             lambda: _train(4, barrier=barrier),
                             lambda: _scalar_train(5, barrier=barrier),
                             lambda: _scalar_train(6, barrier=barrier)], barrier)
    for a, t in zip(alone, together):
        assert a[0] == t[0]
        for x, y in zip(a[1], t[1]):
            np.testing.assert_array_equal(x, y)


def test_each_thread_records_on_its_own_tape():
    barrier = threading.Barrier(2, timeout=60)

    def work(seed):
        x = tg.tensor([float(seed), 2.0], dtype=tg.float64, requires_grad=True)
        barrier.wait()
        y = (x * x).sum()
        mine = thread_state().tape
        barrier.wait()                 # both have recorded before either goes on
        assert y._tape is mine
        n = len(mine)
        y.backward()
        return mine.id, n, x.grad.tolist()    # (an id(), once freed, can come back)

    (ta, na, ga), (tb, nb, gb) = _run_threads([lambda: work(1), lambda: work(3)], barrier)
    assert ta != tb and thread_state().tape.id not in (ta, tb)
    assert na == nb == 3                       # leaf, mul, sum: nothing of the other thread
    assert ga == [2.0, 4.0] and gb == [6.0, 4.0]


def test_the_threads_tapes_are_gone_with_the_threads():
    import gc
    import weakref
    refs = []

    def work():
        x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
        y = (x.exp() * x).sum()
        refs.append(weakref.ref(thread_state().tape))
        refs.append(weakref.ref(y._tape))
        y.backward()
        return x.grad.tolist()

    g = _run_threads([work, work])
    gc.collect()
    assert g[0] == g[1]
    assert all(r() is None for r in refs)


# ----- grad mode is per thread ---------------------------------------------------------------
@pytest.mark.parametrize("how", ["with_no_grad", "set_grad_enabled_call", "decorator"])
def test_no_grad_in_one_thread_does_not_affect_the_other(how, fast_switching):
    barrier = threading.Barrier(2, timeout=60)

    def quiet():
        def body():
            barrier.wait()                     # 1: quiet is in no-grad mode
            assert not tg.is_grad_enabled()
            x = tg.ones(2, requires_grad=True)
            y = x * 2
            barrier.wait()                     # 2: the other thread recorded meanwhile
            return tg.is_grad_enabled(), y.requires_grad
        if how == "with_no_grad":
            with tg.no_grad():
                out = body()
        elif how == "set_grad_enabled_call":
            tg.set_grad_enabled(False)
            try:
                out = body()
            finally:
                tg.set_grad_enabled(True)
        else:
            out = tg.no_grad()(body)()
        return out + (tg.is_grad_enabled(),)

    def loud():
        barrier.wait()                         # 1
        enabled = tg.is_grad_enabled()
        x = tg.ones(2, requires_grad=True)
        y = (x * 3).sum()
        barrier.wait()                         # 2
        y.backward()
        return enabled, y.requires_grad, x.grad.tolist()

    (q_mode, q_rg, q_after), (l_mode, l_rg, l_grad) = _run_threads([quiet, loud], barrier)
    assert (q_mode, q_rg, q_after) == (False, False, True)
    assert (l_mode, l_rg, l_grad) == (True, True, [3.0, 3.0])
    assert tg.is_grad_enabled()


def test_a_new_thread_starts_with_grad_mode_on():
    with tg.no_grad():
        inner = _run_threads([tg.is_grad_enabled])[0]
        assert not tg.is_grad_enabled()
    assert inner is True


def test_an_error_in_a_thread_leaves_grad_mode_here_on():
    def failing():
        with tg.no_grad():
            raise ValueError("in a thread")

    with pytest.raises(ValueError):
        _run_threads([failing])
    assert tg.is_grad_enabled()
    still_works()


# ----- tensors that cross threads ---------------------------------------------------------------
def test_a_result_from_another_thread_backwards_into_its_leaves():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    h = _run_threads([lambda: x.exp()])[0]          # recorded on the other thread's tape
    loss = (h * x).sum()
    loss.backward()
    want = np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-14)


def test_a_leaf_shared_by_two_threads_gets_both_grads_sequentially():
    w = tg.tensor([1.0, -1.0], dtype=tg.float64, requires_grad=True)

    def work(k):
        (w * k).sum().backward()

    _run_threads([lambda: work(2.0)])
    _run_threads([lambda: work(3.0)])
    assert w.grad.tolist() == [5.0, 5.0]


def test_concurrent_backward_into_a_shared_leaf_loses_nothing():
    w = tg.tensor(np.ones(200_000), dtype=tg.float64, requires_grad=True)
    n, threads = 40, 4

    def work():
        for _ in range(n):
            (w * 2.0).sum().backward()

    for _ in range(5):              # a race: a few rounds make a lost update near certain
        w.grad = None
        _run_threads([work] * threads)
        got = np.unique(w.grad.numpy())
        assert got.tolist() == [2.0 * n * threads], got


def test_a_leaf_first_used_by_four_threads_at_once_gets_one_node_and_one_storage(
        fast_switching):
    """A leaf's node and grad storage are made at its first use on a tape: when four
    threads record that first use at once, they must share them. A second storage freed
    the first under another thread's tape, whose backward then wrote into freed memory (an
    interpreter crash, seen here on 49164cc); a second node took another thread's grads."""
    for size in [()] * 20 + [(50_000,)] * 20:
        w = tg.tensor(np.ones(size), dtype=tg.float64, requires_grad=True)
        barrier = threading.Barrier(4)

        def work():
            barrier.wait()
            (w * 2.0).sum().backward()
            return w._node

        nodes = _run_threads([work] * 4)
        assert all(n is w._node for n in nodes)
        assert np.unique(w.grad.numpy()).tolist() == [8.0]


def test_concurrent_backward_into_shared_scalar_leaves(fast_switching):
    """The grads of Python-float leaves live in shared pages: cells handed out to two
    threads at once must not collide."""
    kept = [[] for _ in range(4)]

    def work(k):
        for i in range(1500):
            v = float(i % 7 + 1)
            s = tg.tensor(v, dtype=tg.float64, requires_grad=True)
            (s * s * k).backward()
            kept[k - 1].append((s, 2 * v * k))

    _run_threads([lambda k=k: work(k) for k in (1, 2, 3, 4)])
    wrong = [(s.grad.item(), want) for ks in kept for s, want in ks if s.grad.item() != want]
    assert not wrong, wrong[:5]


def test_one_compiled_function_replayed_by_two_threads_at_once(fast_switching):
    """tg.compile: one recording, replayed concurrently (each call has its own buffers)."""
    def loss_of(w, x):
        return (x.mm(w).tanh() - 0.5).pow(2).sum()

    f = tg.compile(loss_of)

    def train(seed, barrier=None, n=60):
        rng = np.random.default_rng(seed)
        x = tg.tensor(rng.standard_normal((20, 3)), dtype=tg.float64)
        w = tg.tensor(rng.standard_normal((3, 4)), dtype=tg.float64, requires_grad=True)
        losses = []
        for i in range(n):
            if barrier is not None and i % 10 == 0:
                barrier.wait()
            loss = f(w, x)
            loss.backward()
            losses.append(loss.item())
            with tg.no_grad():
                w.sub_(0.01 * w.grad)
                w.grad.zero_()
        return losses, w.detach().numpy().copy()

    train(0, n=1)                     # the recording: every later call is a replay
    alone = [train(1), train(2)]
    barrier = threading.Barrier(2, timeout=60)
    together = _run_threads([lambda: train(1, barrier), lambda: train(2, barrier)], barrier)
    for (la, wa), (lt, wt) in zip(alone, together):
        assert la == lt
        np.testing.assert_array_equal(wa, wt)
    assert f.stats()["recordings"] == 1


def test_the_fast_path_comes_back_when_the_other_threads_are_gone():
    """While a second thread uses tapegrad no tape is live (each operation looks its
    thread's state up); once that thread has ended, this thread's next tape is live again,
    and what it records is right."""
    import gc
    started, release = threading.Event(), threading.Event()

    def other():
        y = tg.tensor(3.0, requires_grad=True)
        (y * y).backward()
        started.set()
        release.wait(10)
        return y.grad.item()

    t = threading.Thread(target=other)
    t.start()
    assert started.wait(10)
    x = tg.tensor(2.0, requires_grad=True)
    (x * x).backward()
    z = x * x * x
    assert not z._tape.live                     # two threads: no fast path
    release.set()
    t.join()
    gc.collect()
    z.backward()                                # the thread's next tape ...
    w = x * x * x
    assert w._tape.live                         # ... is live again
    w.backward()
    assert x.grad.item() == 4.0 + 12.0 + 12.0   # d(x^2) + 2 d(x^3), x = 2


def test_a_context_copied_into_other_threads_does_not_share_this_threads_state():
    """asyncio.to_thread runs its function in a worker thread with a copy of the caller's
    context: the worker gets a state of its own (grad mode, tape), as PyTorch's grad mode
    is per thread. Sharing one would make the threads record on one tape at once."""
    import asyncio

    def work(k):
        x = tg.tensor(np.full(3, float(k)), dtype=tg.float64, requires_grad=True)
        y = x
        for _ in range(500):
            y = y * 1.001 + x * 0.001
        y.sum().backward()
        with tg.no_grad():          # the worker's grad mode, not the caller's
            pass
        return x.grad.tolist(), thread_state()

    async def main():
        with tg.no_grad():          # off here, on (as in any new thread) in the workers
            return thread_state(), await asyncio.gather(
                *[asyncio.to_thread(work, k) for k in range(4)])

    here, results = asyncio.run(main())
    assert tg.is_grad_enabled()
    # y_{n+1} = 1.001 y_n + 0.001 x, y_0 = x: dy_n/dx = 1.001^n + 0.001 (1.001^n - 1) / 0.001
    expect = 1.001 ** 500 + (1.001 ** 500 - 1)
    for grads, st in results:
        assert st is not here
        assert grads == pytest.approx([expect] * 3, rel=1e-12)
