"""What the generated create_graph formulas call (``_generated/formulas.py``): where() and
sign() on tensors, Python numbers or both."""
from .base import TensorBase
from .indexing import where


def _where(cond, a, b):
    """a where cond holds, b elsewhere (cond a bool tensor, or a Python bool)."""
    if not isinstance(cond, TensorBase):
        return a if cond else b
    return where(cond, a, b)


def _sign(x):
    """sign(x), 0 at 0 and for NaN: a constant (its derivative is 0 almost everywhere)."""
    return (x > 0).to(x.dtype) - (x < 0).to(x.dtype)
