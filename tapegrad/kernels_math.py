"""Per-element math the generated gradient formulas call where PyTorch's CPU kernels round
differently from the formula written plainly: a fused multiply-add (ATen is built with
GCC's -ffp-contract=fast, so ``1 - b*b`` in a kernel is one FMA, a single rounding) and
``pow`` with a Python-number exponent (ATen computes a few exponents without pow)."""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .kernels_base import _f


@intrinsic
def _fma_ll(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's llvm.fma: exact in software where the CPU lacks it)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        ty = context.get_value_type(sig.return_type)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3),
                                            f"llvm.fma.f{a.bitwidth}")
        return builder.call(fn, args)
    return a(a, b, c), codegen


@njit(inline="always")
def _fma(a, b, c):
    """a * b + c with a single rounding, in the dtype of ``a`` (float32 or float64)."""
    return _fma_ll(a, _f(b, a), _f(c, a))


@njit(inline="always")
def _powc(x, e):
    """x ** e for a Python-number exponent ``e`` (float64) as ATen's pow(Tensor, Scalar)
    computes it: 1, x, x*x, x*x*x, sqrt(x), 1/sqrt(x), 1/x, 1/(x*x) for e = 0, 1, 2, 3, 0.5,
    -0.5, -1, -2 (each product and quotient rounded in x's dtype), elsewhere pow in float64
    rounded once (ATen's std::pow(float, double) of a 0-d tensor; its arrays take SLEEF's
    powf, within 1 ulp of that)."""
    one = _f(1.0, x)
    if e == 0.0:
        return one
    if e == 1.0:
        return x
    if e == 2.0:
        return x * x
    if e == 3.0:
        return x * x * x
    if e == 0.5:
        return np.sqrt(x)
    if e == -0.5:
        return one / np.sqrt(x)
    if e == -1.0:
        return one / x
    if e == -2.0:
        return one / (x * x)
    return _f(np.float64(x) ** e, x)
