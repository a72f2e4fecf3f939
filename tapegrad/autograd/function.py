"""``tg.autograd.Function``: custom operations with a forward and a backward written in Python.

A call ``MyExp.apply(x)`` runs ``MyExp.forward(ctx, x)`` with grad mode off and, when an
input requires grad, puts each tensor output on the tape as one source record (a link
record with no operand: the jitted sweep does not touch it) registered in
``tape.functions`` with the call's node. The backward engine stops the sweep at the call's
first output, where the adjoints of all its outputs are final (everything that uses them
was recorded later), and calls ``node.backward_in_sweep``: the user's ``backward(ctx, *grads)``
runs, with grad mode off, and its gradients are added into the adjoints of the inputs;
then the sweep goes on down the tape (engine.py ``_run``).

The node is the ``ctx`` forward and backward receive, an instance of a class made for each
Function (``MyExp`` -> ``MyExpBackward``), and ``y.grad_fn`` of every output, as in PyTorch.
Saved tensors are kept with their version: a change in place before backward reads them
raises PyTorch's error. The node keeps no tensor that lives on the tape (saved non-leaves
are kept as detached aliases sharing memory and version), so a graph is freed by reference
counting alone.
"""
import inspect
import re
import warnings
import weakref

import numpy as np

from ..engine import SECOND_TIME
from ..grad_mode import is_grad_enabled, no_grad
from ..ops import FUNCTION
from ..recording import record
from ..state import current_tape, refuse_while_recording
from ..base import TensorBase as Tensor
from ..face import _cell, _from_array, _shape, _slot
from ..shapes import _broadcast


class FunctionCtx:
    """What forward hands to backward: saved tensors, flags, and any attribute."""

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is of type {type(t).__name__}")
        self._to_save = tensors

    def mark_non_differentiable(self, *tensors):
        """These outputs get no gradient (their grads passed to backward are zeros)."""
        self._non_differentiable = tensors

    def set_materialize_grads(self, value):
        """False: backward receives None, not zeros, for the grads of unused outputs."""
        self._materialize = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("tapegrad: ctx.mark_dirty (a custom Function changing its "
                                  "input in place) is not supported")

    @property
    def saved_tensors(self):
        saved = self._saved
        if saved is None:
            raise RuntimeError(SECOND_TIME)
        for t, cell, version, where in saved:
            if t is not None and cell[0] != version:
                _raise_modified(t, cell[0], version, where())
        return tuple(t for t, _, _, _ in saved)


class BackwardCFunction(FunctionCtx):
    """The node of one call of a custom Function (``y.grad_fn``); it is also the call's
    ctx. Each Function gets its subclass, named ``<Function>Backward``."""
    _forward_cls = None

    def __init__(self):
        self._to_save = ()
        self._saved = ()           # (tensor, version cell, version, where) after forward
        self._non_differentiable = ()
        self._materialize = True
        self._tape = None          # a weak reference to the tape of the call
        self._inputs = ()          # slot of each tensor argument (-1: it needs no grad)
        self._input_shapes = ()
        self._arg_kinds = ()       # per forward argument: True for a tensor
        self._outputs = ()         # (slot or -1, shape, dtype, is a tensor) per output
        self._first = -1           # the lowest output slot: where the sweep stops
        self.needs_input_grad = ()

    def name(self):
        return type(self).__name__

    @property
    def next_functions(self):
        from ..graph import _edge
        tape = self._tape() if self._tape is not None else None
        if tape is None:
            return ()
        return tuple(_edge(tape, s) if s >= 0 else (None, 0) for s in self._inputs)

    # ----- the backward, called by the engine in the middle of the sweep ----------------
    def backward_in_sweep(self, run):
        """Runs the user's backward on the adjoints of the outputs (``run``: the engine's
        sweep of the tape) and adds the gradients it returns into the inputs' adjoints."""
        if not any(s >= 0 and run.reach[s] for s, _, _, _ in self._outputs):
            return
        grads = [self._grad_of_output(out, run) for out in self._outputs]
        cls = self._forward_cls
        backward = cls.backward if cls.backward is not Function.backward else cls.vjp
        with no_grad():
            result = backward(self, *grads)
        if not run.retain:
            self._saved = None
        for slot, g in self._input_grads(result):
            if run.reach[slot]:
                run.adjoint(slot)[:] += g.ravel()

    def _grad_of_output(self, out, run):
        slot, shape, dtype, is_tensor = out
        if slot >= 0 and run.reach[slot]:
            g = run.adjoint(slot).reshape(shape)
            return _from_array(np.array(g, dtype.np), dtype)
        if not is_tensor or not self._materialize:
            return None
        return _from_array(np.zeros(shape, dtype.np), dtype)

    def _input_grads(self, result):
        """(input slot, float64 gradient) for each input that needs one, with PyTorch's
        checks of what backward returned."""
        result = result if isinstance(result, tuple) else (result,)
        name = self.name()
        n = len(self._arg_kinds)
        if len(result) < n or any(g is not None for g in result[n:]):
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(result)})")
        found, k = [], 0            # k: the index among tensor arguments
        for i, (g, is_tensor) in enumerate(zip(result, self._arg_kinds)):
            if not is_tensor:
                if g is not None:
                    raise RuntimeError(f"function {name} returned a gradient different than "
                                       f"None at position {i + 1}, but the corresponding "
                                       "forward input was not a Variable")
                continue
            if g is not None and not isinstance(g, Tensor):
                raise RuntimeError(f"expected Variable or None (got {type(g).__name__})")
            slot, shape = self._inputs[k], self._input_shapes[k]
            if g is not None and slot >= 0:
                found.append((slot, _reduce_to(name, k, np.asarray(g.detach().numpy(),
                                                                   np.float64), shape)))
            k += 1
        return found


