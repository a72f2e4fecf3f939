"""``backward()`` and grad mode (``no_grad``, ``enable_grad``, ``set_grad_enabled``).

backward validates the seeds, freezes the tape into typed arrays, runs the one Numba
reverse sweep, checks that nothing the sweep read was changed or freed, and then adds the
adjoints of the reached leaves (and retained tensors) into their persistent ``.grad``.
"""
import functools
import re

import numpy as np

from .kernels import GO, NEEDS_TABLE, SIZE, reverse_sweep
from .ops import BINARY_LAST, FREED, LEAF, CONST, MM, SCALAR, node_name
from .state import thread_state
from .tape import Tape
from .tensor import Tensor, _array, _new, _round, _shape

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or "
               "if you need to access saved tensors after calling backward.")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates d(sum of tensors * grad_tensors)/d(leaf) into each reached leaf's .grad."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    if create_graph:
        raise NotImplementedError("tapegrad: create_graph=True (higher-order gradients) is not "
                                  "supported")
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(tensors, grad_tensors))]
    only = None if inputs is None else {id(t) for t in
                                        ([inputs] if isinstance(inputs, Tensor) else inputs)}
    by_tape = {}
    for t, seed in seeds:
        if t._tape is None:                       # backward on a leaf itself
            if only is None or id(t) in only:
                _accumulate(t, seed)
            continue
        by_tape.setdefault(id(t._tape), (t._tape, []))[1].append((t._slot, seed))
    for tape, roots in by_tape.values():
        _sweep(tape, roots, bool(retain_graph), only)


def _seed(i, t, g):
    if not isinstance(t, Tensor) or not t._rg:
        raise RuntimeError(f"element {i} of tensors does not require grad and does not have "
                           "a grad_fn")
    shape = _shape(t)
    if g is None:
        if t.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return t, np.ones(shape)
    if not isinstance(g, Tensor):
        from .factory import tensor
        g = tensor(g, dtype=t.dtype)
    if _shape(g) != shape:
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                           f"{_size_repr(_shape(g))} and output[{i}] has a shape of "
                           f"{_size_repr(shape)}.")
    if not g.dtype.is_floating_point:
        raise RuntimeError(f"For complex Tensors, both grad_output and output are required to "
                           f"have the same dtype. Mismatch in dtype: grad_output[{i}] has a "
                           f"dtype of {g.dtype} and output[{i}] has a dtype of {t.dtype}."
                           .replace("tapegrad.", "torch."))
    return t, np.asarray(_array(g), np.float64)


def _size_repr(shape):
    return f"torch.Size({list(shape)})"


def _sweep(tape, roots, retain_graph, only):
    if tape.freed is True:
        raise RuntimeError(SECOND_TIME)
    R, sv, m, M, av, gsize = tape.freeze()
    n = R.shape[0]
    sg = np.zeros(n)
    ag = np.zeros(gsize)
    reach = np.zeros(n, np.uint8)
    for slot, seed in roots:
        r = slot // 5
        reach[r] = 1
        _adjoint(r, m, M, sg, ag)[:] += seed.ravel()
    reverse_sweep(R, sv, sg, m, M, av, ag, reach, max(s for s, _ in roots) // 5, 0,
                  NEEDS_TABLE)
    _check(tape, R, reach)
    _scatter(tape.leaves, lambda node: node.variable, m, M, sg, ag, reach, only)
    _scatter(tape.retained,
             lambda ref, tape=tape: _retaining(ref(), tape), m, M, sg, ag, reach, only)
    if not retain_graph:
        tape.free(reach)
        st = thread_state()
        if tape.freed is True and st.tape is tape:
            st.tape = Tape()


def _retaining(t, tape):
    return t if t is not None and t._tape is tape else None


def _scatter(targets, tensor_of, m, M, sg, ag, reach, only):
    """Adds the adjoint of each reached slot in ``targets`` into its tensor's .grad."""
    if not targets:
        return
    rows = np.fromiter(targets.keys(), np.int64, len(targets)) // 5
    hit = reach[rows].astype(bool)
    scalar = m[rows] < 0
    values = sg[rows].tolist()
    for (slot, target), r, h, is_scalar, v in zip(targets.items(), rows.tolist(), hit.tolist(),
                                                  scalar.tolist(), values):
        if not h:
            continue
        t = tensor_of(target)
        if t is None or (only is not None and id(t) not in only) or t._slot != slot \
                and t._tape is not None:
            continue
        if is_scalar and type(t._v) is float:
            _accumulate_scalar(t, v)
        else:
            _accumulate(t, _adjoint(r, m, M, sg, ag))


