"""NumPy's own inner loops, called from Numba: a ``tg.compile`` replay computes each
elementwise op that is not exactly rounded (exp, log, tanh, sin, pow, ...) with the very
machine code the eager op runs, so replayed values (and the gradients that read them)
equal eager ones to the bit.

Eager mode computes an array op with a NumPy ufunc (``_generated/tables.py``'s ARRAY_F,
from the op table's ``array`` column); NumPy runs it through the ufunc's inner loop for
the dtype, ``void loop(char **args, npy_intp *n, npy_intp *steps, void *data)``, SIMD
code of NumPy's own for several functions (tanh, float32 exp/log/sin/cos), libm for
others. Numba's ``np.tanh`` is libm's, which differs from NumPy's SIMD in the last bit
for about 4 values in 10. So the replay calls NumPy's loop itself: the loop's address
and data are read from the ufunc object (the public ``PyUFuncObject`` fields
``functions``, ``data``, ``types``; checked against the ufunc's name, ``ntypes`` and
``nargs``), put in a table in memory that lives as long as the process, and the table is
named to LLVM as the symbol ``tapegrad_numpy_loops``; jitted code loads a loop from the
table at run time, so a kernel's cached machine code holds no address of this process.

The per-element formula of such an op thus exists once, NumPy's loop; the loops take any
steps, and give the same values contiguous, strided, in place or with a stride-0
operand (tests/test_compile_matches_eager.py checks them against the ufuncs).

``LOOP_OF[op]``: the index of the ufunc whose loops op's array forward calls (``UFUNCS``),
or -1 for an op whose array forward is exactly rounded (``+ - * /``, sqrt, ...: the
replay's plain arithmetic gives the same bits) or, like erf, computed by the same libm
function in both paths. Derived from the op table's ``array`` column: a new row that
calls a NumPy ufunc not in ``EXACT`` gets its loop with no change here.
"""
import ctypes
import re

import numpy as np
from llvmlite import binding as _ll, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .ops import BY_CODE, FAMILY, F_BINARY, F_UNARY, NUM_OPS

# NumPy functions of the array forwards whose result is exact or exactly rounded (or that
# only move values): the replay's own arithmetic gives their bits
EXACT = frozenset({"add", "subtract", "multiply", "true_divide", "negative", "sqrt", "abs",
                   "maximum", "minimum", "clip", "where", "reciprocal", "copy", "floor", "ceil",
                   "trunc", "rint"})


def _ufuncs_of(row):
    names = set(re.findall(r"np\.(\w+)\(", row.array or "")) - EXACT
    assert len(names) <= 1, (row.name, names)   # one loop per op (the table's rows have one)
    return names


# the ufuncs whose loops the replay's reductions and softmaxes call (``reduce_like``, and
# exp/log/power elementwise inside logsumexp, softmax and norm), as eager's NumPy calls
REDUCING = ("add", "multiply", "maximum", "minimum", "exp", "log", "power")
UFUNCS = tuple(sorted(set(REDUCING).union(*(_ufuncs_of(BY_CODE[op]) for op in range(NUM_OPS)
                                            if FAMILY[op] in (F_BINARY, F_UNARY)))))
U_ADD, U_MUL, U_MAX, U_MIN, U_EXP, U_LOG, U_POW = (UFUNCS.index(u) for u in REDUCING)
LOOP_OF = tuple(UFUNCS.index(next(iter(_ufuncs_of(BY_CODE[op]))))
                if FAMILY[op] in (F_BINARY, F_UNARY) and _ufuncs_of(BY_CODE[op]) else -1
                for op in range(NUM_OPS))
DTYPES = (np.float32, np.float64)       # the loop of ufunc u for dtype d is entry 2u + d
SYMBOL = "tapegrad_numpy_loops"

_P = ctypes.POINTER


