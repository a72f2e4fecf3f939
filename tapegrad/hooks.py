"""Where gradients go: tensor hooks, a leaf's grad storage, and accumulation into .grad.

A leaf's grad lives in storage the sweep writes (``leaves.py``); a leaf with hooks, or a
.grad the user assigned, is "deferred": the engine accumulates it here, in Python, after
its hooks ran (and then runs its post-accumulate hooks).
"""
import threading
import weakref

import numpy as np

from . import dtypes as D
from . import leaves
from .base import TensorBase as Tensor  # noqa: F401
from .face import _array, _new, _shape
from .state import refuse_while_recording

_ACCUMULATE = threading.RLock()   # .grad accumulation, as PyTorch locks AccumulateGrad


def _call_hooks(hooks, adj, shape, dtype):
    """Calls tensor hooks with the gradient; a returned tensor replaces it."""
    g = _new(np.array(adj.reshape(shape), dtype.np), dtype)
    for fn in list(hooks):
        res = fn(g)
        if res is not None:                       # PyTorch's checks, in its order and words
            if not isinstance(res, Tensor):
                raise TypeError(f"expected Variable, but hook returned "
                                f"'{type(res).__name__}'")
            name = getattr(fn, "__name__", "<unknown>")
            if res._dtype is not dtype:
                raise RuntimeError(f"hook '{name}' has changed the type of value (was "
                                   f"{D.tensor_type(dtype)} got {D.tensor_type(res._dtype)})")
            if _shape(res) != shape:
                raise RuntimeError(f"hook '{name}' has changed the size of value")
            g = res
    return np.asarray(_array(g), np.float64)


_DEFERRED = {}   # id -> leaf node the engine accumulates (hooks, a user's grad)


def update_deferred(t):
    """Whether leaf t's grad goes through Python: hooks, post hooks, or a user's grad."""
    node = t._node
    if node is None or node.page is None:
        return
    on = bool(node.hooks or node.post_hooks) or (t._grad is not None and not _owns(node, t._grad))
    leaves.set_deferred(node, on)
    if on:
        _DEFERRED[id(node)] = node
    else:
        _DEFERRED.pop(id(node), None)


def deferred_on(tape):
    """Does a leaf whose grad goes through Python (hooks, a user's grad) belong to this
    tape (as leaves_to_python decides)? A hooked leaf elsewhere, say a parameter of
    another model, does not send every backward down the segmented path, nor does one
    left alive by earlier code send a tg.compile replay there (its leaves are listed)."""
    tid, nodes = tape.id, tape.leaf_nodes
    return any(node.tape_id == tid or node in nodes for node in _DEFERRED.values())


def _owns(node, g):
    """Is grad tensor g a view of the leaf's own grad storage?"""
    v = g._v
    return type(v) is np.ndarray and (v is node.buf or v.base is node.page.raw)


def _accumulate(t, g):
    """t.grad += g: into a leaf's grad storage when its grad is its own (or None), else
    into the tensor its .grad holds (allocated the first time for a non-leaf)."""
    g = np.asarray(g).reshape(_shape(t))
    node = t._node if t._tape is None else None
    if node is None and t._tape is None and t._rg:   # a leaf never used (backward on it):
        node = _leaf_node(t)                         # its storage, which later sweeps fill
    if node is not None and node.page is not None and \
            (t._grad is None or _owns(node, t._grad)):
        leaves.grad_array(node, _shape(t), t._dtype.np)[...] += g
        leaves.mark(node)
        return
    if t._grad is None:
        t._grad = _new(np.array(g, t._dtype.np), t._dtype)
    else:
        gv = t._grad._v
        if type(gv) is not np.ndarray or t._tape is not None:   # a grad the user assigned
            # as a scalar; a retained non-leaf's grad is replaced, as PyTorch's retain_grad
            # hook does (grad + new): a .grad the user holds keeps its values
            t._grad = _new(np.array(gv + g, t._dtype.np), t._dtype)
        else:
            np.add(gv, g, out=gv, casting="unsafe")


def accumulate_hooked(t, g):
    """What a leaf's AccumulateGrad does with g (backward(inputs=...), backward on a leaf):
    its tensor hooks, then t.grad += g, then its post-accumulate hooks."""
    node = t._node if t._tape is None else None
    with _ACCUMULATE:
        if node is not None and node.hooks:
            g = _call_hooks(node.hooks.values(), g, _shape(t), t._dtype)
        _accumulate(t, g)
    if node is not None and node.post_hooks:
        for fn in list(node.post_hooks.values()):
            fn(t)


def flush(pending):
    """The deferred leaves of one backward, once each whatever the tapes it went through
    (PyTorch's AccumulateGrad runs once, on the sum): hooks, accumulation, post hooks."""
    for node, t, g in pending.values():
        with _ACCUMULATE:
            if node.hooks:
                g = _call_hooks(node.hooks.values(), g, _shape(t), t._dtype)
            _accumulate(t, g)
        for fn in list((node.post_hooks or {}).values()):
            fn(t)


def root_hooks(t, g):
    """A leaf root of grad() or backward(inputs=...) that is not an input: PyTorch still
    calls its tensor hooks (what they return goes nowhere)."""
    node = t._node
    if node is not None and node.hooks:
        with _ACCUMULATE:
            _call_hooks(node.hooks.values(), g, _shape(t), t._dtype)


class RemovableHandle:
    """What register_hook returns: ``handle.remove()`` takes the hook off."""
    __slots__ = ("_fns", "_key", "_leaf")

    def __init__(self, fns, key, leaf=None):
        self._fns = fns
        self._key = key
        self._leaf = leaf

    def remove(self):
        self._fns.pop(self._key, None)
        if self._leaf is not None and self._leaf() is not None:
            update_deferred(self._leaf())


def register_hook(t, fn):
    """Calls ``fn(grad)`` when t's gradient is computed; a returned tensor replaces it."""
    refuse_while_recording("register_hook()")
    if not t._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    key = object()
    if t._tape is None:
        node = _leaf_node(t)
        node.hooks = node.hooks or {}
        node.hooks[key] = fn
        update_deferred(t)
        return RemovableHandle(node.hooks, key, weakref.ref(t))
    entry = t._tape.hooks.setdefault(t._slot, (_shape(t), t._dtype, {}))
    entry[2][key] = fn
    return RemovableHandle(entry[2], key)


def register_post_accumulate_grad_hook(t, fn):
    """Calls ``fn(t)`` after a backward has accumulated into a leaf's .grad."""
    refuse_while_recording("register_post_accumulate_grad_hook()")
    if t._tape is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                           "tensors")
    if not t._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    node = _leaf_node(t)
    node.post_hooks = node.post_hooks or {}
    key = object()
    node.post_hooks[key] = fn
    update_deferred(t)
    return RemovableHandle(node.post_hooks, key, weakref.ref(t))


def _leaf_node(t):
    """The leaf's AccumulateGrad node, with its grad storage."""
    node = t._node
    if node is None:
        node = leaves.leaf_node(t)
    if node.page is None:
        leaves.attach(node, None if type(t._v) is float else _shape(t), t._dtype.np)
    return node



def grad_storage(t):
    """The storage a leaf's grad lives in, which the sweep writes: the leaf's buffer (an
    array leaf), or the page of cells its cell belongs to (a 0-d leaf)."""
    node = _leaf_node(t)
    return node.buf if node.buf is not None else node.page.raw
