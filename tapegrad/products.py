"""Large matrix products (mm, bmm, dot, mv) on the frozen tape, in NumPy.

The jitted sweeps stop at each matrix-product record of at least ``BLAS_MIN`` multiply-adds
and NumPy does its work with BLAS (all of BLAS's speed, no BLAS bindings for Numba to
compile: no SciPy needed), then the sweep goes on. Smaller products run as plain loops
inside the sweeps, where a stop would cost more than the product.
"""
import numpy as np

from .layout import BLAS_MIN, ND, SHAPE, adjoint_of, shape_of, value_of
from .ops import BMM, CONST, DOT, MM, MV


def backward(op, r, R, m, M, av, sg, ag, reach):
    """ga += g b^T and gb += a^T g for record r (batch by batch for bmm)."""
    a, b = int(R[r, 1]), int(R[r, 2])
    reach[a // 5] = reach[b // 5] = 1
    sa, sb = shape_of(a, m, M), shape_of(b, m, M)
    g = adjoint_of(r, m, M, sg, ag)
    if op == MM:
        g = g.reshape(sa[0], sb[1])
    elif op == BMM:
        g = g.reshape(sa[0], sa[1], sb[2])
    # a's value is kept only when b needs a gradient, and b's only when a does
    if int(R[a // 5, 0]) != CONST:
        xb = value_of(b, m, M, None, av).reshape(sb)
        ga = {DOT: lambda: g[0] * xb, MV: lambda: np.outer(g, xb), MM: lambda: g @ xb.T,
              BMM: lambda: g @ xb.transpose(0, 2, 1)}[op]()
        adjoint_of(a // 5, m, M, sg, ag)[:] += ga.ravel()
    if int(R[b // 5, 0]) != CONST:
        xa = value_of(a, m, M, None, av).reshape(sa)
        gb = {DOT: lambda: g[0] * xa, MV: lambda: xa.T @ g, MM: lambda: xa.T @ g,
              BMM: lambda: xa.transpose(0, 2, 1) @ g}[op]()
        adjoint_of(b // 5, m, M, sg, ag)[:] += gb.ravel()


def forward(op, r, R, m, M, sv, av):
    """Recomputes record r's value from its operands' (for replays)."""
    a, b = int(R[r, 1]), int(R[r, 2])
    xa = value_of(a, m, M, sv, av).reshape(shape_of(a, m, M))
    xb = value_of(b, m, M, sv, av).reshape(shape_of(b, m, M))
    value_of(5 * r, m, M, sv, av)[:] = np.ravel(np.dot(xa, xb) if op != BMM else xa @ xb)


def records(R, m, M, lo, hi):
    """Indices of the large matrix-product records among records lo..hi, ascending: the
    ones worth BLAS (the sweeps run smaller products as loops)."""
    ops = R[lo:hi + 1, 0]
    found = []
    for r in (np.nonzero((ops >= MM) & (ops <= MV))[0] + lo).tolist():
        ka, kb = m[int(R[r, 1]) // 5], m[int(R[r, 2]) // 5]
        sa = M[ka, SHAPE:SHAPE + M[ka, ND]]
        sb = M[kb, SHAPE:SHAPE + M[kb, ND]]
        if int(np.prod(sa)) * int(sb[-1] if len(sb) > 1 else 1) >= BLAS_MIN:
            found.append(r)
    return found
