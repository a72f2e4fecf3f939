"""``python -m tapegrad.warmup``: compiles tapegrad's Numba kernels into the on-disk cache
(Numba's ``NUMBA_CACHE_DIR``, or ``__pycache__`` beside the package), so that the first
backward of a later process only loads them."""
import time


def warmup(verbose=False):
    """Runs small backwards (and replays) through every kernel, in float32 and float64 and
    every tier of the sweep (codegen_sweeps.py); returns seconds."""
    import tapegrad as tg
    t0 = time.perf_counter()
    for dt in (tg.float32, tg.float64):
        x = tg.ones(2, 2, dtype=dt, requires_grad=True)
        (x * 2).sum().backward()                              # basic tier, one call
        (x.exp() * 2).sum().backward()                        # core tier, one call
        x.exp().softmax(1).sum().backward()                   # full tier, one call
        y = x * 2
        y.retain_grad()
        (y.mm(x) * 3).sum().backward()                        # the general path
        s = tg.tensor(1.5, dtype=dt, requires_grad=True)
        (s * s + s).tanh().backward()                         # scalar tier
    t1 = time.perf_counter()
    f = tg.compile(lambda w: (w * 2).exp().sum())
    for _ in range(2):
        f(tg.ones(2, dtype=tg.float64, requires_grad=True)).backward()
    t2 = time.perf_counter()
    if verbose:
        print(f"reverse sweep ready in {t1 - t0:.1f} s, forward sweep in {t2 - t1:.1f} s")
    return t2 - t0


if __name__ == "__main__":
    warmup(verbose=True)
