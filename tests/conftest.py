"""Shared fixtures and helpers for tapegrad's tests.

- ``fd_grad(f, x, eps=1e-6)``: central finite differences of a scalar function of a
  float64 NumPy array (the reference every gradient test compares against).
- ``t64(a, requires_grad=False)``: a float64 tapegrad tensor holding a copy of ``a``; 0-d
  values become Python-float scalars (the scalar fast path).
- ``tape_len()``: the number of records on this thread's tape.
- ``in_fresh_thread(fn, ...)``: runs ``fn`` on a thread of its own (a tape of its own).
- ``rng``: a seeded NumPy generator, fresh per test; ``seed``: seeds tapegrad's generator.
- ``still_works()``: after an error, a small backward must give the right gradient.

The ``isolated`` fixture (applied with ``pytestmark`` by the test modules that want it)
starts each test on a fresh tape of its own thread, as a fresh process would: a graph another test left pending must not decide whether this one passes. What a
tape shared with a pending graph does is tested on purpose, in
test_walkthrough.py::test_network_after_an_unrelated_graph.
"""
import os
import tempfile

import numpy as np
import pytest

# One Numba cache for the whole run, so the kernels compile once (set before tapegrad loads).
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "tg_numba_cache"))

import tapegrad as tg  # noqa: E402


def fd_grad(f, x, eps=1e-6):
    """d f / d x by central differences; ``f`` maps a float64 array shaped like ``x`` to a
    float. ``x`` is not modified."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x.copy())
        flat[i] = old - eps
        fm = f(x.copy())
        flat[i] = old
        gflat[i] = (fp - fm) / (2.0 * eps)
    return g


def t64(a, requires_grad=False):
    """A float64 tapegrad tensor holding a copy of ``a``. A 0-d value is made from a Python
    float, ``tg.tensor(1.3, dtype=tg.float64)``: the scalar fast path."""
    a = np.array(a, dtype=np.float64)
    if a.ndim == 0:
        t = tg.tensor(float(a), dtype=tg.float64, requires_grad=requires_grad)
    else:
        t = tg.tensor(a, dtype=tg.float64, requires_grad=requires_grad)
    assert tuple(t.shape) == a.shape and t.dtype is tg.float64
    np.testing.assert_array_equal(t.detach().numpy(), a)
    return t


def thread_state():
    """This thread's grad mode and tape (``tapegrad.state``: a ContextVar or a threading.local)."""
    from tapegrad import state as S
    return S.thread_state() if hasattr(S, "thread_state") else S.state


def tape_len():
    """Number of records on this thread's current tape."""
    return len(thread_state().tape)


def still_works():
    """The library is usable: a fresh small graph differentiates correctly."""
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0], rtol=0, atol=0)
    s = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    (s * s * s).backward()
    assert abs(s.grad.item() - 3 * 1.5 ** 2) < 1e-12
    assert tg.is_grad_enabled()


@pytest.fixture(name="fd_grad")
def _fd_grad_fixture():
    return fd_grad


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def seed():
    tg.manual_seed(1234)
    return 1234


def _fresh_tape():
    """This thread records on a new, empty tape (skipped if tapegrad's state no longer has
    this shape: the tests still run, only less isolated)."""
    try:
        from tapegrad.tape import Tape
        thread_state().tape = Tape()
    except (ImportError, AttributeError, TypeError):
        pass


def _torch_single_thread():
    """PyTorch (the reference) on one thread: on a loaded 2-core machine its spinning worker
    threads make the small side-by-side runs 20x slower, and one thread is deterministic."""
    import sys
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@pytest.fixture
def isolated():
    """Used by every test of test_ops/test_walkthrough/test_errors/test_invariants: a fresh
    tape, PyTorch on one thread, and grad mode on at the start and (checked) at the end."""
    _fresh_tape()
    _torch_single_thread()
    assert tg.is_grad_enabled()
    yield
    _torch_single_thread()
    leaked = not tg.is_grad_enabled()
    tg.set_grad_enabled(True)
    assert not leaked, "the test left grad mode off"


def in_fresh_thread(fn, *args, **kwargs):
    """Runs ``fn`` in a new thread, which records on a tape of its own (as a fresh process
    would), and returns its result or re-raises its exception."""
    import threading
    box = {}

    def run():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller)
            box["error"] = e
    th = threading.Thread(target=run)
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
