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


def test_the_float32_cast_of_a_number_is_numpys_to_the_bit():
    """face._f32_number (the cast of every float32 scalar result and number operand) is
    NumPy's float32 cast: round to nearest even, subnormals, the overflow edge, -0.0."""
    from tapegrad.face import _f32_number
    rng = np.random.default_rng(1)
    xs = list(rng.standard_normal(20000) * 10.0 ** rng.integers(-50, 40, 20000))
    top = float(np.finfo(F).max)
    xs += [0.0, -0.0, 5e-324, 1e-46, -1e-46, 7.006e-46, 1.4e-45, 2.0 ** -149 * 1.5, top,
           -top, np.nextafter(3.4028235677973366e38, 0), 3.4028235677973366e38, 1e39, -1e39,
           3, -7, 2 ** 60 + 1]
    for x in xs:
        with np.errstate(over="ignore"):
            want = F(x)
        got = _f32_number(x)
        assert type(got) is float
        assert np.array(got, F).view(np.uint32) == want.view(np.uint32), x
    assert _f32_number(float("nan")) != _f32_number(float("nan"))


@pytest.mark.parametrize("name", ["relu", "neg", "abs"])
def test_sign_and_magnitude_ops_of_a_float32_scalar_keep_its_bits(name):
    """relu, neg and abs of a float32 0-d tensor skip the cast (their result is a float32
    number already): the value and its record are those of the float32 input."""
    for v in VALUES:
        t = tg.tensor(float(v), requires_grad=True)
        out = getattr(t, name)()
        want = {"relu": max(v, F(0)), "neg": -v, "abs": abs(v)}[name]
        assert out.dtype == tg.float32
        assert _bits(out.item()) == _bits(want)
        out.backward()
        assert t.grad.item() == {"relu": float(v > 0), "neg": -1.0, "abs": np.sign(v)}[name]
