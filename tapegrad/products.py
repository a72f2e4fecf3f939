"""Large matrix products (mm, bmm, dot, mv) of a backward, in NumPy.

A matrix-product record of at least ``BLAS_MIN`` multiply-adds carries the ``BIG`` flag:
the engine stops the jitted sweep there and NumPy does its work with BLAS (all of BLAS's
speed, no BLAS bindings for Numba to compile: no SciPy needed); then the sweep goes on.
Smaller products run as loops inside the sweep, where a stop would cost more.
"""
import numpy as np

from .layout import AOBJ, BOBJ, OPMASK, PB, PQ, SHIFT
from .ops import CONST
from .quiet import hush, unhush


def backward(sweep_state, r):
    """ga += g b^T and gb += a^T g for record r (batch by batch for bmm), with NumPy's
    floating-point warnings off (an overflow gives inf, silently, as PyTorch's)."""
    tok = hush()
    try:
        _backward(sweep_state, r)
    finally:
        unhush(tok)


def _backward(sweep_state, r):
    s = sweep_state
    h = int(s.rq[3 * r])
    a, b = h >> SHIFT, int(s.rd[3 * r + 1])
    k = int(s.rd[3 * r + 2])
    batch, n, p, q = (int(x) for x in s.ms[k, PB:PQ + 1])
    g = s.adjoint(r).reshape(batch, n, q)
    # a's value is kept only when b needs a gradient, and b's only when a does
    if (int(s.rq[3 * a]) & OPMASK) != CONST:
        xb = s.objs[int(s.md[k, BOBJ])].reshape(batch, p, q)
        s.adjoint(a)[:] += np.matmul(g, xb.transpose(0, 2, 1)).ravel()
    if (int(s.rq[3 * b]) & OPMASK) != CONST:
        xa = s.objs[int(s.md[k, AOBJ])].reshape(batch, n, p)
        s.adjoint(b)[:] += np.matmul(xa.transpose(0, 2, 1), g).ravel()

