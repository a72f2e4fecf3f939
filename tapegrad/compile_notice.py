"""One line on stderr while Numba compiles tapegrad's kernels for the first time.

A cold start compiles for several seconds (then the kernels are cached on disk); a new
user should not wait in silence. The first call of a kernel for a kind of tape runs under
a timer: if it takes longer than a second, the timer says once that kernels are being
compiled. Warm calls (the kernel already loaded) pay one set lookup.

The first call also runs with Python's cyclic garbage collector paused: Numba's compiler
makes millions of objects, and the collector's passes over them were a fifth of a cold
compile (1.5 s of 7.5). What the compile leaves behind is collected by the next pass after
it (the peak memory of a cold compile grows by about 100 MB meanwhile).

And the first call starts Numba without importing scipy.linalg (see ``_no_blas_import``):
0.2 s of every process's first backward went to it, for a BLAS no tapegrad kernel calls.
"""
import gc
import importlib.util
import sys
import threading

_warm = set()
_said = [False]
NOTICE = ("tapegrad: compiling the Numba kernels for this kind of tape (once: they are "
          "cached on disk; `python -m tapegrad.warmup` does it ahead of time) ...")


def _say():
    if not _said[0]:
        _said[0] = True
        print(NOTICE, file=sys.stderr, flush=True)


def _no_blas_import():
    """Numba's first kernel call in a process loads its CPU target, which imports
    ``numba.np.arraymath``; that module probes for BLAS at import by importing
    scipy.linalg (which imports numpy.f2py and numpy.testing: 0.2 s). While it loads, the
    probe (``numba.np.linalg.ensure_blas``) is answered by whether scipy is installed,
    without importing it. Returns the undo, or None when there is nothing to do. A kernel
    that types np.dot or np.linalg later still imports and checks scipy for real: the
    probe's function is put back as soon as the first call returns."""
    if "numba.np.arraymath" in sys.modules or not _scipy_installed():
        return None                     # probed already; or it fails fast, as it should
    try:
        from numba.np import linalg
        probe = linalg.ensure_blas
    except (ImportError, AttributeError):   # another Numba: it probes as it does
        return None
    linalg.ensure_blas = _installed

    def undo():
        linalg.ensure_blas = probe
    return undo


def _scipy_installed():
    try:
        return importlib.util.find_spec("scipy") is not None
    except (ImportError, ValueError):   # sys.modules["scipy"] = None blocks it, say
        return False


def _installed():
    """ensure_blas while Numba loads: scipy is installed (its BLAS imports when used)."""


def first_call(key, fn, *args):
    """fn(*args); the first time for ``key``, with the compile notice's timer running."""
    if key in _warm:
        return fn(*args)
    timer = threading.Timer(1.0, _say)
    timer.daemon = True
    timer.start()
    collecting = gc.isenabled()
    gc.disable()
    undo = _no_blas_import()
    try:
        return fn(*args)
    finally:
        if undo is not None:
            undo()
        if collecting:
            gc.enable()
        timer.cancel()
        _warm.add(key)