class _UFuncHead(ctypes.Structure):
    """The first fields of NumPy's ``PyUFuncObject`` (numpy/ufuncobject.h)."""
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int),
                ("identity", ctypes.c_int), ("functions", _P(ctypes.c_void_p)),
                ("data", _P(ctypes.c_void_p)), ("ntypes", ctypes.c_int),
                ("reserved1", ctypes.c_int), ("name", ctypes.c_char_p),
                ("types", _P(ctypes.c_char))]


def loop_of(ufunc, dtype):
    """(address of the inner loop, its data pointer) of ``ufunc`` for ``dtype`` in and out."""
    head = _UFuncHead.from_address(id(ufunc))
    if (head.name is None or head.name.decode() != ufunc.__name__
            or head.ntypes != ufunc.ntypes or head.nargs != ufunc.nargs):
        raise RuntimeError(f"tapegrad: NumPy's ufunc {ufunc.__name__} is not laid out as "
                           "numpy/ufuncobject.h says (an unknown NumPy build?)")
    num = np.dtype(dtype).num
    for i in range(head.ntypes):
        if all(head.types[i * head.nargs + j][0] == num for j in range(head.nargs)):
            return head.functions[i] or 0, head.data[i] or 0
    raise LookupError(f"tapegrad: np.{ufunc.__name__} has no {np.dtype(dtype).name} loop")


def _table():
    """The loops in memory that is never freed (a module imported again finds it by its
    symbol, and code linked before keeps reading the same place): entry 2k is loop k's
    address, 2k + 1 its data."""
    n = 4 * len(UFUNCS)
    at = _ll.address_of_symbol(SYMBOL)
    if not at:
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        at = libc.malloc(ctypes.sizeof(ctypes.c_void_p) * max(n, 1))
        _ll.add_symbol(SYMBOL, at)
    table = (ctypes.c_void_p * n).from_address(at)
    for u, name in enumerate(UFUNCS):
        for d, dt in enumerate(DTYPES):
            table[4 * u + 2 * d], table[4 * u + 2 * d + 1] = loop_of(getattr(np, name), dt)
    return table


TABLE = _table()


@intrinsic
def _call_loop(typingctx, k, n, a, sa, b, sb, z, sz):
    """NumPy's loop k (``2u + d``) over n elements of the 1-d arrays a, b -> z, each with
    its step in bytes (0: one value for all); a unary loop reads a and writes b."""
    if not (isinstance(k, types.Integer) and isinstance(n, types.Integer)
            and all(isinstance(t, types.Array) for t in (a, b, z))):
        return None

    def codegen(context, builder, sig, args):
        i8p = ir.IntType(8).as_pointer()
        i64 = ir.IntType(64)
        mod = builder.module
        table = mod.globals.get(SYMBOL)
        if table is None:
            table = ir.GlobalVariable(mod, i8p, SYMBOL)     # external: found by its symbol
        kk = context.cast(builder, args[0], sig.args[0], types.int64)
        at = builder.mul(kk, i64(2))
        fn = builder.load(builder.gep(table, [at]))
        data = builder.load(builder.gep(table, [builder.add(at, i64(1))]))
        fnty = ir.FunctionType(ir.VoidType(), [i8p.as_pointer(), i64.as_pointer(),
                                               i64.as_pointer(), i8p])
        argv = cgutils.alloca_once(builder, i8p, size=3)
        steps = cgutils.alloca_once(builder, i64, size=3)
        for j, (ai, si) in enumerate(((2, 3), (4, 5), (6, 7))):
            arr = context.make_array(sig.args[ai])(context, builder, args[ai])
            builder.store(builder.bitcast(arr.data, i8p), builder.gep(argv, [i64(j)]))
            builder.store(context.cast(builder, args[si], sig.args[si], types.int64),
                          builder.gep(steps, [i64(j)]))
        dims = cgutils.alloca_once(builder, i64)
        builder.store(context.cast(builder, args[1], sig.args[1], types.int64), dims)
        builder.call(builder.bitcast(fn, fnty.as_pointer()), [argv, dims, steps, data])
        return context.get_dummy_value()
    return types.void(k, n, a, sa, b, sb, z, sz), codegen
