"""tg.compile of float32 functions that use integer tensors (class targets, gather
indices) equals eager mode to the bit.

Eager mode sweeps a tape whose float records are all float32 in float32, integer records
or not. A replay used to hold such a tape's values in a float64 arena as soon as any
record was an integer one, so its backward summed in float64: cross_entropy with integer
targets, or a gather next to a broadcast product, gave gradients an ulp off eager's (and
PyTorch's). Now the arena is float32 whenever eager's sweep is; integer values are exact
in it below 2^24 in magnitude, and a guard sends a call with larger ones to eager mode.
"""
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F

RNG = np.random.default_rng(17)


def _calls(f, make_args, n=5):
    """(value, grads) of f eagerly and compiled, for n calls at new values each."""
    cf = tg.compile(f)
    out = []
    for _ in range(n):
        vals = make_args()
        res = []
        for fn in (f, cf):
            args = [tg.tensor(v, requires_grad=g) for v, g in vals]
            y = fn(*args)
            y.backward()
            res.append((y.item(), [a.grad.numpy().copy() for a, (_, g) in zip(args, vals) if g]))
        out.append(res)
    return out


def _assert_bitwise(out):
    for eager, compiled in out:
        assert eager[0] == compiled[0]
        for a, b in zip(eager[1], compiled[1]):
            assert a.dtype == b.dtype == np.float32
            assert np.array_equal(a, b)


def test_cross_entropy_with_integer_targets():
    targets = tg.tensor(RNG.integers(0, 5, 16))

    def f(x, w, b):
        return F.cross_entropy(x @ w + b, targets)
    _assert_bitwise(_calls(f, lambda: [
        (RNG.standard_normal((16, 8)).astype(np.float32), False),
        (RNG.standard_normal((8, 5)).astype(np.float32), True),
        (RNG.standard_normal(5).astype(np.float32), True)]))


def test_cross_entropy_compiled_is_eagers_and_near_pytorchs():
    torch = pytest.importorskip("torch")
    t = RNG.integers(0, 4, 12)
    x = RNG.standard_normal((12, 4)).astype(np.float32)
    cf = tg.compile(lambda z: F.cross_entropy(z * 1.5, tg.tensor(t)))
    tz = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(tz * 1.5, torch.tensor(t)).backward()
    e = tg.tensor(x, requires_grad=True)
    F.cross_entropy(e * 1.5, tg.tensor(t)).backward()
    for _ in range(3):                  # the recording calls, then replays
        z = tg.tensor(x, requires_grad=True)
        cf(z).backward()
        assert np.array_equal(z.grad.numpy(), e.grad.numpy())
        assert np.allclose(z.grad.numpy(), tz.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_a_gather_next_to_a_broadcast_product():
    index = tg.zeros(4, 1, dtype=tg.int64)

    def f(a, b):
        p = a * b                       # a (4, 1) broadcast: its grad sums a row
        return p.gather(-1, index).sum() + p.sum()
    _assert_bitwise(_calls(f, lambda: [(RNG.standard_normal((4, 1)).astype(np.float32), True),
                                       (RNG.standard_normal((4, 3)).astype(np.float32), True)],
                           n=20))


@pytest.mark.parametrize("big", [2 ** 24 + 1, -(2 ** 24) - 3, 2 ** 40 + 7])
def test_integer_values_beyond_float32s_exact_range_are_eagers(big):
    """k + 1 of an int64 argument, cast to float32: an arena of float32 would round k
    first; the guard sends such a call to eager mode, whose integers are exact."""
    def f(x, k):
        return (x * (k + 1).to(tg.float32)).sum()
    cf = tg.compile(f)
    for ks in ([3, 4], [big, 5], [7, 1], [big - 2, big]):
        k = tg.tensor(ks)
        outs = []
        for fn in (f, cf):
            x = tg.ones(2, requires_grad=True)
            y = fn(x, k)
            y.backward()
            outs.append((y.item(), x.grad.numpy().copy()))
        assert outs[0][0] == outs[1][0]
        assert np.array_equal(outs[0][1], outs[1][1])
        assert outs[1][1].tolist() == [np.float32(v + 1) for v in ks]
