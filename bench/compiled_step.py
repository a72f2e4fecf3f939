"""The walkthrough's whole training step compiled by tg.compile, against hand-written NumPy
alone: runs of the two alternate (NumPy, tapegrad, NumPy, tapegrad, ...) with nothing else
between them, and the median of the per-pair ratios is reported.

``walkthrough_mlp.py`` interleaves eight peers, whose runs evict each other's caches and
whose imports (PyTorch, JAX) keep threads around; on these 2-core machines that moves the
ratio of a 25 µs step by 5-10% from run to run. Here the only two peers are the step and
its reference, with the same data and training loop as ``walkthrough_mlp.py`` (its peers
are imported from it), and both must reach the same final loss.
"""
import _common as C  # first: pins BLAS threads, puts this checkout on sys.path

import statistics

import numpy as np

import walkthrough_mlp as W


def main():
    args = C.parse_args(__doc__, repeats=21)
    epochs = 100 if args.quick else 2000
    notes = []
    tg = C.peer("tapegrad", notes)
    if tg is None:
        C.emit("compiled_step", "Whole step compiled, alternated with NumPy alone", [], notes,
               args)
        return 1
    x64, y64, w64 = W.data()
    table = C.Table(f"{epochs} epochs a run, {args.repeats} pairs of runs",
                    ["NumPy µs / step", "tapegrad µs / step", "x NumPy (median of pairs)",
                     "x NumPy (best pair)"])
    goals, failures = [], []
    for dname, npdt in [("float64", np.float64), ("float32", np.float32)]:
        X, Y = x64.astype(npdt), y64.astype(npdt)
        W0 = [w.astype(npdt) for w in w64]
        runs = [W.numpy_peer(X, Y, W0), W.tapegrad_step_peer(tg, X, Y, W0)]
        for run in runs:                    # warm-up: the recordings, the kernels' cache
            run(20)
        secs, ratios, losses = [[], []], [], [None, None]
        for _ in range(args.repeats):
            for i, run in enumerate(runs):
                losses[i], s = run(epochs)
                secs[i].append(s / epochs * 1e6)
            ratios.append(secs[1][-1] / secs[0][-1])
        if not abs(losses[1] - losses[0]) <= W.RTOL[dname] * abs(losses[0]):
            failures.append(f"{dname}: final loss {losses[1]!r} differs from NumPy's "
                            f"{losses[0]!r}")
        ratio = statistics.median(ratios)
        table.add(dname, statistics.median(secs[0]), statistics.median(secs[1]), ratio,
                  min(ratios))
        goals.append(C.goal_line(f"walkthrough, whole step compiled (issue 11), {dname}",
                                 f"{ratio:.2f}x NumPy", "<= 0.6x NumPy", ratio <= 0.6))
    notes.append("Each run trains from the same initial values (NumPy seed 2024); the "
                 "tapegrad step is recorded twice and replayed, as in walkthrough_mlp.py.")
    notes += failures
    C.emit("compiled_step", "Whole step compiled, alternated with NumPy alone",
           [table, C.goal_block(goals)], notes, args)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
