"""Memory: long loops hold flat resident memory; dropping tensors and compiled functions
frees the tape storage behind them.

Resident memory is read from /proc/self/statm (Linux; elsewhere these tests skip). A
reading is taken after a warm-up (arenas, caches, Numba's compiled code and NumPy's pools
are in place by then) and again at the end; the growth between them is bounded in MB and
printed (``pytest -s`` shows the figures; they are also recorded as test properties).
"""
import gc
import math
import os
import time
import tracemalloc
import weakref

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.state import thread_state

from conftest import still_works

pytestmark = pytest.mark.usefixtures("isolated")   # a fresh tape per test (tests/conftest.py)

MB = 2.0 ** 20


def rss_mb():
    """Resident set size of this process in MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
    except OSError:
        pytest.skip("no /proc/self/statm")


def _settled_rss():
    gc.collect()
    return rss_mb()


def _report(record_property, name, **figures):
    for k, v in figures.items():
        record_property(f"{name}.{k}", v)
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# ----- the walkthrough loop, 10,000 iterations ------------------------------------------------
def _network():
    rng = np.random.default_rng(7)
    x = tg.tensor(rng.standard_normal((100, 3)), dtype=tg.float32)
    y = tg.tensor(rng.standard_normal((100, 1)), dtype=tg.float32)
    params = [tg.tensor(rng.standard_normal((3, 32)), dtype=tg.float32, requires_grad=True),
              tg.zeros(1, 32, requires_grad=True),
              tg.tensor(rng.standard_normal((32, 1)), dtype=tg.float32, requires_grad=True),
              tg.zeros(1, 1, requires_grad=True)]
    return x, y, params


def _step(x, y, params, lr=1e-4):
    w1, b1, w2, b2 = params
    y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with tg.no_grad():
        for w in params:
            w.sub_(lr * w.grad)
            w.grad.zero_()
    return loss


WALK_ITERS, WALK_WARMUP, WALK_BOUND_MB = 10_000, 1_000, 8.0


def test_walkthrough_loop_10000_iterations_holds_flat_memory(record_property):
    x, y, params = _network()
    t0 = time.perf_counter()
    first = _step(x, y, params).item()
    for _ in range(WALK_WARMUP - 1):
        _step(x, y, params)
    start = _settled_rss()
    samples = []
    longest = 0
    for i in range(WALK_ITERS - WALK_WARMUP):
        loss = _step(x, y, params)
        longest = max(longest, len(thread_state().tape))
        if (i + 1) % 1000 == 0:
            samples.append(round(_settled_rss() - start, 2))
    growth = _settled_rss() - start
    _report(record_property, "walkthrough", iterations=WALK_ITERS, warmup=WALK_WARMUP,
            start_mb=round(start, 1), growth_mb=round(growth, 2),
            growth_per_1000=samples, seconds=round(time.perf_counter() - t0, 1))
    assert loss.item() < first                       # it trained
    assert longest == 0                              # the tape is freed after each backward
    assert growth < WALK_BOUND_MB, samples
    # it stopped growing: the second half adds no more than noise
    assert samples[-1] - samples[len(samples) // 2] < WALK_BOUND_MB / 2, samples


# ----- a 10k-op scalar graph, 1,000 iterations ------------------------------------------------
SCALAR_OPS, SCALAR_ITERS, SCALAR_WARMUP, SCALAR_BOUND_MB = 10_000, 1_000, 100, 8.0


def _scalar_graph(ws, rounds):
    a, b, c, d = ws
    h = a
    for _ in range(rounds):                       # 4 records a round
        h = (h * b + c).tanh() * d
    return h * h


def test_scalar_graph_10k_ops_1000_iterations_holds_flat_memory(record_property):
    ws = [tg.tensor(v, dtype=tg.float64, requires_grad=True) for v in (0.3, -0.2, 0.5, 0.9)]
    rounds = SCALAR_OPS // 4
    t0 = time.perf_counter()
    loss = _scalar_graph(ws, rounds)
    loss.backward()
    grads = [w.grad.item() for w in ws]
    assert all(math.isfinite(g) for g in grads) and any(g != 0 for g in grads)
    start = None
    samples = []
    for i in range(SCALAR_ITERS):
        loss = _scalar_graph(ws, rounds)
        loss.backward()
        with tg.no_grad():
            for w in ws:
                w.sub_(0.01 * w.grad)
                w.grad.zero_()
        if i + 1 == SCALAR_WARMUP:
            start = _settled_rss()
        elif i + 1 > SCALAR_WARMUP and (i + 1) % 100 == 0:
            samples.append(round(_settled_rss() - start, 2))
    growth = _settled_rss() - start
    _report(record_property, "scalar_graph", ops=4 * rounds + 1, iterations=SCALAR_ITERS,
            warmup=SCALAR_WARMUP, start_mb=round(start, 1), growth_mb=round(growth, 2),
            growth_per_100=samples, seconds=round(time.perf_counter() - t0, 1))
    assert len(thread_state().tape) == 0
    assert growth < SCALAR_BOUND_MB, samples
    assert samples[-1] - samples[len(samples) // 2] < SCALAR_BOUND_MB / 2, samples


# ----- dropping tensors frees their tape --------------------------------------------------------
def _big_graph(n=100_000, ops=10):
    x = tg.tensor(np.linspace(-1, 1, n), dtype=tg.float64, requires_grad=True)
    y = x
    for _ in range(ops):
        y = (y * 1.01).sin()              # sin saves its input: ops arrays of n floats kept
    return x, y.sum()


def test_tape_is_collected_when_its_tensors_are_dropped_after_backward():
    x, loss = _big_graph()
    ref = weakref.ref(loss._tape)
    loss.backward()
    assert x.grad is not None
    del loss
    gc.collect()
    assert ref() is None
    assert thread_state().tape is not None
    still_works()


def test_retained_graph_is_freed_when_its_tensors_are_dropped():
    tracemalloc.start()
    try:
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        x, loss = _big_graph()
        loss.backward(retain_graph=True)
        ref = weakref.ref(loss._tape)
        held = tracemalloc.get_traced_memory()[0] - base
        del x, loss
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held > 8 * MB                 # ten saved arrays of 100,000 float64
    assert left < 1 * MB, left / MB
    assert ref() is None
    still_works()


def test_pending_graph_is_freed_when_its_tensors_are_dropped():
    """A graph never backwarded belongs to its tensors, as in PyTorch: dropped with them."""
    tracemalloc.start()
    try:
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        x, loss = _big_graph()
        held = tracemalloc.get_traced_memory()[0] - base
        del x, loss
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held > 8 * MB
    assert left < 1 * MB, f"{left / MB:.1f} MB still held"


def test_small_backward_after_a_dropped_graph_allocates_little():
    """Buffers are sized by what a backward reaches, not by the whole tape."""
    x, loss = _big_graph()
    del x, loss
    gc.collect()
    a = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    out = (a * a).sum()
    tracemalloc.start()
    try:
        out.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert a.grad.tolist() == [2.0, 4.0]
    assert peak < 1 * MB, f"peak {peak / MB:.1f} MB"


def test_compiled_function_dropped_frees_its_tapes():
    def loss_of(w, b):
        return ((w * 2.0).sin() + b).pow(2).sum()

    f = tg.compile(loss_of)
    w = tg.tensor(np.linspace(-1, 1, 50_000), dtype=tg.float64, requires_grad=True)
    b = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    outs = [f(w, b) for _ in range(3)]            # one recording, two replays
    assert f.stats()["recordings"] == 1 and f.stats()["replays"] == 2
    refs = [weakref.ref(o._tape) for o in outs]
    refs += [weakref.ref(r.tape) for r in f.recordings.values()]
    refs.append(weakref.ref(f))
    for o in outs:
        o.backward()
    grad = w.grad.numpy().copy()
    del f, outs, o
    gc.collect()
    assert all(r() is None for r in refs), [r() is not None for r in refs]
    np.testing.assert_array_equal(w.grad.numpy(), grad)     # the grads stay
    still_works()


def test_compiled_function_in_a_loop_holds_flat_memory(record_property):
    x, y, params = _network()

    def loss_of(w1, b1, w2, b2):
        return (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()

    f = tg.compile(loss_of)

    def step():
        loss = f(*params)
        loss.backward()
        with tg.no_grad():
            for w in params:
                w.sub_(1e-4 * w.grad)
                w.grad.zero_()
        return loss

    first = step().item()
    for _ in range(499):
        step()
    start = _settled_rss()
    for _ in range(2000):
        loss = step()
    growth = _settled_rss() - start
    _report(record_property, "compiled_walkthrough", iterations=2500, growth_mb=round(growth, 2))
    assert loss.item() < first
    assert f.stats()["recordings"] == 1
    assert growth < 4.0


def test_pending_graphs_dropped_one_by_one_do_not_grow_the_tape():
    """Graphs recorded and never backwarded, each dropped before the next (``del``): the
    tape starts over once no tensor refers to it."""
    w = tg.tensor(np.ones((3, 4)), dtype=tg.float64, requires_grad=True)
    x = tg.tensor(np.ones((8, 3)), dtype=tg.float64)
    longest = 0
    for i in range(8000):
        loss = x.mm(w).tanh().sum()
        longest = max(longest, len(thread_state().tape))
        del loss
    # the size check may land mid-expression (a live intermediate): within twice the check
    assert longest <= 2 * (1 << 14) // 5 + 10, longest
    still_works()


def test_evaluation_loop_without_no_grad_holds_flat_memory(record_property, monkeypatch):
    """An evaluation loop that forgets no_grad: 'out = model(x)' each iteration, never
    backwarded, the previous out dropped only by the next assignment (so each graph is
    recorded while the last one still holds the tape). The tape (and the dead graphs'
    saved arrays on it) must stop growing: a tape holding more than ``Tape.LIMIT`` bytes
    of records and saved values is replaced (set to 1 MiB here; 64 MiB by default).
    (Found: the tape grew without bound, ~25 KB an iteration, 1.5 GB after 60,000.)"""
    from tapegrad.tape import Tape
    monkeypatch.setattr(Tape, "LIMIT", 1 << 20)
    w = tg.tensor(np.ones((3, 32)), dtype=tg.float64, requires_grad=True)
    x = tg.tensor(np.ones((100, 3)), dtype=tg.float64)
    longest = longest_bytes = 0
    start = None
    for i in range(12_000):
        out = x.mm(w).tanh().sum()        # the previous out is dropped only here
        tape = thread_state().tape
        longest = max(longest, len(tape))
        longest_bytes = max(longest_bytes, tape.nbytes + len(tape.rec))
        del tape
        if i == 6_000:                    # the tape has been replaced a few times by now
            start = _settled_rss()
    growth = _settled_rss() - start
    _report(record_property, "eval_loop_without_no_grad", iterations=12_000,
            longest_tape=longest, growth_mb=round(growth, 1))
    del out
    assert longest_bytes <= (1 << 20) + 64 * 1024, longest_bytes   # the limit + one graph
    assert longest <= 2 * (1 << 14) // 5 + 10, longest
    assert growth < 4.0, growth
