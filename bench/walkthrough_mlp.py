"""The walkthrough's network (100x3 -> 32 -> 1, relu, sum of squares, 200 epochs of SGD).

One training iteration, as the post "Introducing torch autograd" writes it::

    y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with no_grad(): w.sub_(lr * w.grad); w.grad.zero_()     (for w1, w2, b1, b2)

run by hand-written NumPy gradients (the reference), tapegrad (eager; with the loss compiled
by ``tg.compile``; with the whole step compiled: forward, backward and update in one jitted
call), PyTorch eager (one thread), HIPS autograd, mygrad and, when JAX is installed (the
``bench`` extra installs it), a ``jax.jit`` of the whole step;
in float32 and float64, every peer from the same initial values. The script checks that
they all reach the same final loss (rtol 1e-6 in float64, 1e-3 in float32) and exits with
status 1 when one does not. Reported: µs per iteration and its ratio to NumPy.
"""
import _common as C  # first: pins BLAS threads, puts this checkout on sys.path

import numpy as np

LR = 1e-4
N, D_IN, D_HIDDEN, D_OUT = 100, 3, 32, 1
RTOL = {"float64": 1e-6, "float32": 1e-3}


def data(seed=2024):
    """x, y and the initial weights (w1, w2, b1, b2) of the walkthrough, in float64."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D_IN))
    y = (x[:, 0:1] * 0.2 - x[:, 1:2] * 1.3 - x[:, 2:3] * 0.5
         + rng.standard_normal((N, 1)))
    w1 = rng.standard_normal((D_IN, D_HIDDEN))
    w2 = rng.standard_normal((D_HIDDEN, D_OUT))
    b1 = np.zeros((1, D_HIDDEN))
    b2 = np.zeros((1, D_OUT))
    return x, y, (w1, w2, b1, b2)


# ----- the peers: each returns run(epochs) -> (final loss, seconds of the loop) -------------
def numpy_peer(X, Y, W0):
    def run(epochs):
        w1, w2, b1, b2 = (a.copy() for a in W0)
        t0 = C.clock()
        for _ in range(epochs):
            h = X @ w1 + b1
            hr = np.maximum(h, 0)
            d = hr @ w2 + b2 - Y
            loss = (d * d).sum()
            gy = 2 * d                      # d loss / d y_pred
            gw2 = hr.T @ gy
            gb2 = gy.sum(0, keepdims=True)
            gh = gy @ w2.T
            gh[h < 0] = 0                   # clamp(min=0): gradient 1 where h >= 0
            gw1 = X.T @ gh
            gb1 = gh.sum(0, keepdims=True)
            w1 -= LR * gw1
            w2 -= LR * gw2
            b1 -= LR * gb1
            b2 -= LR * gb2
        return float(loss), C.clock() - t0
    return run


def tapegrad_peer(tg, X, Y, W0):
    dt = {np.float32: tg.float32, np.float64: tg.float64}[X.dtype.type]
    x = tg.tensor(X, dtype=dt)
    y = tg.tensor(Y, dtype=dt)

    def run(epochs):
        w1, w2, b1, b2 = (tg.tensor(a, dtype=dt, requires_grad=True) for a in W0)
        t0 = C.clock()
        for _ in range(epochs):
            y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
            loss = (y_pred - y).pow(2).sum()
            loss.backward()
            with tg.no_grad():
                w1.sub_(LR * w1.grad)
                w2.sub_(LR * w2.grad)
                b1.sub_(LR * b1.grad)
                b2.sub_(LR * b2.grad)
                w1.grad.zero_()
                w2.grad.zero_()
                b1.grad.zero_()
                b2.grad.zero_()
        return loss.item(), C.clock() - t0
    return run


def tapegrad_compiled_peer(tg, X, Y, W0):
    """The same loop with the loss recorded once by tg.compile and replayed."""
    dt = {np.float32: tg.float32, np.float64: tg.float64}[X.dtype.type]
    x = tg.tensor(X, dtype=dt)
    y = tg.tensor(Y, dtype=dt)
    loss_fn = tg.compile(lambda w1, b1, w2, b2:
                         (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum())

    def run(epochs):
        w1, w2, b1, b2 = (tg.tensor(a, dtype=dt, requires_grad=True) for a in W0)
        t0 = C.clock()
        for _ in range(epochs):
            loss = loss_fn(w1, b1, w2, b2)
            loss.backward()
            with tg.no_grad():
                for w in (w1, b1, w2, b2):
                    w.sub_(LR * w.grad)
                    w.grad.zero_()
        return loss.item(), C.clock() - t0
    return run


def tapegrad_step_peer(tg, X, Y, W0):
    """The whole iteration (forward, backward, update) compiled by tg.compile: after two
    recordings (a step replays once two recordings agree), one jitted call per step."""
    dt = {np.float32: tg.float32, np.float64: tg.float64}[X.dtype.type]
    x = tg.tensor(X, dtype=dt)
    y = tg.tensor(Y, dtype=dt)

    def step(w1, b1, w2, b2):
        loss = (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()
        loss.backward()
        with tg.no_grad():
            for w in (w1, b1, w2, b2):
                w.sub_(LR * w.grad)
                w.grad.zero_()
        return loss
    step = tg.compile(step)

    def run(epochs):
        w1, w2, b1, b2 = (tg.tensor(a, dtype=dt, requires_grad=True) for a in W0)
        t0 = C.clock()
        for _ in range(epochs):
            loss = step(w1, b1, w2, b2)
        return loss.item(), C.clock() - t0
    return run


def torch_peer(torch, X, Y, W0):
    x = torch.from_numpy(X.copy())
    y = torch.from_numpy(Y.copy())

    def run(epochs):
        w1, w2, b1, b2 = (torch.from_numpy(a.copy()).requires_grad_() for a in W0)
        t0 = C.clock()
        for _ in range(epochs):
            y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
            loss = (y_pred - y).pow(2).sum()
            loss.backward()
            with torch.no_grad():
                w1.sub_(LR * w1.grad)
                w2.sub_(LR * w2.grad)
                b1.sub_(LR * b1.grad)
                b2.sub_(LR * b2.grad)
                w1.grad.zero_()
                w2.grad.zero_()
                b1.grad.zero_()
                b2.grad.zero_()
        return loss.item(), C.clock() - t0
    return run


def autograd_peer(autograd, X, Y, W0):
    import autograd.numpy as anp

    def loss_fn(params):
        w1, w2, b1, b2 = params
        h = anp.maximum(anp.dot(X, w1) + b1, 0.0)
        d = anp.dot(h, w2) + b2 - Y
        return anp.sum(d ** 2)

    step = autograd.value_and_grad(loss_fn)

    def run(epochs):
        params = [a.copy() for a in W0]
        t0 = C.clock()
        for _ in range(epochs):
            loss, grads = step(params)
            params = [p - LR * g for p, g in zip(params, grads)]
        return float(loss), C.clock() - t0
    return run


def mygrad_peer(mg, X, Y, W0):
    def relu(h):        # mygrad.nnet's relu would import mygrad.nnet (3 s of Numba jitting)
        return mg.maximum(h, 0.0)

    def run(epochs):
        w1, w2, b1, b2 = (mg.tensor(a.copy()) for a in W0)
        t0 = C.clock()
        for _ in range(epochs):
            y_pred = mg.matmul(relu(mg.matmul(X, w1) + b1), w2) + b2
            loss = mg.sum((y_pred - Y) ** 2)
            loss.backward()
            for w in (w1, w2, b1, b2):
                w.data -= LR * w.grad       # backward() leaves the data writable again
        return loss.item(), C.clock() - t0
    return run


def jax_peer(jax, X, Y, W0):
    import jax.numpy as jnp

    def loss_fn(params, x, y):
        w1, w2, b1, b2 = params
        d = jnp.maximum(x @ w1 + b1, 0) @ w2 + b2 - y
        return jnp.sum(d ** 2)

    @jax.jit
    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return [p - LR * g for p, g in zip(params, grads)], loss

    x, y = jnp.asarray(X), jnp.asarray(Y)

    def run(epochs):
        params = [jnp.asarray(a) for a in W0]
        t0 = C.clock()
        for _ in range(epochs):
            params, loss = step(params, x, y)
        loss.block_until_ready()
        return float(loss), C.clock() - t0
    return run


def main():
    args = C.parse_args(__doc__, repeats=7)
    epochs = 20 if args.quick else 200
    notes = []
    tg = C.peer("tapegrad", notes)
    torch = C.torch_one_thread(notes)
    autograd = C.peer("autograd", notes, "HIPS autograd")
    if args.quick:
        mg = None
        notes.append("mygrad: skipped with --quick (importing it compiles its GRU layer with "
                     "Numba, about 3 s)")
    else:
        mg = C.peer("mygrad", notes)
    jax = C.peer("jax", notes, "jax.jit")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)

    x64, y64, w64 = data()
    tables, failures, per_iter = [], [], {}
    for dname, npdt in [("float64", np.float64), ("float32", np.float32)]:
        X, Y = x64.astype(npdt), y64.astype(npdt)
        W0 = [w.astype(npdt) for w in w64]
        peers = [("NumPy, hand-written gradients", lambda: numpy_peer(X, Y, W0))]
        if tg is not None:
            peers.append(("tapegrad", lambda: tapegrad_peer(tg, X, Y, W0)))
            peers.append(("tapegrad, tg.compile of the loss",
                          lambda: tapegrad_compiled_peer(tg, X, Y, W0)))
            peers.append(("tapegrad, tg.compile of the whole step",
                          lambda: tapegrad_step_peer(tg, X, Y, W0)))
        if torch is not None:
            peers.append(("PyTorch eager", lambda: torch_peer(torch, X, Y, W0)))
        if autograd is not None:
            peers.append(("HIPS autograd", lambda: autograd_peer(autograd, X, Y, W0)))
        if mg is not None:
            peers.append(("mygrad", lambda: mygrad_peer(mg, X, Y, W0)))
        if jax is not None:
            peers.append(("jax.jit of the step", lambda: jax_peer(jax, X, Y, W0)))

        table = C.Table(f"{dname}: {epochs} epochs, µs per training iteration "
                        "(forward, backward, update)",
                        ["µs / iteration", "final loss", "loss rel. to NumPy"],
                        ratio_col=0, ref="NumPy, hand-written gradients", ratio_name="x NumPy")
        fns, last = {}, {}
        for name, make in peers:
            try:
                run = make()
            except Exception as e:  # a peer that fails is reported, not fatal
                notes.append(f"{name} ({dname}) failed: {type(e).__name__}: {e}")
                failures.append(f"{name} {dname}: {e}")
                continue

            def timed(run=run, name=name):
                last[name], sec = run(epochs)
                return {"loop": sec}
            fns[name] = timed
        meds, errors = C.measure_interleaved(fns, args.repeats, warmup=1)
        ref_loss = None
        for name, _ in peers:
            if name not in meds:
                table.add(name, "error", "-", "-")
                if name in errors:
                    e = errors[name]
                    notes.append(f"{name} ({dname}) failed: {type(e).__name__}: {e}")
                    failures.append(f"{name} {dname}: {e}")
                continue
            sec = meds[name]["loop"]
            loss = last[name]
            if ref_loss is None:
                ref_loss = loss
            rel = abs(loss - ref_loss) / abs(ref_loss)
            us = sec / epochs * 1e6
            per_iter[(name, dname)] = us
            table.add(name, us, f"{loss:.10g}", f"{rel:.1e}")
            if not rel <= RTOL[dname]:
                failures.append(f"{name} {dname}: final loss {loss!r} differs from NumPy's "
                                f"{ref_loss!r} by {rel:.2e} (rtol {RTOL[dname]})")
        tables.append(table)

    goals = []
    for dname in ("float64", "float32"):
        c = per_iter.get(("tapegrad, tg.compile of the whole step", dname))
        n = per_iter.get(("NumPy, hand-written gradients", dname))
        j = per_iter.get(("jax.jit of the step", dname))
        if c and n:
            goals.append(C.goal_line(f"walkthrough, whole step compiled (issue 11), {dname}",
                                     f"{c / n:.2f}x NumPy", "<= 0.6x NumPy", c / n <= 0.6))
        if c and j:
            goals.append(C.goal_line(f"walkthrough, whole step compiled (issue 11), {dname}",
                                     f"jax.jit's time / tapegrad's = {j / c:.2f}",
                                     "> 1 (faster than jax.jit of the step)", j / c > 1))
    for dname in ("float64", "float32"):
        t = per_iter.get(("tapegrad", dname))
        n = per_iter.get(("NumPy, hand-written gradients", dname))
        p = per_iter.get(("PyTorch eager", dname))
        if t and n:
            goals.append(C.goal_line(f"walkthrough, eager (issue 10), {dname}",
                                     f"{t / n:.2f}x NumPy", "<= 1.6x NumPy", t / n <= 1.6))
        if t and p:
            goals.append(C.goal_line(f"walkthrough, eager (issue 4), {dname}",
                                     f"PyTorch's time / tapegrad's = {p / t:.2f}",
                                     ">= 4 (4x faster than PyTorch)", p / t >= 4))
    if torch is not None:
        notes.append("PyTorch runs with torch.set_num_threads(1).")
    notes.append("The peers' runs are interleaved (one run of each in turn, then again), so a "
                 "change of load on the machine reaches all of them alike.")
    notes.append(f"Every peer starts from the same initial values (NumPy seed 2024) and must "
                 f"reach NumPy's final loss (rtol {RTOL['float64']:g} in float64, "
                 f"{RTOL['float32']:g} in float32); the script exits 1 otherwise.")
    if failures:
        notes += ["FAILED CHECK: " + f for f in failures]
    C.emit("walkthrough_mlp", f"Walkthrough network: 100x3 -> 32 -> 1, {epochs} epochs",
           tables + [C.goal_block(goals)], notes, args)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
