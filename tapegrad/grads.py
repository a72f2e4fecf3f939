"""The autograd side of a tensor: ``requires_grad``, ``grad`` (a view of a leaf's grad
storage, leaves.py), ``grad_fn``, ``retain_grad``, ``backward``, hooks, ``detach``, ``data``."""
import sys
import warnings
import weakref

import numpy as np

from . import dtypes as D
from . import engine, hooks, leaves
from .face import _cell, _float, _new, _record, _shape, TensorBase
from .graph import _edge
from .ops import CASTNG
from .state import recording, recording_active, refuse_while_recording


class AutogradMethods:
    """The autograd methods of Tensor."""
    __slots__ = ()

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not self._dtype.is_floating_point:      # PyTorch's setter's words
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients")
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        if self._tape is not None:
            if requires_grad:
                return self
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                               "you want to use a computed variable in a subgraph that doesn't "
                               "require differentiation use var_no_grad = var.detach().")
        if requires_grad and not self._dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if bool(requires_grad) != self._rg:
            self._node = None           # its source record (leaf vs constant) changes
        self._rg = bool(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self._tape is None

    @property
    def grad_fn(self):
        return None if self._tape is None else _edge(self._tape, self._slot)[0]

    @property
    def _version(self):
        return 0 if self._ver is None else self._ver[0]

    @property
    def grad(self):
        if self._tape is not None and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake, make sure you access the leaf Tensor instead. See "
                "github.com/pytorch/pytorch/pull/30531 for more information.",
                UserWarning, stacklevel=2)
        g = self._grad
        if g is None and self._tape is None:
            node = self._node          # a leaf's grad lives in its storage: a view of it
            if node is not None and node.page is not None and leaves.has_grad(node):
                g = self._grad = _new(leaves.grad_array(node, _shape(self), self._dtype.np),
                                      self._dtype)
        return g

    @grad.setter
    def grad(self, value):
        rec = recording()
        if rec is not None:               # grad = None is recorded for the replays; else refused
            rec.set_grad(self, value)
        if value is not None:
            if not isinstance(value, TensorBase):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if _shape(value) != _shape(self):
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(_shape(value))}' to a "
                    f"tensor of size '{list(_shape(self))}'. Please ensure that the gradient "
                    "and the tensor are the same size")
            if value._dtype is not self._dtype:       # PyTorch 2.13's words
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{D.cpp_name(value._dtype)}' "
                    f"to a tensor with grad_dtype '{D.scalar_name(self._dtype)}'. The gradient "
                    "must match the tensor's grad_dtype (defaults to the tensor's dtype). You "
                    "can set the tensor's grad_dtype attribute with a specific dtype, or None "
                    "to allow any dtype. Set grad_dtype with caution. Diverging the dtypes of a "
                    "tensor and its gradient may break downstream systems that assume they "
                    "match.")
            if type(value._v) is _float:
                value = _new(np.array(value._v, value._dtype.np), value._dtype)
        node = self._node if self._tape is None else None
        old = self._grad
        if node is not None and node.page is not None and (old is None or value is not old):
            if old is not None and hooks._owns(node, old) and sys.getrefcount(old) > 3:
                old._v = old._v.copy()     # the user holds the old grad: it keeps its values
            leaves.clear(node)             # (a grad never read yet goes too)
        self._grad = value
        if self._tape is None and self._rg and (value is not None or node is not None):
            if value is not None:
                hooks._leaf_node(self)          # a user's grad: the engine adds into it
            hooks.update_deferred(self)

    @property
    def retains_grad(self):
        return self._tape is not None and self._slot in self._tape.retained

    def retain_grad(self):
        refuse_while_recording("retain_grad()")
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._tape is not None:
            self._tape.retained[self._slot] = weakref.ref(self)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        engine.backward([self], None if gradient is None else [gradient], retain_graph,
                        create_graph, inputs)

    def detach(self):
        t = _new(self._v, self._dtype)
        t._ver = _cell(self)
        if recording_active():       # replayed as a copy through which no gradient flows
            t._rg = True
            _record(CASTNG, t, self, None, 2.0)
        return t

    def detach_(self):
        """Makes this tensor a leaf that does not require grad, in place."""
        refuse_while_recording("detach_()")
        self._tape, self._slot, self._rg, self._node = None, -1, False, None
        return self

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, value):
        """Swaps in another tensor's value (shared, unrecorded), as PyTorch's ``.data =``."""
        refuse_while_recording("assigning .data")
        v = value._v
        if self._tape is None and (value._dtype is not self._dtype
                                   or _shape(value) != _shape(self)):
            self._node = None        # a leaf's grad storage has the old dtype and shape
        elif self._node is not None and (type(v) is float) != (type(self._v) is float):
            # a 0-d leaf keeps the kind of value its grad storage was made for (a Python
            # float's is a scalar cell, a 0-d array's a buffer: the sweep would write a cell
            # as a buffer), so its grad carries on, as PyTorch's: the number is copied
            v = float(v) if type(self._v) is float else np.array(v, value._dtype.np)
        self._v = v
        self._dtype = value._dtype
        self._ver = _cell(value)

    def register_hook(self, hook):
        return hooks.register_hook(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        return hooks.register_post_accumulate_grad_hook(self, hook)
