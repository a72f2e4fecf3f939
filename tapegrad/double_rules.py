"""The derivative of every family of records as Tensor operations: the recorded backward of
``create_graph=True`` (double_backward.py). Each rule takes a record, the gradient g of its
result (a Tensor, maybe on a graph itself) and which operands need a gradient, and returns
(slot, gradient) pairs; every operation it runs is recorded, so the gradients it returns
can be differentiated again, to any order.

Elementwise rows run their formulas from the op table (``_generated/formulas.py``); the
other families are written here, after PyTorch's derivatives.yaml where it has a formula,
so that values and node names agree with PyTorch's double backward.
"""
import math

import numpy as np

from . import dtypes as D
from ._generated.formulas import GRADS
from .autograd.function import Function
from .base import TensorBase
from .face import _array, _new, _strided
from .formula_base import _sign, _where
from .indexing import _pick
from .layout import AOBJ, BOBJ, CONST_A, CONST_B, OPMASK, SHIFT, YOBJ
from .ops import (AMAX, AMIN, ASSTRIDED, BMM, DOT, F_BINARY, F_GATHER, F_LANE, F_MATMUL, F_MULTI,
                  F_REDUCE, F_SETITEM, F_STRIDED, F_UNARY, FAMILY, INDEX, INDEXSELECT, GATHER,
                  LOGSOFTMAX, LOGSUMEXP, MAXALL, MAXDIM, MEAN, MEANDIM, MINALL, MINDIM, MM,
                  NORM, PERMUTE, PROD, PRODDIM, SELECT, SLICE, SOFTMAX, SQUEEZE, SQUEEZEDIM,
                  STACK, STD, T, TRANSPOSE, UNSQUEEZE, VAR, VIEW, EXPAND, BY_CODE)


# ----- shapes -----------------------------------------------------------------------------
def shape_of(t):
    return () if type(t._v) is float else t._v.shape


def sum_to(t, shape, dtype):
    """t summed back to ``shape`` over the dims broadcasting added or stretched (PyTorch's
    sum_to: a sum keeping dims, then a view dropping the leading ones), in ``dtype``.
    A number (a formula's constant branch, 0 too: a zero gradient, as PyTorch's) is filled."""
    if not isinstance(t, TensorBase):
        return _new(np.full(shape, float(t), dtype.np), dtype)
    ts = shape_of(t)
    if ts != tuple(shape) and not shape:
        t = t.sum()
    elif ts != tuple(shape):
        lead = len(ts) - len(shape)
        if lead < 0 or any(s != 1 and s != n for s, n in zip(shape, ts[lead:])):
            t = t.expand(*shape) if shape else t.reshape(())
        else:
            dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                              if s == 1 and ts[lead + i] != 1)
            if dims:
                t = t.sum(dim=dims, keepdim=True)
            if lead:
                t = t.reshape(shape)
    if t._dtype is not dtype:
        t = t.to(dtype)
    return t


def _reduced(view, r, x_shape):
    """The dims a reduction or lane record reduces (stride 0 in its lane map)."""
    _, _, strides = view.aux(r)
    return tuple(d for d, st in enumerate(strides) if st == 0 and d < len(x_shape))


def keepdim(t, x_shape, dims):
    """A reduced tensor (its dims dropped or kept) shaped to broadcast against the input:
    the reduced dims put back as size 1, by unsqueeze as PyTorch does."""
    ts = shape_of(t)
    if len(ts) == len(x_shape):
        return t
    if len(x_shape) - len(ts) == len(dims):
        for d in dims:
            t = t.unsqueeze(d)
        return t
    return t.reshape(tuple(1 if d in dims else s for d, s in enumerate(x_shape)))


