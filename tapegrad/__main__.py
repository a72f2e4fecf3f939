"""``python -m tapegrad``: the walkthrough "Introducing torch autograd", run with tapegrad."""
import time

import tapegrad as tg


def main():
    print("== Autograd basics")
    x = tg.ones(2, 2, requires_grad=True)
    y = x.mean()
    print("x =", x)
    print("y = x.mean() =", y)
    print("y.grad_fn =", y.grad_fn)
    y.backward()
    print("after y.backward(), x.grad =", x.grad)

    print("\n== Digging deeper")
    x1 = tg.ones(2, 2, requires_grad=True)
    x2 = tg.tensor([1.1], requires_grad=True)
    y = x1 * (x2 + 2)
    z = y.pow(2) * 3
    out = z.mean()
    y.retain_grad()
    z.retain_grad()
    node = out.grad_fn
    while node is not None and node.next_functions:
        print(f"{node.name():16s} -> {[f and f.name() for f, _ in node.next_functions]}")
        node = node.next_functions[0][0]
    out.backward()
    for name, t in (("z", z), ("y", y), ("x1", x1), ("x2", x2)):
        print(f"{name}.grad = {t.grad}")

    print("\n== A two-layer network trained with autograd")
    tg.manual_seed(777)
    d_in, d_hidden, d_out, n = 3, 32, 1, 100
    x = tg.randn(n, d_in)
    y = x[:, 0, None] * 0.2 - x[:, 1, None] * 1.3 - x[:, 2, None] * 0.5 + tg.randn(n, 1)
    w1 = tg.randn(d_in, d_hidden, requires_grad=True)
    w2 = tg.randn(d_hidden, d_out, requires_grad=True)
    b1 = tg.zeros(1, d_hidden, requires_grad=True)
    b2 = tg.zeros(1, d_out, requires_grad=True)
    learning_rate = 1e-4
    start = time.perf_counter()
    for t in range(1, 201):          # 1-based, as the seed's for (t in 1:200) and notebook 3
        y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
        loss = (y_pred - y).pow(2).sum()
        if t % 10 == 0:
            print(f"Epoch: {t:3d}   Loss: {loss.item():.4f}")
        loss.backward()
        with tg.no_grad():
            for w in (w1, b1, w2, b2):
                w.sub_(learning_rate * w.grad)
                w.grad.zero_()
    per_epoch = (time.perf_counter() - start) / 200 * 1e6
    print(f"{per_epoch:.0f} µs per epoch (the first includes Numba's compile or cache load)")


if __name__ == "__main__":
    main()