def _reduce_to(name, k, g, shape):
    """A returned gradient summed over the dims it broadcasts ``shape`` to, as PyTorch
    accepts a gradient whose shape the input's shape expands to."""
    if g.shape == shape:
        return g
    try:
        expandable = _broadcast(shape, g.shape) == g.shape
    except RuntimeError:
        expandable = False
    if not expandable:
        raise RuntimeError(f"Function {name} returned an invalid gradient at index {k} - got "
                           f"{list(g.shape)} but expected shape compatible with {list(shape)}")
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    ones = tuple(d for d, s in enumerate(shape) if s == 1 and g.shape[d] != 1)
    return g.sum(axis=ones, keepdims=True) if ones else g


def _raise_modified(t, now, expected, where):
    """PyTorch's error for a saved tensor changed in place (engine.py words it the same way
    for the built-in ops)."""
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor"}.get(t.dtype.name, "Tensor")
    where = f", which is {where}," if where else ""
    raise RuntimeError("one of the variables needed for gradient computation has been "
                       f"modified by an inplace operation: [tapegrad.{kind} "
                       f"{list(_shape(t))}]{where} is at version {now}; expected version "
                       f"{expected} instead. Hint: enable anomaly detection to find the "
                       "operation that failed to compute its gradient, with "
                       "torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _producer(t):
    """What PyTorch names a saved non-leaf input by: the node that now produces it."""
    ref = weakref.ref(t)

    def where():
        now = ref()
        if now is None or now.grad_fn is None:
            return ""
        return f"output 0 of {re.sub(r'Backward[0-9]*$', '', now.grad_fn.name())}"
    return where


def _nowhere():
    return ""


class FunctionMeta(type):
    """Gives each Function its node class, ``<Name>Backward``, as PyTorch does."""

    def __init__(cls, name, bases, attrs):
        cls._backward_cls = type(name + "Backward", (BackwardCFunction,),
                                 {"_forward_cls": cls, "__module__": __name__})
        super().__init__(name, bases, attrs)


class Function(metaclass=FunctionMeta):
    """Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)`` (or
    ``forward(*args)`` plus ``setup_context(ctx, inputs, output)``); call ``apply``."""

    def __init__(self, *args, **kwargs):
        warnings.warn(f"{type(self)} should not be instantiated. Methods on autograd functions "
                      "are all static, so you should invoke them on the class itself. "
                      "Instantiating an autograd function will raise an error in a future "
                      "version of PyTorch.", DeprecationWarning, stacklevel=2)

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method. (Example: "
                           "https://pytorch.org/docs/stable/autograd.html#torch.autograd."
                           "Function)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("tapegrad: forward-mode AD (jvp) is not supported")

    @classmethod
    def apply(cls, *args, **kwargs):
        return _apply(cls, args, kwargs)


def once_differentiable(fn):
    """PyTorch's decorator for a backward that is not itself differentiable: tapegrad's
    backwards always are (they run with grad mode off)."""
    return fn


def _apply(cls, args, kwargs):
    refuse_while_recording("a custom autograd.Function (its forward and backward run Python)")
    new_style = cls.setup_context is not Function.setup_context
    args = _bind(cls, new_style, args, kwargs)
    ctx = cls._backward_cls()
    ctx._arg_kinds = tuple(isinstance(a, Tensor) for a in args)
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    record = is_grad_enabled() and any(ctx.needs_input_grad)
    with no_grad():
        if new_style:
            outputs = cls.forward(*args)
            cls.setup_context(ctx, args, outputs)
        else:
            outputs = cls.forward(ctx, *args)
    if not record or not (isinstance(outputs, Tensor) or isinstance(outputs, tuple)):
        return outputs
    return _record(ctx, args, outputs)


def _bind(cls, new_style, args, kwargs):
    """The arguments as forward's positional arguments, defaults filled in (PyTorch hands
    setup_context and needs_input_grad all of them)."""
    sig = cls.__dict__.get("_signature")
    if sig is None:
        sig = cls._signature = inspect.signature(cls.forward)
    if not kwargs and len(args) + (not new_style) >= len(sig.parameters):
        return args                     # nothing to fill in (the common case: no cost)
    bound = sig.bind(*args, **kwargs) if new_style else sig.bind(None, *args, **kwargs)
    bound.apply_defaults()
    return bound.args if new_style else bound.args[1:]


def _record(ctx, args, outputs):
    """Puts the outputs of a call on the tape, each one source record of ``ctx``, and keeps
    what backward needs: input slots, output shapes, the saved tensors and versions."""
    tape = current_tape()
    tensors = [a for a in args if isinstance(a, Tensor)]
    ctx._tape = weakref.ref(tape)
    ctx._inputs = tuple(_slot(a, tape) if a._rg else -1 for a in tensors)
    ctx._input_shapes = tuple(_shape(a) for a in tensors)
    single = not isinstance(outputs, tuple)
    outs = (outputs,) if single else outputs
    inputs = [s for s in ctx._inputs if s >= 0]
    new_outs, metas, aliases = [], [], {}
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            new_outs.append(o)
            metas.append((-1, (), None, False))
            continue
        out = o.detach()                # a new tensor sharing o's memory and version
        aliases[id(o)] = (out, k)
        slot = -1
        if o.dtype.is_floating_point and not any(o is t for t in ctx._non_differentiable):
            # one record per output; its int list holds the inputs (what the sweep reaches)
            out._rg = True
            record(FUNCTION, out, None, ints=inputs, tape=tape)
            slot = out._slot
            tape.functions[slot] = (ctx, k)
        new_outs.append(out)
        metas.append((slot, _shape(o), o.dtype, True))
    ctx._outputs = tuple(metas)
    ctx._first = min((s for s, _, _, _ in metas if s >= 0), default=-1)
    ctx._saved = tuple(_saved(t, aliases, ctx) for t in ctx._to_save)
    ctx._to_save = ()
    return new_outs[0] if single else tuple(new_outs)


def _saved(t, aliases, ctx):
    """(tensor, version cell, version now, where it comes from) of a saved tensor; tensors
    on the tape are kept as detached aliases (no reference from the tape back to itself)."""
    if t is None:
        return None, None, 0, _nowhere
    cell = _cell(t)
    if id(t) in aliases:                # an output of this call
        out, k = aliases[id(t)]
        name = re.sub(r"Backward$", "", ctx.name())
        return out.detach(), cell, cell[0], (lambda: f"output {k} of {name}")
    if t._tape is not None:             # a non-leaf input (or another graph's tensor)
        return t.detach(), cell, cell[0], _producer(t)
    return t, cell, cell[0], _nowhere