# ----- elementwise: the table's formulas ----------------------------------------------------
def _elementwise(view, r, h, g, need):
    op = h & OPMASK
    row = BY_CODE[op]
    a = h >> SHIFT
    c = view.const(r)
    if FAMILY[op] == F_UNARY:
        x = view.value(a, r, AOBJ) if "a" in row.saves else None
        out = view.value(r, r, YOBJ) if "y" in row.saves else None
        (ga,) = GRADS[op](g, x, out, c)
        return [(a, sum_to(ga, view.shape(a), view.dtype(a)))]
    # the operands x, y: slots (-1 for a Python number standing in one, whose value is c)
    xs, ys = (-1, a) if h & CONST_A else (a, -1) if h & CONST_B else (a, int(c))
    x = c if xs < 0 else view.value(xs, r, AOBJ) if "a" in row.saves else None
    y = c if ys < 0 else view.value(ys, r, BOBJ) if "b" in row.saves else None
    out = view.value(r, r, YOBJ) if "y" in row.saves else None
    w = None
    if "i" in row.saves:            # where's condition, one per element of the result
        w = _new(np.asarray(view.ints(r), bool).reshape(view.shape(r)), D.bool_)
    gx, gy = GRADS[op](g, x, y, out, w, need=(xs >= 0 and need(xs), ys >= 0 and need(ys)))
    found = []
    for s, gs in ((xs, gx), (ys, gy)):
        if gs is not None:
            gs = sum_to(gs, view.shape(s), view.dtype(s))
            if gs is not None:
                found.append((s, gs))
    return found


# ----- linear reductions ---------------------------------------------------------------------
def _reduce(view, r, h, g, need):
    """sum: the gradient expanded back over the reduced dims; mean: divided by their size."""
    a = h >> SHIFT
    x_shape = view.shape(a)
    ga = keepdim(g, x_shape, _reduced(view, r, x_shape))
    ga = ga.expand(*x_shape)
    op = h & OPMASK
    if op in (MEAN, MEANDIM):
        count = math.prod(x_shape) // max(math.prod(view.shape(r)), 1)
        ga = ga / count if count else ga * math.nan
    return [(a, ga)]


# ----- nonlinear reductions and softmaxes (PyTorch's formulas) ----------------------------------
def _lane(view, r, h, g, need):
    a = h >> SHIFT
    op = h & OPMASK
    x_shape = view.shape(a)
    dims = _reduced(view, r, x_shape)
    row = BY_CODE[op]
    x = view.value(a, r, AOBJ) if "a" in row.saves else None
    y = view.value(r, r, YOBJ) if "y" in row.saves else None
    c = view.const(r)
    if op in (SOFTMAX, LOGSOFTMAX):
        if op == SOFTMAX:        # dx = y (g - sum(g y))
            ga = y * (g - (g * y).sum(dim=dims, keepdim=True))
        else:                    # dx = g - e^y sum(g)
            ga = g - y.exp() * g.sum(dim=dims, keepdim=True)
        return [(a, ga)]
    gk = keepdim(g, x_shape, dims)
    yk = keepdim(y, x_shape, dims) if y is not None else None
    if op in (MAXALL, MINALL, AMAX, AMIN):
        # ties share the gradient evenly; a NaN extreme goes to the NaNs (a constant mask)
        xv, yv = np.asarray(_array(x)), np.asarray(_array(yk))
        mask = (xv == yv) | (np.isnan(xv) & np.isnan(yv))
        count = mask.sum(axis=dims, keepdims=True)
        ga = (gk / _new(count.astype(x._dtype.np), x._dtype)) * \
            _new(mask.astype(x._dtype.np), x._dtype)
    elif op in (PROD, PRODDIM):
        ga = gk * _prod_others(x, yk, dims)
    elif op in (VAR, STD):
        # d var/dx = 2 (x - mean) / (N - correction); d std = d var / (2 std), 0 where std is 0
        # (divided by 1 there: a 0 std in the denominator would make the next derivative
        # 0 * inf = NaN through the where)
        if op == STD:
            zero = yk == 0
            gk = gk / (_where(zero, 1.0, yk) * 2)
        ga = (2.0 / c if c > 0 else math.nan) * gk * (x - x.mean(dim=dims, keepdim=True))
        if op == STD:
            ga = _where(zero, 0.0, ga)
    elif op == NORM:
        ga = _norm(x, yk, gk, c)
    elif op == LOGSUMEXP:        # d/dx log sum e^x = e^(x - y)
        ga = gk * (x - yk).exp()
    else:
        raise RuntimeError(f"tapegrad: create_graph has no rule for {row.name}")
    return [(a, ga)]


def _prod_others(x, yk, dims):
    """The product of the other elements of each lane: y / x, or, where x is its lane's
    only zero, the product of the lane's nonzeros (0 in lanes of two zeros or more, whose
    second derivatives across those zeros this leaves out)."""
    xv = np.asarray(_array(x))
    zero = xv == 0
    if not zero.any():
        return yk / x
    z = _new(zero, D.bool_)
    safe = _where(z, 1.0, x)
    single = _new(zero.sum(axis=dims, keepdims=True) == 1, D.bool_)
    nonzeros = safe.prod(dim=dims, keepdim=True) if dims else safe
    return _where(z, _where(single, nonzeros, 0.0), yk / safe)


