"""NumPy's floating-point warnings off around tapegrad's own NumPy calls.

PyTorch says nothing when an operation overflows or makes a NaN; NumPy warns. ``np.errstate``
costs about a microsecond a call, as much as a small operation; NumPy 2 keeps its error
state in a context variable, which ``hush``/``unhush`` set and reset directly (a few tens
of nanoseconds). Where that variable is not there, they fall back to ``np.errstate``.
"""
import numpy as np

try:
    import functools
    from numpy._core import _ufunc_config as _config
    _STATE = _config._extobj_contextvar
    # C callables (a partial of a builtin method, a builtin method): no Python frame
    hush = functools.partial(_STATE.set, _config._make_extobj(all="ignore"))
    unhush = _STATE.reset
except (ImportError, AttributeError):          # an older or changed NumPy
    def hush():
        quiet = np.errstate(all="ignore")
        quiet.__enter__()
        return quiet

    def unhush(token):
        token.__exit__(None, None, None)


def quietly(f, *args, **kwargs):
    """``f(*args, **kwargs)`` with NumPy's floating-point warnings off (a matrix product
    that overflows: PyTorch gives inf and says nothing)."""
    tok = hush()
    try:
        return f(*args, **kwargs)
    finally:
        unhush(tok)
