"""``create_graph=True``: the backward recorded as Tensor operations, so that gradients can
be differentiated again, to any order (Hessian-vector products, gradient penalties,
``autograd.functional.hessian``).

The first-order backward (engine.py) stays one jitted sweep over a tape's bytes. This one
is a Python sweep over the same records: from the roots down, each reached record hands
its gradient (a Tensor, accumulated per slot) to its operands through its family's rule
(``double_rules``: the op table's formulas for elementwise rows, PyTorch's formulas for
the rest), with grad mode on, so every step is recorded on the thread's tape like any
other operation. The values the formulas read are tensors standing for their slots
(``double_tape``): the recorded backward links back into the graph it differentiates.

It goes through the records that lead to a wanted gradient only (``need``: the inputs of
``grad()``, every leaf for ``backward()``), across tapes through their links (newest tape
first, as the engine does), calls a custom Function's backward with grad mode on, runs
tensor hooks on graph gradients, and leaves the tape as it was (``create_graph`` implies
``retain_graph``). Leaves receive a ``.grad`` that has a graph of its own, as PyTorch's:
a clone of the gradient the first time, ``old + new`` after.

engine.py calls ``backward`` and ``grad`` here (with its checks of freed and modified
values, ``check``); this module does not import the engine.
"""
import warnings
from types import SimpleNamespace

import numpy as np

from .autograd.function import Function
from .base import TensorBase as Tensor
from .double_rules import RULES, sum_to
from .double_tape import TapeView
from .face import _new, _shape, _tensor_from
from .grad_mode import enable_grad, is_anomaly_enabled, no_grad
from .hooks import root_hooks
from .layout import CONST_A, SHIFT
from .ops import CONST, FAMILY, F_COMPARE, F_CUSTOM, F_SOURCE, LEAF, LINK, node_name


# ----- the entry points (engine.backward / engine.grad with create_graph=True) -------------------
def backward(tensors, grad_tensors, inputs, check):
    """Accumulates the gradients, with their graphs, into the .grad of the leaves (or of
    ``inputs``)."""
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(tensors, grad_tensors))]
    targets = None if inputs is None else \
        ([inputs] if isinstance(inputs, Tensor) else list(inputs))
    run = _Run(targets, check, keep_grads=True)
    with enable_grad():
        run.sweep(seeds)
        for t, seed in seeds:                # backward on a leaf itself
            if t._tape is None and (targets is None or any(x is t for x in targets)):
                run.add_leaf(t._node if t._node is not None else t, seed, t)
        if targets is None:
            for node, (g, t) in list(run.leaf.items()):
                leaf = t if t is not None else getattr(node, "variable", None)
                if leaf is not None:
                    _accumulate_leaf(leaf, g, node)
            return
        for t in targets:
            g = run.result_of(t)
            if g is None:
                continue
            if t._tape is None:
                _accumulate_leaf(t, g, t._node)
            else:
                t._grad = g.clone() if t._grad is None else t._grad + g


def grad(outputs, inputs, grad_outputs, allow_unused, materialize_grads, check):
    """The gradients of ``outputs`` with respect to ``inputs``, each with its graph."""
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
    for t in inputs:            # after the outputs' checks, as PyTorch
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    run = _Run(inputs, check, keep_grads=False)
    out = []
    with enable_grad():
        run.sweep(seeds)
        for t, seed in seeds:                # a leaf output that is itself an input
            if t._tape is None and any(x is t for x in inputs):
                run.add_leaf(t._node if t._node is not None else t, seed, t)
            elif t._tape is None:            # or not: its hooks run all the same (PyTorch)
                root_hooks(t, seed)
        for i, t in enumerate(inputs):
            g = run.result_of(t)
            hooks = getattr(t._node, "hooks", None) if t._tape is None else None
            if g is not None and hooks:         # a leaf's hooks see its gradient, as
                g = _call_hooks(hooks.values(), g, _shape(t), t._dtype)   # PyTorch's grad()
            if g is None:
                if materialize_grads:
                    g = _new(np.zeros(_shape(t), t._dtype.np), t._dtype)
                elif not allow_unused:
                    raise RuntimeError(f"The differentiated Tensor at index {i} appears to not "
                                       "have been used in the graph. Set allow_unused=True if "
                                       "this is the desired behavior.")
            elif g._dtype is not t._dtype:
                g = g.to(t._dtype)
            out.append(g)
    return tuple(out)