def _norm(x, yk, gk, p):
    """d ||x||_p = x |x|^(p-2) / ||x||^(p-1) (sign(x) |x|^(p-1) for p < 2), 0 where the norm
    is 0, as PyTorch's norm_backward."""
    if p == 1.0:
        return _sign(x) * gk
    scale = _where(yk == 0, 0.0, gk / yk if p == 2.0 else gk / yk ** (p - 1.0))
    if p == 2.0:
        return x * scale
    if p < 2.0:
        s = _sign(x) * x.abs() ** (p - 1.0)
        if p < 1.0:
            s = _where(x == 0, 0.0, s)
        return s * scale
    return x * x.abs() ** (p - 2.0) * scale


# ----- matrix products -------------------------------------------------------------------------
def _matmul(view, r, h, g, need):
    """mm: ga = g b^T, gb = a^T g (batch by batch for bmm); dot: g b, g a; mv: g b^T, a^T g."""
    op = h & OPMASK
    a, b = h >> SHIFT, int(view.const(r))
    found = []
    if need(a):
        xb = view.value(b, r, BOBJ)
        ga = g.mm(xb.t()) if op == MM else g.bmm(xb.transpose(1, 2)) if op == BMM else \
            g * xb if op == DOT else g.reshape(shape_of(g)[0], 1) * xb
        found.append((a, ga))
    if need(b):
        xa = view.value(a, r, AOBJ)
        gb = xa.t().mm(g) if op == MM else xa.transpose(1, 2).bmm(g) if op == BMM else \
            g * xa if op == DOT else xa.t().mv(g)
        found.append((b, gb))
    return found


# ----- views ------------------------------------------------------------------------------------
def _view(view, r, h, g, need):
    """The inverse view where there is one (reshape, transposes, squeezes), a sum for
    expand, and a scatter into zeros for select and slice."""
    a = h >> SHIFT
    op = h & OPMASK
    x_shape = view.shape(a)
    base, shape, strides = view.aux(r)
    if op == VIEW:
        ga = g.reshape(x_shape)
    elif op == T:
        ga = g.t()
    elif op in (PERMUTE, TRANSPOSE):
        perm = _permutation(x_shape, shape, strides)
        moved = [d for d in range(len(perm)) if perm[d] != d]
        if op == TRANSPOSE and len(moved) == 2:
            ga = g.transpose(*moved)
        elif op == TRANSPOSE and not moved:
            ga = g.transpose(0, 0) if x_shape else g
        else:
            ga = g.permute(*[perm.index(d) for d in range(len(perm))])
    elif op == UNSQUEEZE:
        ga = g.squeeze(_inserted(shape, x_shape))
    elif op == SQUEEZEDIM:
        ga = g if len(shape) == len(x_shape) else g.unsqueeze(_inserted(x_shape, shape))
    elif op == SQUEEZE:
        ga = g
        for d, s in enumerate(x_shape):
            if s == 1:
                ga = ga.unsqueeze(d)
    elif op == EXPAND:
        ga = sum_to(g, x_shape, view.dtype(a))
    else:                         # select, slice, as_strided: the view's positions in x
        pos = np.full(shape, base, np.int64)
        for d, (n, st) in enumerate(zip(shape, strides)):
            pos += (np.arange(n, dtype=np.int64) * st).reshape((n,) + (1,) * (len(shape) - d - 1))
        ga = scatter(op, g, pos, x_shape, (base, shape, strides))
    return [(a, ga)]


def _permutation(x_shape, shape, strides):
    """perm with out dim i = x dim perm[i], read off a permuted view's strides."""
    cst = [1] * len(x_shape)
    for d in range(len(x_shape) - 2, -1, -1):
        cst[d] = cst[d + 1] * x_shape[d + 1]
    free = list(range(len(x_shape)))
    perm = []
    for n, st in zip(shape, strides):
        d = next((d for d in free if cst[d] == st and x_shape[d] == n),
                 next(d for d in free if x_shape[d] == n))
        free.remove(d)
        perm.append(d)
    return perm


def _inserted(longer, shorter):
    """The dim of ``longer`` whose removal (a size 1) leaves ``shorter``."""
    for d in range(len(longer)):
        if longer[d] == 1 and longer[:d] + longer[d + 1:] == tuple(shorter):
            return d
    raise RuntimeError("tapegrad: create_graph found a squeeze it cannot invert")


