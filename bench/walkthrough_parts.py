"""Where the time of one eager walkthrough iteration goes: forward, backward and update of
tapegrad next to the same parts of hand-written NumPy (``walkthrough_mlp.py``'s network).

One more forward runs each iteration under ``no_grad`` (its result unused): what the
tensors cost with nothing recorded, so that forward minus it is the cost of recording.
Each part is timed with the process's CPU clock around it (two clock reads a part, well
under a microsecond) and summed over the iterations; medians over repeats. A diagnostic
for the eager goal of issue 10 (<= 1.6x NumPy): it says which part holds the gap. The
same parts of ``thin_tape.py``, a reference tape with the least machinery, show what the
design costs on this machine before any of a library's duties.
"""
import _common as C  # first: pins BLAS threads, puts this checkout on sys.path

import numpy as np

import thin_tape
from walkthrough_mlp import LR, data


def numpy_parts(X, Y, W0, iters, ws=None):
    w1, w2, b1, b2 = (a.copy() for a in W0)
    if ws is not None:
        ws[:] = w1, w2, b1, b2
    fwd = bwd = upd = 0.0
    clock = C.clock
    for _ in range(iters):
        t0 = clock()
        h = X @ w1 + b1
        hr = np.maximum(h, 0)
        d = hr @ w2 + b2 - Y
        (d * d).sum()
        t1 = clock()
        gy = 2 * d
        gw2 = hr.T @ gy
        gb2 = gy.sum(0, keepdims=True)
        gh = gy @ w2.T
        gh[h < 0] = 0
        gw1 = X.T @ gh
        gb1 = gh.sum(0, keepdims=True)
        t2 = clock()
        w1 -= LR * gw1
        w2 -= LR * gw2
        b1 -= LR * gb1
        b2 -= LR * gb2
        t3 = clock()
        fwd, bwd, upd = fwd + t1 - t0, bwd + t2 - t1, upd + t3 - t2
    return {"forward": fwd, "backward": bwd, "update": upd}


def tapegrad_parts(tg, X, Y, W0, iters):
    dt = tg.float32 if X.dtype == np.float32 else tg.float64
    x, y = tg.tensor(X, dtype=dt), tg.tensor(Y, dtype=dt)
    ws = w1, w2, b1, b2 = [tg.tensor(a, dtype=dt, requires_grad=True) for a in W0]
    fwd = bwd = upd = bare = 0.0
    clock = C.clock
    for _ in range(iters):
        t0 = clock()
        loss = (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()
        t1 = clock()
        loss.backward()
        t2 = clock()
        with tg.no_grad():
            for w in ws:
                w.sub_(LR * w.grad)
            for w in ws:
                w.grad.zero_()
        t3 = clock()
        with tg.no_grad():
            (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()
        t4 = clock()
        fwd, bwd, upd, bare = fwd + t1 - t0, bwd + t2 - t1, upd + t3 - t2, bare + t4 - t3
    return {"forward": fwd, "backward": bwd, "update": upd, "bare": bare}


def thin_parts(X, Y, W0, iters, ws=None):
    """The same parts on ``thin_tape.py``'s reference tape (no forward under no_grad: it
    has no grad mode); ``ws``, a list, receives its weights."""
    x, y = thin_tape.const(X), thin_tape.const(Y)
    w1, w2, b1, b2 = [thin_tape.leaf(a) for a in W0]
    if ws is None:
        ws = []
    ws[:] = w1, w2, b1, b2
    fwd = bwd = upd = 0.0
    clock = C.clock
    for _ in range(iters):
        t0 = clock()
        loss = (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()
        t1 = clock()
        loss.backward()
        t2 = clock()
        for w in ws:
            w.sub_(LR * w.grad)
        for w in ws:
            w.grad.zero_()
        t3 = clock()
        fwd, bwd, upd = fwd + t1 - t0, bwd + t2 - t1, upd + t3 - t2
    return {"forward": fwd, "backward": bwd, "update": upd}


def main():
    args = C.parse_args(__doc__, repeats=15)
    iters = 50 if args.quick else 300
    notes = []
    tg = C.peer("tapegrad", notes)
    x64, y64, w64 = data()
    blocks = []
    for dname, npdt in [("float64", np.float64), ("float32", np.float32)]:
        X, Y, W0 = x64.astype(npdt), y64.astype(npdt), [w.astype(npdt) for w in w64]
        mine, ref = [], []                      # the reference trains as NumPy does
        thin_parts(X, Y, W0, 20, mine), numpy_parts(X, Y, W0, 20, ref)
        if not all(np.allclose(a.v, b, rtol=1e-5, atol=0) for a, b in zip(mine, ref)):
            raise SystemExit(f"{dname}: thin_tape.py's weights differ from NumPy's")
        fns = {"numpy": lambda: numpy_parts(X, Y, W0, iters),
               "thin": lambda: thin_parts(X, Y, W0, iters)}
        if tg is not None:
            fns["tapegrad"] = lambda: tapegrad_parts(tg, X, Y, W0, iters)
        meds, errors = C.measure_interleaved(fns, args.repeats, warmup=1)
        if errors:
            raise SystemExit(f"{dname}: {errors}")
        us = {k: {p: s / iters * 1e6 for p, s in v.items()} for k, v in meds.items()}
        n = us["numpy"]
        n_total = n["forward"] + n["backward"] + n["update"]
        h = us["thin"]
        h_total = h["forward"] + h["backward"] + h["update"]
        table = C.Table(f"{dname}: µs per part of one iteration", [
            "NumPy", "tapegrad", "tapegrad - NumPy", "x NumPy", "thin tape (reference)",
            "thin x NumPy"])
        if "tapegrad" in us:
            t = us["tapegrad"]
            t_total = t["forward"] + t["backward"] + t["update"]
            for part in ("forward", "backward", "update"):
                table.add(part, n[part], t[part], t[part] - n[part], f"{t[part] / n[part]:.2f}",
                          h[part], f"{h[part] / n[part]:.2f}")
            table.add("whole iteration", n_total, t_total, t_total - n_total,
                      f"{t_total / n_total:.2f}", h_total, f"{h_total / n_total:.2f}")
            table.add("forward under no_grad (nothing recorded)", n["forward"], t["bare"],
                      t["bare"] - n["forward"], f"{t['bare'] / n['forward']:.2f}", "-", "-")
            floor = (t_total - (t["forward"] - t["bare"])) / n_total
            table.notes.append(
                f"Recording costs {t['forward'] - t['bare']:.1f} µs of the forward (forward "
                f"minus forward under no_grad). With recording free, an iteration would take "
                f"{floor:.2f}x NumPy: the tensors, the backward and the update alone. The "
                f"thin tape (bench/thin_tape.py: one object and one tuple an op, a Python "
                f"backward, none of a library's checks) takes {h_total / n_total:.2f}x.")
        blocks.append(table)
    notes.append("The thin tape is a reference, not a peer: it knows the walkthrough's six ops "
                 "and nothing of dtypes, errors, versions, hooks, grad mode or tg.compile. "
                 "It shows what the design of a tape with the least machinery costs here.")
    notes.append("Parts are timed inside one loop, so their sum is below walkthrough_mlp.py's "
                 "time per iteration by what runs between them (the loop, the no_grad "
                 "context) and above it by the clock reads.")
    C.emit("walkthrough_parts", "The eager walkthrough iteration, part by part", blocks,
           notes, args)


if __name__ == "__main__":
    main()
