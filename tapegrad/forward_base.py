"""What the generated forwards and Tensor methods call (codegen.py writes them)."""
import math

import numpy as np

from .quiet import hush, unhush


def _float_op(f, np_f):
    """A Python-float forward that gives inf or NaN, as NumPy does, where math raises."""
    def op(*args):
        try:
            z = f(*args)
        except (OverflowError, ValueError, ZeroDivisionError):
            tok = hush()
            try:
                return float(np_f(*[np.float64(a) for a in args]))
            finally:
                unhush(tok)
        return math.nan if type(z) is complex else z   # a negative base to a fractional power
    return op


_erf_each = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    """erf elementwise (NumPy has none; libm's erf through math.erf, exact to the ulp)."""
    x = np.asarray(x)
    return np.asarray(_erf_each(x), x.dtype if x.dtype.kind == "f" else np.float64)


try:                                    # libm's exp2 (ATen's), Python 3.11 on
    from math import exp2 as _exp2
except ImportError:                     # NumPy's float64 loop calls it too
    def _exp2(x):
        return float(np.exp2(x))


def _remainder(x, y):
    """x mod y with y's sign, as ATen's remainder: C's fmod(x, y) (exact), plus y where that
    is not 0 and its sign is not y's. A zero keeps fmod's sign, x's (NumPy's remainder and
    Python's % give y's)."""
    m = np.fmod(x, y)
    return np.where((m != 0) & ((m < 0) != (np.asarray(y) < 0)), m + y, m)
