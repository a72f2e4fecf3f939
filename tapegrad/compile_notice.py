"""One line on stderr while Numba compiles tapegrad's kernels for the first time.

A cold start compiles for several seconds (then the kernels are cached on disk); a new
user should not wait in silence. The first call of a kernel for a kind of tape runs under
a timer: if it takes longer than a second, the timer says once that kernels are being
compiled. Warm calls (the kernel already loaded) pay one set lookup.

The first call also runs with Python's cyclic garbage collector paused: Numba's compiler
makes millions of objects, and the collector's passes over them were a fifth of a cold
compile (1.5 s of 7.5). What the compile leaves behind is collected by the next pass after
it (the peak memory of a cold compile grows by about 100 MB meanwhile).
"""
import gc
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


def first_call(key, fn, *args):
    """fn(*args); the first time for ``key``, with the compile notice's timer running."""
    if key in _warm:
        return fn(*args)
    timer = threading.Timer(1.0, _say)
    timer.daemon = True
    timer.start()
    collecting = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if collecting:
            gc.enable()
        timer.cancel()
        _warm.add(key)