def _seed(i, t, g):
    """(t, the gradient fed to t): a Tensor (it may require grad itself: the double-vjp
    trick differentiates with respect to it), with PyTorch's checks and words."""
    if not isinstance(t, Tensor) or not t._rg:
        raise RuntimeError(f"element {i} of tensors does not require grad and does not have "
                           "a grad_fn")
    shape = _shape(t)
    dt = t._dtype
    if g is None:
        if t.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return t, _new(1.0 if type(t._v) is float else np.ones(shape, dt.np), dt)
    if not isinstance(g, Tensor):
        g = _tensor_from(g, dtype=dt)
    if _shape(g) != shape:
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                           f"tapegrad.Size({list(_shape(g))}) and output[{i}] has a shape of "
                           f"tapegrad.Size({list(shape)}).")
    return t, (g if g._dtype is dt else g.to(dt))


# ----- one recorded backward over the tapes it reaches --------------------------------------------
class _Run:
    def __init__(self, targets, check, keep_grads):
        self.check = check
        self.backward = keep_grads          # backward(): retained grads get theirs
        self.views = {}                     # tape id -> TapeView
        self.grads = {}                     # (tape id, slot) -> the gradient so far
        self.captured = {}                  # grad(): an input's, before its hooks ran
        self.leaf = {}                      # leaf node -> (gradient, the leaf if known)
        self.leaf_targets = None            # ids of the wanted leaves' nodes (None: all)
        self.slot_targets = set()           # (tape id, slot) of wanted non-leaves
        if targets is not None:
            self.leaf_targets = set()
            for t in targets:
                if t._tape is None:
                    if t._node is not None:
                        self.leaf_targets.add(id(t._node))
                else:
                    self.slot_targets.add((t._tape.id, t._slot))

    def view(self, tape):
        v = self.views.get(tape.id)
        if v is None:
            v = self.views[tape.id] = TapeView(tape)
        return v

    # ----- which slots lead to a wanted gradient -------------------------------------------
    def need(self, view):
        """need[s]: slot s is a wanted input, or some path from s reaches one."""
        if view.need is not None:
            return view.need
        view.need = need = np.ones(view.n, bool)      # (while computing: no cycle hangs)
        tape, tid = view.tape, view.tape.id
        for s in range(view.n):
            h = view.head(s)
            op = h & 0xFF
            if op == LEAF:
                node = tape.leaf_nodes[h >> SHIFT]
                want = self.leaf_targets is None or id(node) in self.leaf_targets
            elif op == LINK:
                other, slot = view.link_target(s)
                ov = self.view(other)
                want = slot < ov.n and bool(self.need(ov)[slot])
            elif op == CONST or FAMILY[op] == F_COMPARE:
                want = False
            else:
                want = any(need[o] for o in view.operands(s) if o >= 0)
            need[s] = want or (tid, s) in self.slot_targets
        return need

    # ----- the sweep ---------------------------------------------------------------------
    def sweep(self, seeds):
        roots = {}
        for t, seed in seeds:
            if t._tape is not None:
                self.add(t._tape, t._slot, seed)
                roots.setdefault(t._tape.id, (t._tape, set()))[1].add(t._slot)
        order = self._reach(roots)
        for view in order:                   # PyTorch's errors before anything is recorded
            self.check(SimpleNamespace(tape=view.tape, reach=view.reach, rq=view.rq,
                                       rd=view.rd, runs=self._runs(view)))
        for view in order:
            self._sweep(view)

    def _runs(self, view):
        """The reached records whose backward runs: those passing a gradient on to a slot
        that leads to a wanted one (an input's own record does not run: grad(y, y))."""
        runs, need = view.reach.copy(), view.need
        for r in np.nonzero(runs)[0].tolist():
            if view.op(r) == LINK:          # runs when the record it continues into does
                other, slot = view.link_target(r)
                ov = self.view(other)
                on = self.need(ov)
                if slot < ov.n and ov.op(slot) != LINK and \
                        not any(on[o] for o in ov.operands(slot) if o >= 0):
                    runs[r] = 0
            elif not any(need[o] for o in view.operands(r) if o >= 0):
                runs[r] = 0
        return runs

    def _reach(self, roots):
        """Marks what the roots reach on each tape (newest first: links point to older
        tapes) through slots that lead to a wanted gradient; returns the tapes in order."""
        order = []
        while roots:
            tape, slots = roots.pop(max(roots))
            view = self.view(tape)
            need = self.need(view)
            reach = view.reach = np.zeros(view.n, np.uint8)
            for s in slots:
                reach[s] = 1
            for r in range(max(slots), -1, -1):
                if not reach[r] or not need[r]:
                    continue
                op = view.op(r)
                if op == LINK:
                    other, slot = view.link_target(r)
                    roots.setdefault(other.id, (other, set()))[1].add(slot)
                    continue
                if FAMILY[op] == F_CUSTOM:   # the call's backward runs at its first output
                    reach[tape.functions[r][0]._first] = 1
                for o in view.operands(r):
                    if o >= 0 and need[o]:
                        reach[o] = 1
            order.append(view)
        return order

    def _sweep(self, view):
        tape, tid, reach, need = view.tape, view.tape.id, view.reach, view.need
        hooks, retained = tape.hooks, tape.retained

        def wanted(s):
            return s >= 0 and bool(need[s])

        for r in np.nonzero(reach)[0][::-1].tolist():
            h = view.head(r)
            op = h & 0xFF
            fam = FAMILY[op]
            key = (tid, r)
            g = self.grads.get(key)
            if g is not None:             # final here: every use of slot r came before
                if r in hooks and hooks[r][2]:
                    if not self.backward and key in self.slot_targets and \
                            any(wanted(o) for o in view.operands(r)):
                        self.captured[key] = g     # before its hooks, as engine._Sweep
                    g = self.grads[key] = _call_hooks(hooks[r][2].values(), g, hooks[r][0],
                                                      hooks[r][1])
                if r in retained:         # grad() fills them too, as PyTorch 2.13
                    t = retained[r]()
                    if t is not None and t._tape is tape and t._slot == r:
                        t._grad = g.clone() if t._grad is None else t._grad + g
            if fam == F_CUSTOM:           # a Function's outputs: its backward at the first
                ctx = tape.functions[r][0]
                if r == ctx._first:
                    self._function(view, ctx, wanted)
                continue
            if g is None:
                continue
            if key not in self.slot_targets:
                del self.grads[key]
            if op == LEAF:
                self.add_leaf(tape.leaf_nodes[h >> SHIFT], g)
            elif op == LINK:
                other, slot = view.link_target(r)
                self.add(other, slot, g)
            elif fam != F_SOURCE and need[r] and any(wanted(o) for o in view.operands(r)):
                found = RULES[fam](view, r, h, g, wanted)
                if is_anomaly_enabled():
                    _check_nan(view, r, h, found)
                for s, gs in found:
                    self.add(tape, s, gs)

    def _function(self, view, ctx, wanted):
        """A custom Function's backward, run with grad mode on on the gradients (graph
        tensors) of its outputs; what it returns goes to its inputs."""
        tid = view.tape.id
        grads = []
        for slot, shape, dtype, is_tensor in ctx._outputs:
            g = self.grads.get((tid, slot)) if slot >= 0 else None
            if g is None and is_tensor and ctx._materialize:
                g = _new(np.zeros(shape, dtype.np), dtype)
            grads.append(g)
        cls = ctx._forward_cls
        backward = cls.backward if cls.backward is not Function.backward else cls.vjp
        if getattr(backward, "_once_differentiable", False):
            with no_grad():
                result = backward(ctx, *grads)
            if any(g is not None and g.requires_grad for g in grads):
                result = _delayed_error(result)
        else:
            result = _with_graph_saved(view, ctx, lambda: backward(ctx, *grads))
        ctx._input_grads(result)             # PyTorch's checks of what backward returned
        result = result if isinstance(result, tuple) else (result,)
        k = 0
        for g, is_tensor in zip(result, ctx._arg_kinds):
            if not is_tensor:
                continue
            slot = ctx._inputs[k]
            if g is not None and wanted(slot):
                self.add(view.tape, slot, sum_to(g, ctx._input_shapes[k], view.dtype(slot)))
            k += 1

    # ----- gradients per slot and per leaf ------------------------------------------------------
    def add(self, tape, s, g):
        if g is None:
            return
        key = (tape.id, s)
        old = self.grads.get(key)
        self.grads[key] = g if old is None else old + g

    def add_leaf(self, node, g, t=None):
        old = self.leaf.get(node)
        if old is None:
            self.leaf[node] = (g, t)
        else:
            self.leaf[node] = (old[0] + g, old[1] if t is None else t)

    def result_of(self, t):
        """The gradient of input t (None when it was not reached)."""
        if t._tape is None:
            key = t._node if t._node is not None else t
            got = self.leaf.get(key)
            return None if got is None else got[0]
        key = (t._tape.id, t._slot)
        return self.captured[key] if key in self.captured else self.grads.get(key)


