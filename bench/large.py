"""Large arrays, where BLAS dominates: a 4096-row batch through a 512-512-512-1 relu network.

One iteration is the forward pass and the backward pass of the mean squared error::

    y_pred = x.mm(w1).add(b1).relu().mm(w2).add(b2).relu().mm(w3).add(b3)
    loss = (y_pred - y).pow(2).mean();  loss.backward()

(the gradients are set to None before each iteration, as ``zero_grad()`` does), in float32
and float64, by tapegrad, PyTorch eager (one thread, the reference) and hand-written NumPy
gradients; every BLAS runs on one thread. The gradients of all three are compared (rtol
1e-9 in float64, 1e-3 in float32, relative to the largest entry); the script exits 1
when they differ.
"""
import _common as C  # first: pins BLAS threads, puts this checkout on sys.path

import numpy as np

RTOL = {"float64": 1e-9, "float32": 1e-3}


def data(batch, width, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width))
    y = rng.standard_normal((batch, 1))
    ws = [rng.standard_normal((width, width)) / np.sqrt(width),
          np.zeros((1, width)),
          rng.standard_normal((width, width)) / np.sqrt(width),
          np.zeros((1, width)),
          rng.standard_normal((width, 1)) / np.sqrt(width),
          np.zeros((1, 1))]
    return x, y, ws


def numpy_peer(X, Y, W):
    w1, b1, w2, b2, w3, b3 = W
    n = X.shape[0]

    def step():
        h1 = X @ w1 + b1
        r1 = np.maximum(h1, 0)
        h2 = r1 @ w2 + b2
        r2 = np.maximum(h2, 0)
        d = r2 @ w3 + b3 - Y
        loss = (d * d).mean()
        g = d * (2 / n)
        gw3 = r2.T @ g
        gb3 = g.sum(0, keepdims=True)
        g2 = g @ w3.T
        g2[h2 <= 0] = 0
        gw2 = r1.T @ g2
        gb2 = g2.sum(0, keepdims=True)
        g1 = g2 @ w2.T
        g1[h1 <= 0] = 0
        gw1 = X.T @ g1
        gb1 = g1.sum(0, keepdims=True)
        return float(loss), [gw1, gb1, gw2, gb2, gw3, gb3]
    return step


def tapegrad_peer(tg, X, Y, W):
    dt = {np.float32: tg.float32, np.float64: tg.float64}[X.dtype.type]
    x, y = tg.tensor(X, dtype=dt), tg.tensor(Y, dtype=dt)
    w1, b1, w2, b2, w3, b3 = ps = [tg.tensor(a, dtype=dt, requires_grad=True) for a in W]

    def step():
        for p in ps:
            p.grad = None
        y_pred = x.mm(w1).add(b1).relu().mm(w2).add(b2).relu().mm(w3).add(b3)
        loss = (y_pred - y).pow(2).mean()
        loss.backward()
        return loss.item(), [p.grad.numpy().copy() for p in ps]
    return step


def torch_peer(torch, X, Y, W):
    x, y = torch.from_numpy(X.copy()), torch.from_numpy(Y.copy())
    w1, b1, w2, b2, w3, b3 = ps = [torch.from_numpy(a.copy()).requires_grad_() for a in W]

    def step():
        for p in ps:
            p.grad = None
        y_pred = x.mm(w1).add(b1).relu().mm(w2).add(b2).relu().mm(w3).add(b3)
        loss = (y_pred - y).pow(2).mean()
        loss.backward()
        return loss.item(), [p.grad.numpy().copy() for p in ps]
    return step


def rel_err(gs, ref):
    return max(float(np.max(np.abs(np.asarray(g, np.float64) - r)))
               / max(float(np.max(np.abs(r))), 1e-300) for g, r in zip(gs, ref))


def main():
    args = C.parse_args(__doc__, repeats=5)
    batch, width = (256, 64) if args.quick else (4096, 512)
    notes, failures = [], []
    tg = C.peer("tapegrad", notes)
    torch = C.torch_one_thread(notes)
    x64, y64, w64 = data(batch, width)
    tables, per = [], {}
    for dname, npdt in [("float32", np.float32), ("float64", np.float64)]:
        X, Y, W = x64.astype(npdt), y64.astype(npdt), [w.astype(npdt) for w in w64]
        peers = []
        if torch is not None:
            peers.append(("PyTorch eager", lambda: torch_peer(torch, X, Y, W)))
        if tg is not None:
            peers.append(("tapegrad", lambda: tapegrad_peer(tg, X, Y, W)))
        peers.append(("NumPy, hand-written gradients", lambda: numpy_peer(X, Y, W)))
        table = C.Table(f"{dname}: batch {batch}, {width}-{width}-{width}-1, forward + "
                        "backward per iteration", ["ms / iteration", "loss",
                                                   "grad rel. err vs PyTorch"],
                        ratio_col=0, ref="PyTorch eager" if torch is not None else
                        "NumPy, hand-written gradients", ratio_name="x PyTorch"
                        if torch is not None else "x NumPy")
        fns, last = {}, {}
        for name, make in peers:
            try:
                step = make()
            except Exception as e:
                notes.append(f"{name} ({dname}) failed: {type(e).__name__}: {e}")
                failures.append(f"{name} {dname}: {e}")
                continue

            def once(step=step, name=name):
                last[name] = step()
            fns[name] = once
        meds, errors = C.measure_interleaved(fns, args.repeats, warmup=1)
        ref_grads = None
        for name, _ in peers:
            if name not in meds:
                table.add(name, "error", "-", "-")
                if name in errors:
                    e = errors[name]
                    notes.append(f"{name} ({dname}) failed: {type(e).__name__}: {e}")
                    failures.append(f"{name} {dname}: {e}")
                continue
            sec = meds[name]
            loss, grads = last[name]
            grads = [np.array(g, np.float64) for g in grads]
            if ref_grads is None:
                ref_grads = grads
                err = "-"
            else:
                e = rel_err(grads, ref_grads)
                err = f"{e:.1e}"
                if not e <= RTOL[dname]:
                    failures.append(f"{name} {dname}: gradients differ from "
                                    f"{peers[0][0]}'s by {e:.2e} (rtol {RTOL[dname]:g})")
            per[(name, dname)] = sec
            table.add(name, sec * 1e3, f"{loss:.6g}", err)
        tables.append(table)
    goals = []
    for dname in ("float32", "float64"):
        t, p = per.get(("tapegrad", dname)), per.get(("PyTorch eager", dname))
        if t and p:
            goals.append(C.goal_line(f"large arrays, {dname} (issue 10)",
                                     f"{t / p:.2f}x PyTorch", "<= 1.1x PyTorch", t / p <= 1.1))
    if torch is not None:
        notes.append("PyTorch runs with torch.set_num_threads(1); NumPy's BLAS (which "
                     "tapegrad calls for matrix products, forward and backward) with one "
                     "thread too.")
    notes.append("The peers' runs are interleaved (one run of each in turn, then again), so a "
                 "change of load on the machine reaches all of them alike.")
    if failures:
        notes += ["FAILED CHECK: " + f for f in failures]
    C.emit("large", f"Large arrays: batch {batch} through {width}-{width}-{width}-1",
           tables + [C.goal_block(goals)], notes, args)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