def _adjoint(r, m, M, sg, ag):
    k = m[r]
    if k < 0:
        return sg[r:r + 1]
    return ag[M[k, GO]:M[k, GO] + M[k, SIZE]]


def _check(tape, R, reach):
    """Raises PyTorch's errors for a sweep that read freed or modified values."""
    ops = R[:, 0].astype(np.int64) % SCALAR
    if isinstance(tape.freed, np.ndarray):
        if (tape.freed & (reach[:len(tape.freed)] > 0)).any():
            raise RuntimeError(SECOND_TIME)
    if ((ops == FREED) & (reach > 0)).any():
        raise RuntimeError(SECOND_TIME)
    for consumer, slot, cell, version, array in tape.saved:
        if reach[consumer // 5] and cell[0] != version:
            _raise_modified(tape, slot, array.shape, array.dtype, cell[0], version)
    for slot in tape.dirty:
        need = NEEDS_TABLE[ops]
        binary = (ops <= BINARY_LAST) | (ops == MM)
        here = np.arange(len(ops)) * 5
        users = (((R[:, 1] == slot) & (need & 1 > 0))
                 | ((R[:, 2] == slot) & (need & 2 > 0) & binary)
                 | ((here == slot) & (need & 4 > 0)))
        if (users & (reach > 0)).any():
            dt = np.float32 if R[slot // 5, 0] < 0 else np.float64
            _raise_modified(tape, slot, (), dt, "a newer version", "the recorded one", dt=None)


def _raise_modified(tape, slot, shape, dtype, now, expected, dt=True):
    kind = "FloatTensor" if np.dtype(dtype) == np.float32 else "DoubleTensor"
    op = tape.op_of(slot)
    where = ""
    if op not in (LEAF, CONST):
        a, _ = tape.operands(slot)
        where = ", which is output 0 of " + re.sub(r"Backward\d+$", "", node_name(op, a, -1))
    version = (f"is at version {now}; expected version {expected} instead" if dt else
               "was changed in place after it was used")
    raise RuntimeError("one of the variables needed for gradient computation has been "
                       f"modified by an inplace operation: [tapegrad.{kind} {list(shape)}]"
                       f"{where}, {version}. Hint: enable anomaly detection to find the "
                       "operation that failed to compute its gradient, with "
                       "torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _accumulate_scalar(t, v):
    """t.grad += v for a Python-float leaf: its grad is a Python-float tensor too."""
    g = t._grad
    if g is None:
        t._grad = _new(_round(v, t._dtype), t._dtype)
    elif type(g._v) is float:
        g._v = _round(g._v + v, g._dtype)
    else:
        np.add(g._v, v, out=g._v, casting="unsafe")


def _accumulate(t, g):
    """t.grad += g, allocating t.grad (in t's dtype and shape) the first time."""
    g = np.asarray(g).reshape(_shape(t))
    if t._grad is None:
        t._grad = _new(np.array(g, t._dtype.np), t._dtype)
    else:
        gv = t._grad._v
        if type(gv) is not np.ndarray:          # a grad assigned by the user as a scalar
            t._grad = _new(np.array(gv + g, t._dtype.np), t._dtype)
        else:
            np.add(gv, g, out=gv, casting="unsafe")


# ----- grad mode ---------------------------------------------------------------------
class _GradMode:
    """Sets grad mode inside a ``with`` block or a decorated function, per thread."""
    mode = True

    def __enter__(self):
        self._prev = thread_state().enabled
        thread_state().enabled = self.mode

    def __exit__(self, *exc):
        thread_state().enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Operations inside record nothing: ``with tg.no_grad(): w.sub_(lr * w.grad)``."""
    mode = False


class enable_grad(_GradMode):
    mode = True


class set_grad_enabled(_GradMode):
    """``tg.set_grad_enabled(False)`` switches grad mode now, or for a ``with`` block."""

    def __init__(self, mode):
        self._prev = thread_state().enabled
        self.mode = bool(mode)
        thread_state().enabled = self.mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        thread_state().enabled = self._prev
        return False

    def __call__(self, fn):
        thread_state().enabled = self._prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled():
    return thread_state().enabled