def _with_graph_saved(view, ctx, call):
    """Calls a Function's backward with its saved inputs and outputs standing for their
    slots (function.py keeps detached aliases, ``ctx._saved_slots`` their slots), so that
    what backward computes from them is differentiable with respect to them."""
    slots = getattr(ctx, "_saved_slots", ())
    saved = ctx._saved
    if saved is None or not any(s >= 0 for s in slots):
        return call()
    swapped = []
    for (t, cell, version, where), s in zip(saved, slots):
        if s >= 0 and t is not None:
            g = view.values.get(s)
            if g is None and view.op(s) == LEAF:
                g = view.tape.leaf_nodes[view.head(s) >> SHIFT].variable or t
            elif g is None:               # the alias's value, standing for its slot
                g = _new(t._v, t._dtype, True)
                g._tape, g._slot, g._ver = view.tape, s, t._ver
            t = g
        swapped.append((t, cell, version, where))
    ctx._saved = tuple(swapped)
    try:
        return call()
    finally:
        ctx._saved = saved


class Error(Function):
    """PyTorch's DelayedError: the gradients a @once_differentiable backward returned, which
    raise when something differentiates through them."""

    @staticmethod
    def forward(ctx, g):
        return g.clone()

    @staticmethod
    def backward(ctx, gg):
        raise RuntimeError("trying to differentiate twice a function that was marked with "
                           "@once_differentiable")


