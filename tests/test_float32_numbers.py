"""A Python number with a float32 tensor is a float32 number first, as in PyTorch (a wrapped
number takes the tensor's dtype): ``t - 0.37`` is ``t - float32(0.37)`` computed in float32,
not ``t - 0.37`` computed in float64 and rounded. The two differ in the last bit for about a
fifth of the values. 0-d tensors (Python-float values) go through tapegrad's scalar paths,
arrays through NumPy, which casts the same way; both must agree with the float32 oracle
below to the bit, in eager mode, in place and in a tg.compile replay."""
import numpy as np
import pytest

import tapegrad as tg

pytestmark = pytest.mark.usefixtures("isolated")

F = np.float32
VALUES = np.random.default_rng(0).standard_normal(64).astype(F)
NUMBERS = [0.37, 1.1, -2.3, 0.1, 3.7, 3]

# name, tapegrad/torch op, float32 oracle (numbers cast to float32 first)
OPS = [("add", lambda t, c: t + c, lambda a, c: a + F(c)),
       ("radd", lambda t, c: c + t, lambda a, c: F(c) + a),
       ("sub", lambda t, c: t - c, lambda a, c: a - F(c)),
       ("rsub", lambda t, c: c - t, lambda a, c: F(c) - a),
       ("mul", lambda t, c: t * c, lambda a, c: a * F(c)),
       ("rmul", lambda t, c: c * t, lambda a, c: F(c) * a),
       ("div", lambda t, c: t / c, lambda a, c: a / F(c)),
       ("rdiv", lambda t, c: c / t, lambda a, c: (F(1) / a) * F(c)),   # PyTorch: 1/t * c
       ("add_method", lambda t, c: t.add(c), lambda a, c: a + F(c)),
       ("mul_method", lambda t, c: t.mul(c), lambda a, c: a * F(c))]
IDS = [o[0] for o in OPS]


def _bits(x):
    return np.asarray(x, F).view(np.uint32)


@pytest.mark.parametrize("name,op,oracle", OPS, ids=IDS)
@pytest.mark.parametrize("shape", [(), (64,)], ids=["0d", "array"])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_a_float32_tensor_and_a_number_compute_in_float32(name, op, oracle, shape,
                                                          requires_grad):
    for c in NUMBERS:
        want = oracle(VALUES, c)
        if shape == ():
            got = [op(tg.tensor(v, requires_grad=requires_grad), c).item() for v in VALUES]
        else:
            got = op(tg.tensor(VALUES, requires_grad=requires_grad), c).detach().numpy()
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"{name} {c}")


@pytest.mark.parametrize("method,oracle", [("add_", lambda a, c: a + F(c)),
                                           ("sub_", lambda a, c: a - F(c)),
                                           ("mul_", lambda a, c: a * F(c)),
                                           ("div_", lambda a, c: a / F(c))])
def test_in_place_with_a_number_computes_in_float32(method, oracle):
    for c in NUMBERS:
        got = []
        for v in VALUES:
            t = tg.tensor(v)
            getattr(t, method)(c)
            got.append(t.item())
        np.testing.assert_array_equal(_bits(got), _bits(oracle(VALUES, c)))


@pytest.mark.parametrize("name,op,oracle", OPS[:8], ids=IDS[:8])
def test_the_gradient_of_a_float32_number_op_reads_the_float32_number(name, op, oracle):
    # d(t*c)/dt = c, d(c/t)/dt = -c/t^2, ...: each in float32 with c cast first. The oracle
    # is a central difference in float64 of the float32 function's exact form, to the
    # float32 precision; the mul/div rows are checked to the bit
    for c in NUMBERS:
        for v in VALUES[:16]:
            t = tg.tensor(v, requires_grad=True)
            op(t, c).backward()
            g = t.grad.item()
            cf, vf = float(F(c)), float(v)
            want = {"add": 1.0, "radd": 1.0, "sub": 1.0, "rsub": -1.0, "mul": cf, "rmul": cf,
                    "div": 1.0 / cf, "rdiv": -cf / (vf * vf)}[name]   # (c/t: 1/t * c)
            if name in ("add", "radd", "sub", "rsub", "mul", "rmul"):
                assert g == float(F(want))
            else:
                assert g == pytest.approx(want, rel=2e-6)


def test_a_compile_replay_agrees_with_eager_to_the_bit():
    def f(x):
        return (x * 0.37 - 0.1) / 1.1 + (2.3 - x)

    compiled = tg.compile(f)
    for v in VALUES[:16]:
        eager = f(tg.tensor(v, requires_grad=True))
        replay = compiled(tg.tensor(v, requires_grad=True))
        assert _bits(replay.item()) == _bits(eager.item())


@pytest.mark.parametrize("name,op,oracle", OPS, ids=IDS)
def test_matches_pytorch_to_the_bit(name, op, oracle):
    torch = pytest.importorskip("torch")
    for c in NUMBERS:
        for v in VALUES[:16]:
            a = tg.tensor(v, requires_grad=True)
            b = torch.tensor(v, requires_grad=True)
            ya, yb = op(a, c), op(b, c)
            assert _bits(ya.item()) == _bits(yb.item()), (name, c, v)
            ya.backward()
            yb.backward()
            assert _bits(a.grad.item()) == _bits(b.grad.item()), (name, c, v)