# ----- scatters: the adjoint of a gather, itself a custom Function whose backward gathers ------
class _Scatter(Function):
    """zeros(x_shape) with g added at flat positions ``pos`` (repeats add up); its backward
    is the gather it undoes, recorded again as the same op."""

    @staticmethod
    def forward(ctx, g, op, pos, x_shape, aux):
        ctx.op, ctx.pos, ctx.aux = op, pos, aux
        dt = g._dtype
        out = np.zeros(x_shape, dt.np)
        np.add.at(out.reshape(-1), pos.reshape(-1),
                  np.broadcast_to(_array(g), pos.shape).reshape(-1))
        return _new(out, dt)

    @staticmethod
    def backward(ctx, gg):
        if ctx.aux is None:
            return _pick(gg, ctx.pos, ctx.op), None, None, None, None
        base, shape, strides = ctx.aux        # select, slice: the same view of gg
        value = np.take(np.asarray(_array(gg)).reshape(-1), ctx.pos)
        return _strided(ctx.op, gg, value, base, shape, strides), None, None, None, None


# the names PyTorch gives the backward of each gather's backward
_SCATTER_NODE = {SELECT: "SelectBackwardBackward0", SLICE: "SliceBackwardBackward0",
                 ASSTRIDED: "AsStridedBackward0",
                 INDEX: "IndexPutImplBackward0", INDEXSELECT: "IndexAddBackward0",
                 GATHER: "ScatterAddBackward0", MAXDIM: "ScatterBackward0",
                 MINDIM: "ScatterBackward0"}
_SCATTERS = {}
for _op, _name in _SCATTER_NODE.items():
    if _name not in _SCATTERS:
        _cls = type(_name[:-len("Backward0")], (_Scatter,), {})
        _cls._backward_cls.__name__ = _cls._backward_cls.__qualname__ = _name
        _SCATTERS[_name] = _cls
del _op, _name, _cls


def scatter(op, g, pos, x_shape, aux=None):
    """g added into zeros of ``x_shape`` at flat positions ``pos`` (g's shape), named as
    PyTorch names the backward of op's backward."""
    return _SCATTERS[_SCATTER_NODE[op]].apply(g, op, pos, tuple(x_shape), aux)


def _gather(view, r, h, g, need):
    a = h >> SHIFT
    pos = np.asarray(view.ints(r)).reshape(view.shape(r))
    return [(a, scatter(h & OPMASK, g, pos, view.shape(a)))]


# ----- cat / stack, item assignment -----------------------------------------------------------
def _multi(view, r, h, g, need):
    """Each part gets its slice of g along the joined dim (select for stack)."""
    ints = view.ints(r)
    outer, inner = int(ints[0]), int(ints[1])
    stacked = h & OPMASK == STACK
    out_shape = view.shape(r)
    total = int(ints[2])             # the joined dim: outer x total x inner
    d = next(d for d in range(len(out_shape)) if math.prod(out_shape[:d]) == outer
             and out_shape[d] == total and math.prod(out_shape[d + 1:]) == inner)
    found, at = [], 0
    for p in range((len(ints) - 3) // 2):
        s, e = int(ints[3 + 2 * p]), int(ints[4 + 2 * p])
        if need(s):
            key = (slice(None),) * d + ((at,) if stacked else (slice(at, at + e),))
            found.append((s, g[key]))
        at += e
    return found


def _setitem(view, r, h, g, need):
    """z = a with z[pos] = b: a gets g where b did not land, b gets g at pos."""
    a = h >> SHIFT
    pos = np.asarray(view.ints(r))
    found = []
    if need(a):                   # PyTorch's way: a copy of g with zeros copied in
        ga = g.clone()
        ga[np.unravel_index(pos, view.shape(a))] = 0.0
        found.append((a, ga))
    if not h & CONST_B:
        b = int(view.const(r))
        if need(b):
            found.append((b, _pick(g, pos.reshape(view.shape(b)), INDEX)))
    return found


RULES = {F_BINARY: _elementwise, F_UNARY: _elementwise, F_REDUCE: _reduce, F_LANE: _lane,
         F_MATMUL: _matmul, F_STRIDED: _view, F_GATHER: _gather, F_MULTI: _multi,
         F_SETITEM: _setitem}
