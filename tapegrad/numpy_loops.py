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
replay's plain arithmetic gives the same bits; fmod is exact, remainder fmod and an add) or, like erf, computed by the same libm
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
                   "trunc", "rint", "fmod"})


def _ufuncs_of(row):
    names = set(re.findall(r"np\.(\w+)\(", row.array or "")) - EXACT
    assert len(names) <= 1, (row.name, names)   # one loop per op (the table's rows have one)
    return names


# the ufuncs whose loops the replay's reductions and softmaxes call (``reduce_like``, and
# exp/log/power elementwise inside logsumexp, softmax and norm), as eager's NumPy calls
REDUCING = ("add", "multiply", "maximum", "minimum", "exp", "log", "power")
# and matmul's, whose loop the matrix products call (BLAS or NumPy's own loop, as it picks)
UFUNCS = tuple(sorted(set(REDUCING + ("matmul",)).union(
    *(_ufuncs_of(BY_CODE[op]) for op in range(NUM_OPS) if FAMILY[op] in (F_BINARY, F_UNARY)))))
U_ADD, U_MUL, U_MAX, U_MIN, U_EXP, U_LOG, U_POW = (UFUNCS.index(u) for u in REDUCING)
U_MATMUL = UFUNCS.index("matmul")
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


def _table(find=loop_of):
    """(The loops in memory that is never freed (a module imported again finds it by its
    symbol, and code linked before keeps reading the same place): entry 2k is loop k's
    address, 2k + 1 its data; None, or why the loops cannot be found). A NumPy whose
    ufuncs are laid out otherwise leaves the table empty, and tg.compile then runs
    functions eagerly (replay.py) rather than replay them with other loops."""
    n = 4 * len(UFUNCS)
    at = _ll.address_of_symbol(SYMBOL)
    if not at:
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        at = libc.malloc(ctypes.sizeof(ctypes.c_void_p) * max(n, 1))
        _ll.add_symbol(SYMBOL, at)
    table = (ctypes.c_void_p * n).from_address(at)
    try:
        loops = [find(getattr(np, name), dt) for name in UFUNCS for dt in DTYPES]
    except (RuntimeError, LookupError) as e:
        return table, str(e)
    for k, (fn, data) in enumerate(loops):
        table[2 * k], table[2 * k + 1] = fn, data
    return table, None


TABLE, UNAVAILABLE = _table()


def _emit_call(context, builder, k, arrays, dims, steps):
    """Calls loop ``k`` of the table on the data of Numba arrays ``arrays`` (type, value
    pairs), with int64 LLVM values ``dims`` and ``steps``: NumPy's inner-loop signature
    ``void loop(char **args, npy_intp *dims, npy_intp *steps, void *data)``."""
    i8p = ir.IntType(8).as_pointer()
    i64 = ir.IntType(64)
    mod = builder.module
    table = mod.globals.get(SYMBOL)
    if table is None:
        table = ir.GlobalVariable(mod, i8p, SYMBOL)     # external: found by its symbol
    at = builder.mul(k, i64(2))
    fn = builder.load(builder.gep(table, [at]))
    data = builder.load(builder.gep(table, [builder.add(at, i64(1))]))
    fnty = ir.FunctionType(ir.VoidType(), [i8p.as_pointer(), i64.as_pointer(),
                                           i64.as_pointer(), i8p])
    argv = cgutils.alloca_once(builder, i8p, size=len(arrays))
    for j, (ty, val) in enumerate(arrays):
        arr = context.make_array(ty)(context, builder, val)
        builder.store(builder.bitcast(arr.data, i8p), builder.gep(argv, [i64(j)]))
    at_dims = cgutils.alloca_once(builder, i64, size=len(dims))
    at_steps = cgutils.alloca_once(builder, i64, size=len(steps))
    for j, v in enumerate(dims):
        builder.store(v, builder.gep(at_dims, [i64(j)]))
    for j, v in enumerate(steps):
        builder.store(v, builder.gep(at_steps, [i64(j)]))
    builder.call(builder.bitcast(fn, fnty.as_pointer()), [argv, at_dims, at_steps, data])


def _ints64(context, builder, sig, args, which):
    return [context.cast(builder, args[i], sig.args[i], types.int64) for i in which]


@intrinsic
def _call_loop(typingctx, k, n, a, sa, b, sb, z, sz):
    """NumPy's loop k (``2u + d``) over n elements of the 1-d arrays a, b -> z, each with
    its step in bytes (0: one value for all); a unary loop reads a and writes b."""
    if not (isinstance(k, types.Integer) and isinstance(n, types.Integer)
            and all(isinstance(t, types.Array) for t in (a, b, z))):
        return None

    def codegen(context, builder, sig, args):
        kk, nn, s1, s2, s3 = _ints64(context, builder, sig, args, (0, 1, 3, 5, 7))
        _emit_call(context, builder, kk, [(sig.args[i], args[i]) for i in (2, 4, 6)],
                   [nn], [s1, s2, s3])
        return context.get_dummy_value()
    return types.void(k, n, a, sa, b, sb, z, sz), codegen


@intrinsic
def _call_matmul(typingctx, k, m, n, p, a, b, z, s1m, s1n, s2n, s2p, som, sop):
    """NumPy's matmul loop k (``2 U_MATMUL + d``) on one product z (m, p) = a (m, n) @
    b (n, p), the arrays' data at element 0, with the byte steps of each core dimension
    (0 for a dimension a 1-d operand lacks, as NumPy passes it): the gufunc's inner loop,
    which calls BLAS or NumPy's own loop exactly as eager np.matmul does."""
    ints = (k, m, n, p, s1m, s1n, s2n, s2p, som, sop)
    if not (all(isinstance(t, types.Integer) for t in ints)
            and all(isinstance(t, types.Array) for t in (a, b, z))):
        return None

    def codegen(context, builder, sig, args):
        kk, mm, nn, pp, *core = _ints64(context, builder, sig, args,
                                        (0, 1, 2, 3, 7, 8, 9, 10, 11, 12))
        i64 = ir.IntType(64)
        _emit_call(context, builder, kk, [(sig.args[i], args[i]) for i in (4, 5, 6)],
                   [i64(1), mm, nn, pp], [i64(0), i64(0), i64(0)] + core)
        return context.get_dummy_value()
    return types.void(k, m, n, p, a, b, z, s1m, s1n, s2n, s2p, som, sop), codegen