Error._backward_cls.__name__ = Error._backward_cls.__qualname__ = "Error"


def _delayed_error(result):
    """Each gradient made a leaf that requires grad (PyTorch's fake_requires_grad) under an
    Error node."""
    one = not isinstance(result, tuple)
    out = tuple(Error.apply(g.detach().requires_grad_()) if isinstance(g, Tensor) else g
                for g in ((result,) if one else result))
    return out[0] if one else out


def _call_hooks(hooks, g, shape, dtype):
    """Tensor hooks on a gradient with a graph; a returned tensor replaces it (PyTorch's
    checks and words, as engine.py's)."""
    for fn in list(hooks):
        res = fn(g)
        if res is None:
            continue
        if not isinstance(res, Tensor):
            raise TypeError(f"expected Variable, but hook returned '{type(res).__name__}'")
        name = getattr(fn, "__name__", "<unknown>")
        if res._dtype is not dtype:
            raise RuntimeError(f"hook '{name}' has changed the type of value")
        if _shape(res) != tuple(shape):
            raise RuntimeError(f"hook '{name}' has changed the size of value")
        g = res
    return g


def _accumulate_leaf(t, g, node):
    """leaf.grad = a clone of g (its graph kept), or old grad + g: PyTorch's AccumulateGrad
    in grad mode. Hooks run first, post-accumulate hooks after."""
    if node is not None and getattr(node, "hooks", None):
        g = _call_hooks(node.hooks.values(), g, _shape(t), t._dtype)
    if g._dtype is not t._dtype:
        g = g.to(t._dtype)
    old = t.grad
    new = g.clone() if old is None else old + g
    if type(new._v) is float:       # the setter stores 0-d grads as arrays: set it, then
        t.grad = _new(np.array(new._v, t._dtype.np), t._dtype)   # keep the graph tensor
        t._grad = new
    else:
        t.grad = new                # (frees the leaf's grad storage: the engine now adds
    for fn in list((getattr(node, "post_hooks", None) or {}).values()):   # into this tensor)
        fn(t)


def _check_nan(view, r, h, found):
    """Anomaly mode: names the node whose recorded backward made a NaN."""
    operands = view.operands(r)
    for s, g in found:
        if np.isnan(np.asarray(g._v)).any():
            i = operands.index(s) if s in operands else 0
            name = node_name(h & 0xFF, bool(h & CONST_A))
            trace = view.tape.traces.get(r)
            if trace:
                warnings.warn(f"Error detected in {name}. Traceback of forward call that "
                              f"caused the error:\n{trace}", UserWarning, stacklevel=5)
            raise RuntimeError(f"Function '{name}' returned nan values in its {i}th output.")
