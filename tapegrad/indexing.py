"""Shape and selection ops beyond basic views: transpose, expand, flatten, cat, stack,
advanced indexing, index_select, gather, where, and item assignment (CopySlices).

Selections that pick arbitrary elements record the flat index of every picked element
(the 'gather' family); cat/stack record the slots of their inputs (the 'multi' family).
"""
import math

import numpy as np

from . import dtypes as D
from .conversion import checked_fill
from .ops import CAT, COPYSLICES, EXPAND, GATHER, INDEX, INDEXSELECT, STACK, TRANSPOSE, WHERE
from .state import current_tape, recording_active, refuse_while_recording, thread_state
from .face import (TensorBase as Tensor, _array, _as_tensor, _bump, _from_array, _guard,
                   _new, _record, _result_dtype, _shape, _slot, _strided, _tracks)
from .shapes import _broadcast, _cstrides, _dim, _sizes
from .inplace import VIEW_OF_LEAF, moved, rebase, refuse_overlap, refuse_view_of_leaf
from .quiet import quietly
from .views import _index_key


def _flat_positions(shape):
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def _np_key(key):
    """A NumPy index from a key that may hold tensors and lists."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            if k._dtype.is_floating_point:
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
            if recording_active():          # the index's values: a replay must check them
                _guard(k, "array", np.array(_array(k)))
            k = _array(k)
        elif isinstance(k, list):
            k = np.asarray(k) if len(k) else np.zeros(0, np.int64)   # x[[]] selects nothing
            if k.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
        out.append(k)
    return tuple(out)


def _guard_index(index):
    if isinstance(index, Tensor) and recording_active():
        _guard(index, "array", np.array(_array(index)))


def _pick(x, flat, op):
    """The elements of x at flat positions ``flat`` (any shape), recorded as ``op``."""
    out = _new(np.asarray(np.take(_array(x).ravel(), flat)), x._dtype)
    if _tracks(x._rg):
        out._rg = True
        _record(op, out, x, ints=flat)
    return out


def _numpy_index_error(e):
    return IndexError(str(e).replace("axis", "dimension"))


def advanced_index(x, key):
    """x[key] for keys with integer arrays, lists, bool masks: duplicates accumulate."""
    shape = _shape(x)
    try:
        flat = _flat_positions(shape)[_np_key(key)]
    except IndexError as e:
        raise _numpy_index_error(e) from None
    return _pick(x, np.asarray(flat), INDEX)


def index_select(input, dim, index):
    shape = _shape(input)
    d = _dim(dim, len(shape))
    _guard_index(index)
    idx = _array(_as_tensor(index)).astype(np.int64).ravel()
    if idx.size and (idx.max() >= max(shape[d] if shape else 1, 1) or idx.min() < 0):
        raise IndexError("index out of range in self")
    flat = np.take(_flat_positions(shape), idx, axis=d) if shape else _flat_positions(())
    return _pick(input, flat, INDEXSELECT)


def gather(input, dim, index):
    shape = _shape(input)
    d = _dim(dim, len(shape))
    _guard_index(index)
    idx = _array(_as_tensor(index)).astype(np.int64)
    if idx.ndim != len(shape):
        raise RuntimeError("Index tensor must have the same number of dimensions as input "
                           "tensor")
    if idx.size and (idx.max() >= shape[d] or idx.min() < -shape[d]):
        raise RuntimeError(f"index {idx.max()} is out of bounds for dimension {d} with size "
                           f"{shape[d]}")
    pos = _flat_positions(shape)
    sl = tuple(slice(0, n) for n in idx.shape)
    flat = np.take_along_axis(pos[tuple(slice(None) if i == d else s
                                        for i, s in enumerate(sl))], idx % shape[d], d)
    return _pick(input, flat, GATHER)


def transpose(input, dim0, dim1):
    shape = _shape(input)
    d0, d1 = _dim(dim0, len(shape)), _dim(dim1, len(shape))
    perm = list(range(len(shape)))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    st = _cstrides(shape)
    v = np.transpose(_array(input), perm) if shape else input._v
    return _strided(TRANSPOSE, input, v, 0, tuple(shape[p] for p in perm),
                    [st[p] for p in perm])


def _expanded(shape, sizes, dtype):
    """(shape, strides) of a tensor of ``shape`` expanded to ``sizes``, or PyTorch's error,
    checked as PyTorch checks it: from the last dimension to the first."""
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand({D.tensor_type(dtype)}{{{list(shape)}}}, size={sizes}): "
                           f"the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    st = _cstrides(shape)
    out_shape, strides = [0] * len(sizes), [0] * len(sizes)
    for i in reversed(range(len(sizes))):
        s, j = sizes[i], i - lead
        n = shape[j] if j >= 0 else 1
        if s == -1:
            if j < 0:
                raise RuntimeError("The expanded size of the tensor (-1) isn't allowed in a "
                                   "leading, non-existing dimension " + str(i))
            s = n
        if n != s and n != 1:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing "
                               f"size ({n}) at non-singleton dimension {i}.  Target sizes: "
                               f"{sizes}.  Tensor sizes: {list(shape)}")
        out_shape[i] = s
        strides[i] = st[j] if j >= 0 and n == s else 0
    return out_shape, strides


def expand(input, *sizes):
    sizes = list(_sizes(sizes))
    out_shape, strides = _expanded(_shape(input), sizes, input._dtype)
    a = _array(input)
    v = np.broadcast_to(a, out_shape)
    if v.size == a.size:             # no element repeated: writable, as PyTorch's view
        v = np.lib.stride_tricks.as_strided(a, v.shape, v.strides, writeable=True)
    return _strided(EXPAND, input, v, 0, tuple(out_shape), strides)


def expand_as(input, other):
    return expand(input, _shape(other))


def flatten(input, start_dim=0, end_dim=-1):
    shape = _shape(input)
    if not shape:
        return input.reshape(1)
    s, e = _dim(start_dim, len(shape)), _dim(end_dim, len(shape))
    if s == e:                   # nothing to flatten: the tensor itself, no node (PyTorch)
        return input
    return input.reshape(shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def _join(tensors, dim, stacked):
    tensors = list(tensors)
    if not tensors:              # PyTorch's words differ: cat checks in Python, stack in C++
        if stacked:
            raise RuntimeError("stack expects a non-empty TensorList")
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    tensors = [_as_tensor(t) for t in tensors]
    shapes = [_shape(t) for t in tensors]
    if stacked:
        for i, s in enumerate(shapes):
            if s != shapes[0]:
                raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                                   f"{list(shapes[0])} at entry 0 and {list(s)} at entry {i}")
        d = _dim(dim, len(shapes[0]) + 1)
        extents = [1] * len(tensors)
        outer = math.prod(shapes[0][:d])
        inner = math.prod(shapes[0][d:])
    else:
        for i, s in enumerate(shapes):
            if not s:
                raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                                   "concatenated")
        d = _dim(dim, len(shapes[0]))
        for i, s in enumerate(shapes):
            if len(s) != len(shapes[0]):
                raise RuntimeError(f"Tensors must have same number of dimensions: got "
                                   f"{len(shapes[0])} and {len(s)}")
            for j in range(len(s)):
                if j != d and s[j] != shapes[0][j]:
                    raise RuntimeError(f"Sizes of tensors must match except in dimension {d}."
                                       f" Expected size {shapes[0][j]} but got size {s[j]} "
                                       f"for tensor number {i} in the list.")
        extents = [s[d] for s in shapes]
        outer = math.prod(shapes[0][:d])
        inner = math.prod(shapes[0][d + 1:])
    dt = _result_dtype(*tensors)
    arrays = [_array(t).astype(dt.np, copy=False) for t in tensors]
    value = np.stack(arrays, d) if stacked else np.concatenate(arrays, d)
    out = _new(value, dt)
    if _tracks(any(t._rg for t in tensors)):
        out._rg = True
        tape = current_tape()
        slots = [_slot(t, tape) for t in tensors]        # operands come before the record
        ints = [outer, inner, sum(extents)]
        for s, e in zip(slots, extents):
            ints += [s, e]
        _record(STACK if stacked else CAT, out, None, ints=ints)
        tape.multi[out._slot] = slots
    return out


def cat(tensors, dim=0):
    return _join(tensors, dim, False)


concat = concatenate = cat


def stack(tensors, dim=0):
    return _join(tensors, dim, True)


def where(condition, input, other):
    """``input`` where ``condition`` holds, ``other`` elsewhere (broadcast together)."""
    cond_t = _as_tensor(condition)
    cond = _array(cond_t)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {D.scalar_name(D.from_numpy(cond.dtype))}")
    a, b = input, other
    dt = _result_dtype(a, b)
    a = a if isinstance(a, Tensor) else _from_array(np.asarray(a, dt.np), dt)
    b = b if isinstance(b, Tensor) else _from_array(np.asarray(b, dt.np), dt)
    shape = _broadcast(_broadcast(cond.shape, _shape(a)), _shape(b))
    value = np.where(cond, _array(a), _array(b)).astype(dt.np, copy=False)
    out = _new(np.asarray(value), dt)
    if _tracks(a._rg or b._rg):
        out._rg = True
        if cond.shape != shape:                 # the sweep reads one condition per element
            cond_t = expand(cond_t, shape)
        tape = current_tape()
        cslot = _slot(cond_t, tape)     # a replay reads the condition from its slot
        _record(WHERE, out, a, b, ints=np.broadcast_to(cond, shape))
        tape.conds[out._slot] = cslot
    return out


def setitem(x, key, value):
    """x[key] = value: in place; recorded as PyTorch's CopySlices when grad is involved."""
    refuse_while_recording("item assignment (t[...] = v)")
    if not _shape(x):
        _index_key(key, 0)                # PyTorch's words for an int, a slice, too many
    val = value if isinstance(value, Tensor) else None
    if val is None:
        checked_fill(value, x._dtype)
    recording = thread_state().enabled and (x._rg or (val is not None and val._rg))
    leaf = recording and x._rg and x._tape is None
    shape = _shape(x)
    if not shape:
        raise IndexError("tapegrad: assign to a 0-d tensor with copy_ or fill_")
    basic = _index_key(key, len(shape)) is not None
    if leaf and not basic:                 # index_put_ on the leaf itself, as PyTorch
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation.")
    try:
        pos = _flat_positions(shape)[_np_key(key)]
    except IndexError as e:
        raise _numpy_index_error(e) from None
    pos = np.asarray(pos)
    src = _array(val) if val is not None else value
    fits = list(np.shape(src))       # the value without the leading 1s the target lacks
    while len(fits) > pos.ndim and fits[0] == 1:
        fits.pop(0)
    if basic:                           # a basic key: PyTorch copies as expand
        _expanded(tuple(fits), list(pos.shape), val._dtype if val is not None else x._dtype)
    else:
        try:
            np.broadcast_to(src, pos.shape)
        except ValueError:
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(np.shape(src))} "
                               f"cannot be broadcast to indexing result of shape "
                               f"{list(pos.shape)}") from None
    if leaf:                            # x[k] = v is a view's copy_ (after the expand), as
        raise RuntimeError(VIEW_OF_LEAF)          # PyTorch words it
    if recording:
        refuse_view_of_leaf(x)
    refuse_overlap(x)
    if not recording:
        quietly(x._v.__setitem__, _np_key(key), np.reshape(src, fits))   # (leading 1s
        #                                      dropped, as PyTorch's; an overflow is inf)
        _bump(x)
        return
    if val is not None and _shape(val) != pos.shape:
        if len(_shape(val)) > pos.ndim:
            val = val.reshape(fits)
        if _shape(val) != pos.shape:
            val = expand(val, pos.shape)
    new = _array(x).copy()
    new.ravel()[pos.ravel()] = np.broadcast_to(np.reshape(src, fits), pos.shape).ravel()
    res = _new(new, x._dtype, True)
    if val is not None:
        _record(COPYSLICES, res, x, val, ints=pos.ravel())
    else:
        _record(COPYSLICES, res, x, float(value), ints=pos.ravel())
    np.copyto(x._v, new)
    _bump(x)
    moved(x, res)
    rebase(x)                        # a view: the tensor it views changes too


class IndexingMethods:
    """The indexing methods of Tensor (basic indexing with ints and slices: views.py)."""
    __slots__ = ()
    index_select = index_select
    gather = gather
    transpose = transpose
    expand = expand
    expand_as = expand_as
    flatten = flatten
    __setitem__ = setitem
    _advanced_index = advanced_index
