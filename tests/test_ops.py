"""Every row of the op table, checked against finite differences and against PyTorch.

``CASES`` maps each non-source row of ``tapegrad.ops.TABLE`` to the ways a user builds that
op (operators, methods, ``tg.`` functions) over several input shapes, broadcasting
included; ``NO_GRAD_CASES`` does the same for rows without a gradient (comparisons).
``test_every_row_has_a_case`` fails when a row is added to the table without a case here,
so a new op cannot go untested; the gradient checks then fail when the sweep has no (or a
wrong) branch for an opcode.

Inputs are float64 and drawn away from the points where an op is not differentiable; those
points (relu and abs at 0, clamp at its bounds) are tested on their own below.
"""
import sys
import zlib
from collections import namedtuple

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.ops import TABLE

from conftest import fd_grad, t64
from op_catalogue import SPECIAL, UNARY, call

pytestmark = pytest.mark.usefixtures("isolated")

NUM = "num"
# shape: a tuple, or NUM (a Python number); dtype: "float64" unless said
Spec = namedtuple("Spec", "shape domain grad dtype")
# node None: the row's node; eps: the finite-difference step
Variant = namedtuple("Variant", "id fn specs node eps")


def T(shape, domain="any", dtype="float64"):
    """A tensor input that requires grad."""
    return Spec(tuple(shape), domain, True, dtype)


def C(shape, domain="any"):
    """A float64 tensor input that does not require grad (a constant)."""
    return Spec(tuple(shape), domain, False, "float64")


def N(domain="any"):
    """A Python float operand."""
    return Spec(NUM, domain, False, "float64")


def V(id_, fn, *specs, node=None, eps=1e-6):
    return Variant(id_, fn, specs, node, eps)


def L(t):
    """The library of tensor ``t`` (the cases run on tapegrad and on PyTorch tensors)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(t, torch.Tensor) else tg


def _draw(rng, shape, domain):
    shape = () if shape == NUM else shape
    if domain == "any":
        a = rng.uniform(-1.5, 1.5, shape)
    elif domain == "pos":
        a = rng.uniform(0.5, 2.0, shape)
    elif domain == "nz":            # away from 0 (abs, relu, a divisor)
        a = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.5, shape)
    elif domain == "unit":          # away from -1 and 1 (asin, atanh)
        a = rng.uniform(-0.9, 0.9, shape)
    elif domain == "gt1":           # away from 1 (acosh)
        a = rng.uniform(1.2, 3.0, shape)
    elif domain == "wide":          # a dividend of fmod and remainder: quotients of both
        a = rng.uniform(-6.0, 6.0, shape)   # signs up to 20 (jumps: no draw falls within eps)
    elif domain == "clamp":         # away from the bounds -0.5 and 0.5 used below
        a = rng.choice([-1.0, 1.0], shape) * np.where(rng.random(shape) < 0.5,
                                                      rng.uniform(0.05, 0.4, shape),
                                                      rng.uniform(0.6, 1.5, shape))
    elif domain == "int":           # a Python int operand
        return int(rng.integers(2, 5))
    elif domain == "f32":           # on float32's grid with room for steps of 2**-8 (casts)
        a = np.round(rng.uniform(0.5, 1.9, shape) * 2 ** 10) / 2 ** 10
    else:
        raise ValueError(domain)
    return np.asarray(a)


# ----- the cases -----------------------------------------------------------------------
# Binary shapes: same shape, (3,4)+(4,), (3,1)*(1,4), 0-d with an array (both sides), 3-d with
# 2-d, a Python number on either side, 0-d Python-float scalars with each other and with a
# number (the scalar fast path), and a constant tensor operand.
def _binary_variants(name, fn, da="any", db="any", numbers=True):
    shapes = [
        ("same", T((3, 4), da), T((3, 4), db)),
        ("row", T((3, 4), da), T((4,), db)),
        ("outer", T((3, 1), da), T((1, 4), db)),
        ("0d-array", T((), da), T((3, 4), db)),
        ("array-0d", T((3, 4), da), T((), db)),
        ("3d-2d", T((2, 3, 4), da), T((3, 1), db)),
        ("scalars", T((), da), T((), db)),
        ("const-b", T((3, 4), da), C((4,), db)),
        ("const-a", C((3, 1), da), T((3, 4), db)),
    ]
    if numbers:
        shapes += [
            ("num-b", T((3, 4), da), N(db)),
            ("num-a", N(da), T((3, 4), db)),
            ("scalar-num", T((), da), N(db)),
            ("num-scalar", N(da), T((), db)),
        ]
    return [V(f"{name}-{sid}", fn, a, b) for sid, a, b in shapes]


def _num_first(variants, node):
    """Variants with a Python number first take the node PyTorch gives them."""
    return [v._replace(node=node) if v.specs[0].shape == NUM else v for v in variants]


def _unary_variants(name, fn, domain="any", shapes=((), (5,), (3, 4), (2, 3, 4))):
    return [V(f"{name}-{'x'.join(map(str, s)) or '0d'}", fn, T(s, domain)) for s in shapes]


def _setitem_row(a, b):
    y = a.clone()
    y[1] = b
    return y


def _setitem_number(a):
    y = a * 1.0
    y[0:2, 1] = 5.0
    return y


def _setitem_broadcast(a, b):
    y = a.clone()
    y[1:3] = b * 2
    return y


def _view_of_a_base_changed(a, b):
    """A view made before its base changed in place is the base's AsStrided view after."""
    y = a * 1.0
    v = y[:, 1:3]
    y[1] = b
    return v


def _view_changed_in_place(a, b):
    y = a * 1.0
    v = y.t()[1]
    v.mul_(b)
    return v


def _sibling_of_a_changed_view(a):
    y = a * 1.0
    v, w = y[0], y[:, 2]
    v.add_(1.0)
    return w


def _setitem_col(a, b):
    y = a + 0.0
    y[:, 2] = b
    return y


# ----- the elementwise unary ops of tests/op_catalogue.py ---------------------------------
# the catalogue's domains as this file draws them (kinks and poles: away from 0; steps: no
# draw of these seeds falls within a step's eps of a jump)
_DOMAIN = {"any": "any", "kink": "nz", "nz": "nz", "pos": "pos", "step": "nz", "unit": "unit",
           "gt1": "gt1"}
# besides x.name() at four shapes, the other spellings a user writes
UNARY_FORMS = {
    "neg": [V("neg-operator", lambda a: -a, T((3, 4))),
            V("neg-operator-0d", lambda a: -a, T(())),
            V("neg-tg", lambda a: L(a).neg(a), T(()))],
    "exp": [V("exp-tg", lambda a: L(a).exp(a), T((3, 4)))],
    "log": [V("log-tg", lambda a: L(a).log(a), T((), "pos"))],
    "tanh": [V("tanh-tg", lambda a: L(a).tanh(a), T((5,)))],
    "sigmoid": [V("sigmoid-tg", lambda a: L(a).sigmoid(a), T(()))],
    "sqrt": [V("sqrt-tg", lambda a: L(a).sqrt(a), T((3, 4), "pos"))],
    "abs": [V("abs-builtin", abs, T((3, 4), "nz")),
            V("abs-tg", lambda a: L(a).abs(a), T((), "nz"))],
    "relu": [V("relu-tg", lambda a: L(a).relu(a), T((3, 4), "nz"))],
    "reciprocal": [V("reciprocal-tg", lambda a: L(a).reciprocal(a), T((3, 4), "nz"))],
    "sin": [V("sin-tg", lambda a: L(a).sin(a), T((3, 4)))],
    "cos": [V("cos-tg", lambda a: L(a).cos(a), T(()))],
    "clone": [V("clone-tg", lambda a: L(a).clone(a), T((3, 4)))],
    # the NumPy-style aliases record the op's node (arcsin: AsinBackward0), as PyTorch's
    "atan": [V("arctan", lambda a: a.arctan(), T((3, 4))),
             V("arctan-tg", lambda a: L(a).arctan(a), T(()))],
    "tan": [V("tan-tg", lambda a: L(a).tan(a), T((3, 4), "unit"))],
    "asin": [V("arcsin", lambda a: a.arcsin(), T((3, 4), "unit")),
             V("arcsin-tg", lambda a: L(a).arcsin(a), T((), "unit"))],
    "acos": [V("arccos", lambda a: a.arccos(), T((), "unit")),
             V("arccos-tg", lambda a: L(a).arccos(a), T((3, 4), "unit"))],
    "asinh": [V("arcsinh", lambda a: a.arcsinh(), T((3, 4))),
              V("arcsinh-tg", lambda a: L(a).arcsinh(a), T(()))],
    "acosh": [V("arccosh", lambda a: a.arccosh(), T((), "gt1")),
              V("arccosh-tg", lambda a: L(a).arccosh(a), T((3, 4), "gt1"))],
    "atanh": [V("arctanh", lambda a: a.arctanh(), T((3, 4), "unit")),
              V("arctanh-tg", lambda a: L(a).arctanh(a), T((), "unit"))],
    "exp2": [V("exp2-tg", lambda a: L(a).exp2(a), T((3, 4)))],
}
assert set(UNARY_FORMS) <= set(UNARY)
UNARY_CASES = {name: _unary_variants(name, call(name), _DOMAIN[domain])
               + UNARY_FORMS.get(name, []) for name, domain in UNARY.items()}

CASES = {
    "add": _binary_variants("add", lambda a, b: a + b) + [
        V("add-method", lambda a, b: a.add(b), T((3, 4)), T((4,))),
        V("add-tg", lambda a, b: L(a).add(a, b), T((3, 1)), T((1, 4))),
        V("add-int", lambda a, b: a + b, T((3, 4)), N("int")),
    ],
    "sub": _num_first(_binary_variants("sub", lambda a, b: a - b), "RsubBackward1") + [
        V("sub-method", lambda a, b: a.sub(b), T((3, 4)), T((3, 1))),
        V("sub-tg", lambda a, b: L(a).sub(a, b), T(()), T((4,))),
    ],
    "mul": _binary_variants("mul", lambda a, b: a * b) + [
        V("mul-method", lambda a, b: a.mul(b), T((3, 4)), T((4,))),
        V("mul-tg", lambda a, b: L(a).mul(a, b), T(()), T(())),
        V("mul-int", lambda a, b: b * a, T((3, 4)), N("int")),
    ],
    # c / x is (1/x) * c in PyTorch: a MulBackward0 whose input is ReciprocalBackward0.
    "div": _num_first(_binary_variants("div", lambda a, b: a / b, "any", "nz"),
                      "MulBackward0") + [
        V("div-method", lambda a, b: a.div(b), T((3, 4)), T((4,), "nz")),
        V("div-tg", lambda a, b: L(a).div(a, b), T(()), T((), "nz")),
    ],
    # x ** y with a tensor exponent; x ** c and c ** x are the rows powc and rpow.
    "pow": _binary_variants("pow", lambda a, b: a ** b, "pos", "any", numbers=False) + [
        V("pow-method", lambda a, b: a.pow(b), T((3, 4), "pos"), T((4,))),
        V("pow-tg", lambda a, b: L(a).pow(a, b), T((), "pos"), T(())),
    ],
    "clamp": _unary_variants("clamp", lambda a: a.clamp(min=-0.5, max=0.5), "clamp") + [
        V("clamp-min", lambda a: a.clamp(min=-0.5), T((3, 4), "clamp")),
        V("clamp-max", lambda a: a.clamp(max=0.5), T((3, 4), "clamp")),
        V("clamp-min0", lambda a: a.clamp(min=0), T((3, 4), "nz")),
        V("clamp-min0-0d", lambda a: a.clamp(min=0), T((), "nz")),
        V("clamp-tg", lambda a: L(a).clamp(a, -0.5, 0.5), T((3, 4), "clamp")),
        V("clip", lambda a: a.clip(-0.5, 0.5), T((5,), "clamp")),
    ],
    "powc": _unary_variants("powc", lambda a: a.pow(2)) + [
        V("powc-cube", lambda a: a ** 3, T((3, 4))),
        V("powc-frac", lambda a: a ** 2.5, T((3, 4), "pos")),
        V("powc-frac-0d", lambda a: a ** 2.5, T((), "pos")),
        V("powc-neg", lambda a: a.pow(-1.5), T((5,), "pos")),
        V("powc-zero", lambda a: a.pow(0), T((3, 4))),
        V("powc-tg", lambda a: L(a).pow(a, 3.0), T(())),
    ],
    "rpow": _unary_variants("rpow", lambda a: 2.0 ** a) + [
        V("rpow-half", lambda a: 0.5 ** a, T((3, 4))),
        V("rpow-int", lambda a: 3 ** a, T(())),
    ],
    # x.round(decimals=d): jumps at the multiples of 10**-d halved, gradient 0
    "rounddec": _unary_variants("rounddec", lambda a: a.round(decimals=1), "nz") + [
        V("rounddec-neg", lambda a: a.round(decimals=-1), T((3, 4), "nz")),
        V("rounddec-0", lambda a: a.round(decimals=0), T((5,), "nz")),
        V("rounddec-tg", lambda a: L(a).round(a, decimals=2), T((), "nz")),
    ],
    "sum": [
        V("sum-5", lambda a: a.sum(), T((5,))),
        V("sum-3x4", lambda a: a.sum(), T((3, 4))),
        V("sum-2x3x4", lambda a: a.sum(), T((2, 3, 4))),
        V("sum-0d", lambda a: a.sum(), T(())),
        V("sum-tg", lambda a: L(a).sum(a), T((3, 4))),
    ],
    "sumdim": [
        V("sumdim-0", lambda a: a.sum(0), T((3, 4))),
        V("sumdim-1-keep", lambda a: a.sum(dim=1, keepdim=True), T((3, 4))),
        V("sumdim-neg", lambda a: a.sum(dim=-1), T((2, 3, 4))),
        V("sumdim-tuple", lambda a: a.sum(dim=(0, 2)), T((2, 3, 4))),
        V("sumdim-tuple-keep", lambda a: a.sum(dim=(0, 2), keepdim=True), T((2, 3, 4))),
        V("sumdim-tg", lambda a: L(a).sum(a, 1), T((3, 4))),
    ],
    "mean": [
        V("mean-5", lambda a: a.mean(), T((5,))),
        V("mean-3x4", lambda a: a.mean(), T((3, 4))),
        V("mean-2x3x4", lambda a: a.mean(), T((2, 3, 4))),
        V("mean-0d", lambda a: a.mean(), T(())),
        V("mean-tg", lambda a: L(a).mean(a), T((3, 4))),
    ],
    "meandim": [
        V("meandim-0", lambda a: a.mean(0), T((3, 4))),
        V("meandim-1-keep", lambda a: a.mean(dim=1, keepdim=True), T((3, 4))),
        V("meandim-neg", lambda a: a.mean(dim=-1), T((2, 3, 4))),
        V("meandim-tuple", lambda a: a.mean(dim=(0, 2)), T((2, 3, 4))),
        V("meandim-tg", lambda a: L(a).mean(a, 0), T((3, 4))),
    ],
    "mm": [
        V("mm", lambda a, b: a.mm(b), T((3, 4)), T((4, 5))),
        V("mm-matmul-op", lambda a, b: a @ b, T((2, 3)), T((3, 2))),
        V("mm-vectors", lambda a, b: a.mm(b), T((1, 3)), T((3, 1))),
        V("mm-const-b", lambda a, b: a.mm(b), T((3, 4)), C((4, 2))),
        V("mm-const-a", lambda a, b: a.mm(b), C((3, 4)), T((4, 2))),
        V("mm-tg", lambda a, b: L(a).mm(a, b), T((2, 2)), T((2, 3))),
        V("mm-matmul", lambda a, b: a.matmul(b), T((4, 3)), T((3, 3))),
    ],
    "select": [
        V("select-row", lambda a: a[1], T((3, 4))),
        V("select-col", lambda a: a[:, 2], T((3, 4))),
        V("select-last", lambda a: a[-1], T((2, 3, 4))),
        V("select-elem", lambda a: a[1, 2], T((3, 4))),
        V("select-vector", lambda a: a[3], T((5,))),
        V("select-ellipsis", lambda a: a[..., 1], T((2, 3, 4))),
    ],
    "slice": [
        V("slice-rows", lambda a: a[1:3], T((3, 4))),
        V("slice-step", lambda a: a[::2], T((5,))),
        V("slice-cols", lambda a: a[:, 1:], T((3, 4))),
        V("slice-2d", lambda a: a[0:2, ::2], T((3, 4))),
        V("slice-all", lambda a: a[:], T((3, 4))),
        V("slice-mid", lambda a: a[:, 1:3, 1:], T((2, 3, 4))),
    ],
    "unsqueeze": [
        V("unsqueeze-0", lambda a: a.unsqueeze(0), T((3, 4))),
        V("unsqueeze-last", lambda a: a.unsqueeze(-1), T((3, 4))),
        V("unsqueeze-0d", lambda a: a.unsqueeze(0), T(())),
        V("unsqueeze-none", lambda a: a[:, None], T((3, 4))),
        V("unsqueeze-walkthrough", lambda a: a[:, 0, None], T((5, 3))),
    ],
    "squeeze": [
        V("squeeze-mid", lambda a: a.squeeze(), T((3, 1, 4))),
        V("squeeze-to-0d", lambda a: a.squeeze(), T((1,))),
        V("squeeze-all", lambda a: a.squeeze(), T((1, 3, 1))),
        V("squeeze-tg", lambda a: L(a).squeeze(a), T((1, 1))),
    ],
    "squeezedim": [
        V("squeezedim-1", lambda a: a.squeeze(1), T((3, 1, 4))),
        V("squeezedim-noop", lambda a: a.squeeze(0), T((3, 4))),
        V("squeezedim-neg", lambda a: a.squeeze(-1), T((3, 1))),
    ],
    "view": [
        V("view-flat", lambda a: a.view(12), T((3, 4))),
        V("view-reshape", lambda a: a.reshape(4, 3), T((3, 4))),
        V("view-minus1", lambda a: a.reshape(-1), T((2, 3, 4))),
        V("view-tuple", lambda a: a.view((2, -1)), T((2, 3, 4))),
        V("view-0d", lambda a: a.reshape(1), T(())),
        V("view-tg", lambda a: L(a).reshape(a, (6, 2)), T((3, 4))),
    ],
    "t": [
        V("t-2d", lambda a: a.t(), T((3, 4))),
        V("t-1d", lambda a: a.t(), T((5,))),
        V("t-tg", lambda a: L(a).t(a), T((1, 4))),
    ],
    "permute": [
        V("permute-3d", lambda a: a.permute(2, 0, 1), T((2, 3, 4))),
        V("permute-T", lambda a: a.T, T((3, 4))),
        V("permute-2d", lambda a: a.permute(1, 0), T((3, 4))),
        V("permute-tuple", lambda a: a.permute((1, 2, 0)), T((2, 3, 4))),
        V("permute-tg", lambda a: L(a).permute(a, (0, 2, 1)), T((2, 3, 4))),
    ],
    # ----- rows added with the "breadth" commit -----
    "maximum": _binary_variants("maximum", lambda a, b: L(a).maximum(a, b), numbers=False),
    "minimum": _binary_variants("minimum", lambda a, b: L(a).minimum(a, b), numbers=False),
    # atan2 takes tensors only (a Python number is PyTorch's TypeError); away from (0, 0)
    "atan2": _binary_variants("atan2", lambda a, b: a.atan2(b), "nz", "any", numbers=False) + [
        V("atan2-tg", lambda a, b: L(a).atan2(a, b), T((3, 4), "nz"), T((4,))),
        V("arctan2", lambda a, b: a.arctan2(b), T((), "nz"), T((3, 4))),
    ],
    # ----- rows added with the "ops10" commit -----
    # hypot and logaddexp take tensors only (a Python number is PyTorch's TypeError);
    # hypot away from (0, 0)
    "hypot": _binary_variants("hypot", lambda a, b: L(a).hypot(a, b), "nz", "any",
                              numbers=False) + [
        V("hypot-method", lambda a, b: a.hypot(b), T((3, 4)), T((4,), "nz"))],
    "logaddexp": _binary_variants("logaddexp", lambda a, b: L(a).logaddexp(a, b), "wide",
                                  "any", numbers=False) + [
        V("logaddexp-method", lambda a, b: a.logaddexp(b), T((3, 4)), T((3, 1), "wide"))],
    # fmod and remainder of two tensors (a Python number divisor: the rows fmodc and
    # remainderc); quotients of both signs up to 20, away from the jumps
    "fmod": _binary_variants("fmod", lambda a, b: L(a).fmod(a, b), "wide", "nz",
                             numbers=False) + [
        V("fmod-method", lambda a, b: a.fmod(b), T((3, 4), "wide"), T((4,), "nz"))],
    "remainder": _binary_variants("remainder", lambda a, b: L(a).remainder(a, b), "wide",
                                  "nz", numbers=False) + [
        V("remainder-method", lambda a, b: a.remainder(b), T((3, 4), "wide"), T((), "nz")),
        V("remainder-operator", lambda a, b: a % b, T((3, 1), "wide"), T((1, 4), "nz"))],
    "fmodc": _unary_variants("fmodc", lambda a: a.fmod(1.5), "wide") + [
        V("fmodc-negative", lambda a: a.fmod(-0.7), T((3, 4), "wide")),
        V("fmodc-tg-int", lambda a: L(a).fmod(a, 2), T((), "wide"))],
    "remainderc": _unary_variants("remainderc", lambda a: a.remainder(1.5), "wide") + [
        V("remainderc-negative", lambda a: a.remainder(-0.7), T((3, 4), "wide")),
        V("remainderc-operator", lambda a: a % 2.5, T((5,), "wide")),
        V("remainderc-operator-0d", lambda a: a % -0.3, T((), "wide")),
        V("remainderc-tg-int", lambda a: L(a).remainder(a, 3), T((), "wide"))],
    # the condition comes from a's sign (|a| >= 0.3: a finite-difference step cannot flip it)
    "where": [
        V("where-same", lambda a, b: L(a).where(a.detach() > 0, a, b), T((3, 4), "nz"),
          T((3, 4))),
        V("where-row", lambda a, b: L(a).where(a.detach() > 0, a, b), T((3, 4), "nz"),
          T((4,))),
        V("where-0d", lambda a, b: L(a).where(a.detach() > 0, a, b), T((3, 4), "nz"), T(())),
        V("where-scalars", lambda a, b: L(a).where(a.detach() > 0, a, b), T((), "nz"),
          T(())),
        V("where-const", lambda a, b: L(b).where(b.detach() > 0, a, b), C((3, 1)),
          T((3, 4), "nz")),
    ],
    # casts: values on float32's grid and steps of 2**-8, so differences are exact
    "to": [
        V("to-f32", lambda a: a.to(L(a).float32), T((3, 4), "f32"), eps=2 ** -8),
        V("to-f64", lambda a: a.to(L(a).float64), T((3, 4), "f32", "float32"), eps=2 ** -8),
        V("to-float", lambda a: a.float(), T((5,), "f32"), eps=2 ** -8),
        V("to-double", lambda a: a.double(), T((2, 3), "f32", "float32"), eps=2 ** -8),
        V("to-0d", lambda a: a.to(L(a).float32), T((), "f32"), eps=2 ** -8),
    ],
    "max": [V("max-5", lambda a: a.max(), T((5,))), V("max-3x4", lambda a: a.max(), T((3, 4))),
            V("max-tg", lambda a: L(a).max(a), T((2, 3, 4)))],
    "min": [V("min-5", lambda a: a.min(), T((5,))), V("min-3x4", lambda a: a.min(), T((3, 4)))],
    "amax": [V("amax-1", lambda a: a.amax(1), T((3, 4))),
             V("amax-keep", lambda a: a.amax(dim=-1, keepdim=True), T((2, 3, 4))),
             V("amax-tuple", lambda a: a.amax(dim=(0, 2)), T((2, 3, 4)))],
    "amin": [V("amin-0", lambda a: a.amin(0), T((3, 4))),
             V("amin-keep", lambda a: a.amin(dim=1, keepdim=True), T((2, 3, 4)))],
    "prod": [V("prod-5", lambda a: a.prod(), T((5,), "nz")),
             V("prod-3x4", lambda a: a.prod(), T((3, 4), "nz")),
             V("prod-tg", lambda a: L(a).prod(a), T((2, 3), "nz"))],
    "proddim": [V("proddim-1", lambda a: a.prod(1), T((3, 4), "nz")),
                V("proddim-keep", lambda a: a.prod(0, keepdim=True), T((3, 4), "nz")),
                V("proddim-neg", lambda a: a.prod(dim=-1), T((2, 3, 4), "nz"))],
    "var": [V("var-all", lambda a: a.var(), T((3, 4))),
            V("var-dim", lambda a: a.var(1), T((3, 4))),
            V("var-keep", lambda a: a.var(dim=0, keepdim=True), T((3, 4))),
            V("var-biased", lambda a: a.var(unbiased=False), T((5,))),
            V("var-correction", lambda a: a.var(dim=-1, correction=0), T((2, 3, 4)))],
    "std": [V("std-all", lambda a: a.std(), T((3, 4))),
            V("std-dim", lambda a: a.std(0), T((3, 4))),
            V("std-keep", lambda a: a.std(dim=1, keepdim=True), T((2, 3, 4))),
            V("std-biased", lambda a: a.std(unbiased=False), T((5,)))],
    "norm": [V("norm-all", lambda a: a.norm(), T((3, 4), "nz")),
             V("norm-dim", lambda a: a.norm(dim=1), T((3, 4), "nz")),
             V("norm-5", lambda a: a.norm(), T((5,), "nz"))],
    "logsumexp": [V("logsumexp-1", lambda a: a.logsumexp(1), T((3, 4))),
                  V("logsumexp-keep", lambda a: a.logsumexp(dim=0, keepdim=True), T((3, 4))),
                  V("logsumexp-neg", lambda a: a.logsumexp(-1), T((2, 3, 4)))],
    "softmax": [V("softmax-1", lambda a: a.softmax(1), T((3, 4))),
                V("softmax-0", lambda a: a.softmax(0), T((3, 4))),
                V("softmax-neg", lambda a: a.softmax(dim=-1), T((2, 3, 4))),
                V("softmax-1d", lambda a: a.softmax(0), T((5,)))],
    "log_softmax": [V("log_softmax-1", lambda a: a.log_softmax(1), T((3, 4))),
                    V("log_softmax-0", lambda a: a.log_softmax(dim=0), T((2, 3, 4))),
                    V("log_softmax-1d", lambda a: a.log_softmax(-1), T((5,)))],
    "bmm": [V("bmm", lambda a, b: a.bmm(b), T((2, 3, 4)), T((2, 4, 5))),
            V("bmm-const", lambda a, b: a.bmm(b), C((2, 3, 4)), T((2, 4, 2))),
            V("bmm-tg", lambda a, b: L(a).bmm(a, b), T((1, 2, 2)), T((1, 2, 3)))],
    "dot": [V("dot", lambda a, b: a.dot(b), T((5,)), T((5,))),
            V("dot-matmul", lambda a, b: a @ b, T((4,)), T((4,))),
            V("dot-const", lambda a, b: a.dot(b), T((3,)), C((3,)))],
    "mv": [V("mv", lambda a, b: a.mv(b), T((3, 4)), T((4,))),
           V("mv-matmul", lambda a, b: a @ b, T((2, 5)), T((5,))),
           V("mv-const", lambda a, b: a.mv(b), C((3, 4)), T((4,)))],
    "transpose": [V("transpose-2d", lambda a: a.transpose(0, 1), T((3, 4))),
                  V("transpose-3d", lambda a: a.transpose(0, 2), T((2, 3, 4))),
                  V("transpose-neg", lambda a: a.transpose(-1, -2), T((2, 3, 4))),
                  V("transpose-tg", lambda a: L(a).transpose(a, 1, 0), T((3, 4)))],
    "expand": [V("expand-rows", lambda a: a.expand(3, 4), T((1, 4))),
               V("expand-new-dim", lambda a: a.expand(2, -1), T((4,))),
               V("expand-0d", lambda a: a.expand(3), T(())),
               V("expand-mid", lambda a: a.expand(2, 3, 4), T((2, 1, 4)))],
    "index": [V("index-list", lambda a: a[[0, 2]], T((3, 4))),
              V("index-cols-repeat", lambda a: a[:, [1, 3, 1]], T((3, 4))),
              V("index-tensor", lambda a: a[L(a).tensor([2, 0, 2])], T((3, 4))),
              V("index-mask", lambda a: a[a.detach() > 0], T((3, 4), "nz")),
              V("index-2d", lambda a: a[[0, 1, 1], [3, 2, 3]], T((2, 4)))],
    "index_select": [
        V("index_select-0", lambda a: a.index_select(0, L(a).tensor([2, 0, 2])), T((3, 4))),
        V("index_select-1", lambda a: a.index_select(1, L(a).tensor([3, 0])), T((3, 4))),
        V("index_select-1d", lambda a: a.index_select(0, L(a).tensor([4, 4, 1])), T((5,)))],
    "gather": [
        V("gather-1", lambda a: a.gather(1, L(a).tensor([[0, 1], [2, 2], [3, 0]])), T((3, 4))),
        V("gather-0", lambda a: a.gather(0, L(a).tensor([[2, 0, 1, 1]])), T((3, 4)))],
    "maxdim": [V("maxdim-1", lambda a: a.max(1)[0], T((3, 4))),
               V("maxdim-keep", lambda a: a.max(dim=0, keepdim=True)[0], T((3, 4))),
               V("maxdim-values", lambda a: a.max(dim=-1).values, T((2, 3, 4)))],
    "mindim": [V("mindim-0", lambda a: a.min(0)[0], T((3, 4))),
               V("mindim-values", lambda a: a.min(dim=1).values, T((2, 3, 4)))],
    "cat": [V("cat-0", lambda a, b: L(a).cat([a, b], 0), T((3, 4)), T((2, 4))),
            V("cat-1", lambda a, b, c: L(a).cat([a, b, c], dim=1), T((3, 4)), C((3, 1)),
              T((3, 2))),
            V("cat-1d", lambda a, b: L(a).cat([a, b]), T((5,)), T((3,))),
            V("cat-same", lambda a: L(a).cat([a, a * 2], 0), T((2, 3)))],
    "stack": [V("stack-0", lambda a, b: L(a).stack([a, b]), T((3, 4)), T((3, 4))),
              V("stack-1", lambda a, b: L(a).stack([a, b], dim=1), T((3, 4)), C((3, 4))),
              V("stack-scalars", lambda a, b, c: L(a).stack([a, b, c]), T(()), T(()), T(())),
              V("stack-last", lambda a, b: L(a).stack([a, b], -1), T((5,)), T((5,)))],
    "copyslices": [V("copyslices-row", _setitem_row, T((3, 4)), T((4,))),
                   V("copyslices-number", _setitem_number, T((3, 4))),
                   V("copyslices-broadcast", _setitem_broadcast, T((3, 4)), T((4,))),
                   V("copyslices-col", _setitem_col, T((3, 4)), T((3,)))],
    "as_strided": [V("as_strided-base-set", _view_of_a_base_changed, T((3, 4)), T((4,))),
                   V("as_strided-view-mul_", _view_changed_in_place, T((3, 4)), T((3,))),
                   V("as_strided-sibling", _sibling_of_a_changed_view, T((3, 4)))],
}
assert not set(CASES) & set(UNARY_CASES)
CASES.update(UNARY_CASES)

# Rows without a gradient (node None: comparisons). Their results never require grad, even
# from inputs that do; they are checked for that, for their values, and against PyTorch.
NO_GRAD_CASES = {
    "gt": [V("gt", lambda a, b: a > b, T((3, 4)), T((4,))),
           V("gt-num", lambda a, b: a > b, T((3, 4)), N()),
           V("gt-scalars", lambda a, b: a > b, T(()), T(()))],
    "lt": [V("lt", lambda a, b: a < b, T((3, 1)), T((1, 4))),
           V("lt-num-first", lambda a, b: a < b, N(), T((5,)))],
    "ge": [V("ge", lambda a, b: a >= b, T((3, 4)), T(())),
           V("ge-self", lambda a, b: a >= a, T((3, 4)), T((4,)))],
    "le": [V("le", lambda a, b: a <= b, T((3, 4)), T((3, 4))),
           V("le-self", lambda a, b: a <= a.detach(), T((5,)), T((5,)))],
    "eq": [V("eq", lambda a, b: a == b, T((3, 4)), T((4,))),
           V("eq-self", lambda a, b: a == a.detach(), T((3, 4)), T(()))],
    "ne": [V("ne", lambda a, b: a != b, T((3, 4)), T((3, 4))),
           V("ne-self", lambda a, b: a != a * 1.0, T((5,)), T(()))],
    # casts to integer or bool types
    "castng": [V("castng-long", lambda a: (a * 3).long(), T((3, 4))),
               V("castng-int", lambda a: (a * 3).int(), T((5,))),
               V("castng-bool", lambda a: a.to(L(a).bool), T((3, 4), "nz")),
               V("castng-0d", lambda a: (a * 3).long(), T(()))],
}

# Rows whose node name depends on the constants of the call (the exceptions of
# test_node_names): a Python number in the first slot.
CONSTANT_DEPENDENT_NODES = {
    "sub": "2 - x is RsubBackward1 (PyTorch lists only x in its next_functions)",
    "div": "2 / x is (1 / x) * 2: MulBackward0 over ReciprocalBackward0, as PyTorch",
}

ALL = [(name, v) for name, vs in CASES.items() for v in vs]
IDS = [v.id for _, v in ALL]


# ----- helpers -------------------------------------------------------------------------
def _values(variant):
    """Deterministic inputs for a variant: NumPy arrays (float64) and Python numbers."""
    rng = np.random.default_rng(zlib.crc32(variant.id.encode()))
    out = []
    for s in variant.specs:
        v = _draw(rng, s.shape, s.domain)
        if s.shape == NUM and not isinstance(v, int):
            v = float(v)
        out.append(v)
    return out


def _tg_inputs(variant, values, grad=True):
    out = []
    for s, v in zip(variant.specs, values):
        if s.shape == NUM:
            out.append(v)
        elif s.dtype == "float64":
            out.append(t64(v, requires_grad=grad and s.grad))
        else:
            t = tg.tensor(np.asarray(v, s.dtype), requires_grad=grad and s.grad)
            assert t.dtype is getattr(tg, s.dtype) and tuple(t.shape) == s.shape
            out.append(t)
    return out


def _torch_inputs(torch, variant, values):
    return [v if s.shape == NUM else torch.tensor(np.asarray(v, s.dtype),
                                                  requires_grad=s.grad)
            for s, v in zip(variant.specs, values)]


def _forward(variant, values):
    """The op's value as a float64 array, with no recording."""
    with tg.no_grad():
        out = variant.fn(*_tg_inputs(variant, values, grad=False))
    return np.array(out.numpy(), dtype=np.float64)


def _seed_for(shape, variant):
    """The gradient fed to backward (on float32's grid, so float32 outputs take it exactly)."""
    rng = np.random.default_rng(zlib.crc32(variant.id.encode()) + 1)
    g = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return np.round(g * 2 ** 8) / 2 ** 8


def _seed_tensor(seed, out):
    """``seed`` as a tensor of ``out``'s dtype."""
    if out.dtype is tg.float64:
        return t64(seed)
    assert out.dtype is tg.float32
    return tg.tensor(np.asarray(seed, np.float32), dtype=tg.float32)


def _fd_grads(variant, values, seed):
    """Finite-difference gradients of sum(seed * op(inputs)) for the inputs that need grad."""
    grads = []
    for i, s in enumerate(variant.specs):
        if not s.grad:
            grads.append(None)
            continue

        def f(xi, i=i):
            vals = list(values)
            vals[i] = xi
            return float(np.sum(seed * _forward(variant, vals)))
        grads.append(fd_grad(f, values[i], eps=variant.eps))
    return grads


def _name(node):
    # PyTorch's AccumulateGrad.name() is "torch::autograd::AccumulateGrad"; its repr and the
    # walkthrough say AccumulateGrad, which is what tapegrad's name() gives.
    return None if node is None else node.name().replace("torch::autograd::", "")


def _names(node):
    """A node's name and its next_functions' names (None for (None, 0))."""
    if node is None:
        return None
    return _name(node), tuple((_name(n), nr) for n, nr in node.next_functions)


# ----- the op table is covered -----------------------------------------------------------
def test_every_row_has_a_case():
    # the 'custom' family is a user's autograd.Function: tests/test_custom_function.py
    assert {n for n, row in TABLE.items() if row.family == "custom"} == {"function"}
    rows = {name for name, row in TABLE.items() if row.family != "source" and row.node}
    missing = sorted(rows - set(CASES))
    assert not missing, f"op table rows with no test case in CASES: {missing}"
    unknown = sorted(set(CASES) - rows)
    assert not unknown, f"CASES entries that are not differentiable rows of the table: {unknown}"
    for name in rows:
        assert CASES[name], name
    nodes = [TABLE[n].node for n in rows]
    assert len(set(nodes)) == len(nodes), "two rows share a node name: names do not identify ops"
    # rows without a gradient (node None) are checked by test_no_grad_rows
    plain = {name for name, row in TABLE.items()
             if row.family not in ("source", "custom") and not row.node}
    missing = sorted(plain - set(NO_GRAD_CASES))
    assert not missing, f"op table rows (no gradient) with no case in NO_GRAD_CASES: {missing}"
    unknown = sorted(set(NO_GRAD_CASES) - plain)
    assert not unknown, f"NO_GRAD_CASES entries that are not gradient-free rows: {unknown}"


def test_every_unary_row_is_in_the_catalogue():
    """A unary row of the op table is a line of tests/op_catalogue.py (the four test files
    that run the elementwise unary ops take their lists from it), or one of its few
    special rows with cases of their own in each file."""
    rows = {name for name, row in TABLE.items() if row.family == "unary"}
    missing = sorted(rows - set(UNARY) - set(SPECIAL))
    assert not missing, f"unary rows of the op table not in tests/op_catalogue.py: {missing}"
    unknown = sorted((set(UNARY) | set(SPECIAL)) - rows)
    assert not unknown, f"tests/op_catalogue.py names ops that are not unary rows: {unknown}"
    for name in UNARY:
        assert callable(getattr(tg.Tensor, name, None)), f"x.{name}() is not a Tensor method"


@pytest.mark.parametrize("name", list(UNARY))
def test_catalogue_op_is_a_tg_function_and_a_method(name):
    """tg.<name>(x) is x.<name>() (PyTorch has both too), on arrays and 0-d scalars."""
    torch = pytest.importorskip("torch")
    assert callable(getattr(torch, name)) and callable(getattr(torch.Tensor, name))
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for shape in ((3, 4), ()):
        v = _draw(rng, shape, _DOMAIN[UNARY[name]])
        x = t64(v, requires_grad=True)
        y, z = getattr(tg, name)(x), call(name)(x)
        assert y.grad_fn.name() == z.grad_fn.name() == TABLE[name].node
        np.testing.assert_array_equal(y.detach().numpy(), z.detach().numpy())
        np.testing.assert_allclose(y.detach().numpy(),
                                   getattr(torch, name)(torch.tensor(v)).numpy(),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,variant", ALL, ids=IDS)
def test_node_names(name, variant):
    row = TABLE[name]
    out = variant.fn(*_tg_inputs(variant, _values(variant)))
    assert out.requires_grad and not out.is_leaf
    expected = variant.node or row.node
    if variant.node is not None:
        assert name in CONSTANT_DEPENDENT_NODES, (name, variant.node)
    assert out.grad_fn.name() == expected
    # a tensor prints its node's class name (CopySlices for torch::autograd::CopySlices)
    assert repr(out).endswith(f"grad_fn=<{expected.rpartition('::')[2]}>)")
    # every input that requires grad is reached through next_functions
    nf = out.grad_fn.next_functions
    assert all(isinstance(p, tuple) and len(p) == 2 for p in nf)


@pytest.mark.parametrize("name,variant", ALL, ids=IDS)
def test_gradient_matches_finite_differences(name, variant):
    values = _values(variant)
    expected_out = _forward(variant, values)
    ins = _tg_inputs(variant, values)
    out = variant.fn(*ins)
    assert tuple(out.shape) == expected_out.shape
    np.testing.assert_allclose(np.array(out.detach().numpy(), np.float64), expected_out,
                               rtol=0, atol=0)
    seed = _seed_for(expected_out.shape, variant)
    out.backward(gradient=_seed_tensor(seed, out))
    want = _fd_grads(variant, values, seed)
    for s, x, g in zip(variant.specs, ins, want):
        if g is None:
            if s.shape != NUM:
                assert x.grad is None
            continue
        assert x.grad is not None, "no gradient reached this input"
        assert tuple(x.grad.shape) == tuple(s.shape), "gradient not reduced to the input shape"
        assert x.grad.dtype is x.dtype
        np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-6, atol=1e-8)


NO_GRAD = [(name, v) for name, vs in NO_GRAD_CASES.items() for v in vs]


@pytest.mark.parametrize("name,variant", NO_GRAD, ids=[v.id for _, v in NO_GRAD])
def test_no_grad_rows(name, variant):
    values = _values(variant)
    ins = _tg_inputs(variant, values)
    assert any(getattr(x, "requires_grad", False) for x in ins)
    out = variant.fn(*ins)
    assert not out.requires_grad and out.grad_fn is None and out.is_leaf
    assert not out.dtype.is_floating_point
    torch = pytest.importorskip("torch")
    tout = variant.fn(*_torch_inputs(torch, variant, values))
    assert not tout.requires_grad and tuple(out.shape) == tuple(tout.shape)
    assert str(out.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    np.testing.assert_array_equal(out.numpy(), tout.numpy())


# ----- the same cases against PyTorch ----------------------------------------------------
@pytest.mark.parametrize("name,variant", ALL, ids=IDS)
def test_matches_pytorch(name, variant):
    torch = pytest.importorskip("torch")
    values = _values(variant)
    ins = _tg_inputs(variant, values)
    tins = _torch_inputs(torch, variant, values)
    out = variant.fn(*ins)
    tout = variant.fn(*tins)
    assert tuple(out.shape) == tuple(tout.shape)
    assert str(out.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(),
                               rtol=1e-12, atol=1e-14)
    assert _names(out.grad_fn) == _names(tout.grad_fn)
    seed = _seed_for(tuple(tout.shape), variant)
    out.backward(gradient=_seed_tensor(seed, out))
    tout.backward(gradient=torch.tensor(seed, dtype=tout.dtype))
    for s, x, tx in zip(variant.specs, ins, tins):
        if s.shape == NUM:
            continue
        if tx.grad is None:
            assert x.grad is None
            continue
        assert x.grad is not None
        assert tuple(x.grad.shape) == tuple(tx.grad.shape)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----- Python-float scalars: the fast path --------------------------------------------------
def test_tensor_of_a_python_float_is_a_0d_scalar():
    s = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    assert s.shape == () and s.ndim == 0 and s.dim() == 0 and s.numel() == 1
    assert s.is_leaf and s.requires_grad and s.dtype is tg.float64
    y = s * s * s + 2 * s
    assert y.shape == () and y.grad_fn.name() == "AddBackward0"
    y.backward()
    assert s.grad.shape == () and s.grad.dtype is tg.float64
    assert s.grad.item() == 3 * 1.5 ** 2 + 2


@pytest.mark.parametrize("data", [1.3, [1.3, 0.1], [[0.1], [1e-300]]],
                         ids=["scalar", "list", "nested"])
def test_tensor_of_a_python_float_keeps_float64_precision(data):
    t = tg.tensor(data, dtype=tg.float64)
    np.testing.assert_array_equal(t.numpy(), np.array(data, dtype=np.float64))


# ----- points where the op is not differentiable: PyTorch's choices ------------------------
def _grad_at(fn, values):
    """The gradient of sum(fn(x)) at ``values`` (0-d values take the scalar path)."""
    x = t64(values, requires_grad=True)
    out = fn(x)
    (out.sum() if out.ndim else out).backward()
    return np.array(x.grad.numpy(), np.float64)


KINKS = [
    ("relu", lambda a: a.relu(), [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    ("relu-0d", lambda a: a.relu(), 0.0, 0.0),
    ("abs", lambda a: a.abs(), [-1.0, 0.0, 2.0], [-1.0, 0.0, 1.0]),
    ("abs-0d", lambda a: a.abs(), 0.0, 0.0),
    ("clamp-bounds", lambda a: a.clamp(min=-0.5, max=0.5), [-1.0, -0.5, 0.0, 0.5, 1.0],
     [0.0, 1.0, 1.0, 1.0, 0.0]),
    ("clamp-min0-at-0", lambda a: a.clamp(min=0), [-1.0, 0.0, 1.0], [0.0, 1.0, 1.0]),
    ("clamp-lower-0d", lambda a: a.clamp(min=-0.5, max=0.5), -0.5, 1.0),
    ("clamp-upper-0d", lambda a: a.clamp(min=-0.5, max=0.5), 0.5, 1.0),
    ("clamp-min0-0d", lambda a: a.clamp(min=0), 0.0, 1.0),
    # std of a lane of equal values is exactly 0 and its gradient 0 (the mean of 2.7 x 3 is an
    # ulp off 2.7: a two-pass std was 5.4e-16 and its gradient -1.22 here, PyTorch's 0)
    ("std-equal-lane", lambda a: a.reshape(3, 1).expand(3, 2).std(0), [2.7, 2.7, 2.7],
     [0.0, 0.0, 0.0]),
    ("std-one-equal-lane", lambda a: a.reshape(2, 3).std(1), [0.1, 0.1, 0.1, 1.0, 2.0, 3.0],
     [0.0, 0.0, 0.0, -0.5, 0.0, 0.5]),
]


@pytest.mark.parametrize("fn,values,expected", [k[1:] for k in KINKS],
                         ids=[k[0] for k in KINKS])
def test_nondifferentiable_points(fn, values, expected):
    np.testing.assert_array_equal(_grad_at(fn, values), np.asarray(expected))


@pytest.mark.parametrize("fn,values,expected", [k[1:] for k in KINKS],
                         ids=[k[0] for k in KINKS])
def test_nondifferentiable_points_match_pytorch(fn, values, expected):
    torch = pytest.importorskip("torch")
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    out = fn(x)
    (out.sum() if out.ndim else out).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.asarray(expected))
    np.testing.assert_array_equal(_grad_at(fn, values), x.grad.numpy())


def test_std_of_equal_values_is_exactly_zero_also_where_pytorch_rounds():
    # PyTorch's full std of a contiguous [0.1, 0.1, 0.1] is 1.7e-17 with gradient -0.41 (its
    # two-pass mean is an ulp off), while along a dim or through expand it is 0 with gradient 0.
    # tapegrad gives the exact 0 and gradient 0 in every layout (README: Differences).
    assert float(t64([0.1, 0.1, 0.1]).var()) == 0.0
    for fn in (lambda a: a.std(), lambda a: a.std(0, keepdim=True)):
        x = t64([0.1, 0.1, 0.1], requires_grad=True)
        out = fn(x)
        assert float(out.sum()) == 0.0
        out.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    step = tg.compile(lambda a: a.std())
    for v in (0.1, 2.7):
        assert float(step(t64([v, v, v]))) == 0.0
    assert float(step(t64([1.0, 2.0, 3.0]))) == 1.0


# ----- ties: how the gradient is shared (PyTorch's rules) ----------------------------------
TIES = [
    # maximum/minimum at a == b: half to each side
    ("maximum", lambda a, b: L(a).maximum(a, b), [1.0, 2.0, 3.0], [1.0, 5.0, 3.0],
     ([0.5, 0.0, 0.5], [0.5, 1.0, 0.5])),
    ("minimum", lambda a, b: L(a).minimum(a, b), [1.0, 2.0], [1.0, 0.0],
     ([0.5, 0.0], [0.5, 1.0])),
    # max()/min() over all elements: shared evenly by the tied elements
    ("max-all", lambda a, b: a.max() * b.sum(), [3.0, 1.0, 3.0, 3.0], [1.0],
     ([1 / 3, 0.0, 1 / 3, 1 / 3], [3.0])),
    ("min-all", lambda a, b: a.min() * b.sum(), [0.5, 0.5, 2.0], [1.0],
     ([0.5, 0.5, 0.0], [0.5])),
    # amax along a dim: shared evenly too
    ("amax", lambda a, b: (a.reshape(2, 2).amax(1) * b).sum(), [2.0, 2.0, 1.0, 4.0],
     [1.0, 1.0], ([0.5, 0.5, 0.0, 1.0], [2.0, 4.0])),
]


@pytest.mark.parametrize("fn,a,b,expected", [t[1:] for t in TIES], ids=[t[0] for t in TIES])
def test_ties(fn, a, b, expected):
    x, y = t64(a, requires_grad=True), t64(b, requires_grad=True)
    out = fn(x, y)
    (out.sum() if out.ndim else out).backward()
    np.testing.assert_allclose(x.grad.numpy(), expected[0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(y.grad.numpy(), expected[1], rtol=1e-15, atol=0)


@pytest.mark.parametrize("fn,a,b,expected", [t[1:] for t in TIES], ids=[t[0] for t in TIES])
def test_ties_match_pytorch(fn, a, b, expected):
    torch = pytest.importorskip("torch")
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    out = fn(x, y)
    (out.sum() if out.ndim else out).backward()
    np.testing.assert_allclose(x.grad.numpy(), expected[0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(y.grad.numpy(), expected[1], rtol=1e-15, atol=0)


# ----- a dim of a 0-d tensor ------------------------------------------------------------------
DIM_OF_0D = ["sum", "mean", "amax", "amin", "prod", "logsumexp", "norm", "var", "std"]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, -1, (0,)])
@pytest.mark.parametrize("op", DIM_OF_0D)
def test_a_reduction_over_dim_0_of_a_0d_tensor_is_the_tensor_itself(op, dim, keepdim):
    """PyTorch takes dim 0 or -1 of a 0-d tensor as the tensor itself (sum and friends
    return it, var/std of one value NaN); tapegrad raised numpy's AxisError. Value, shape
    and gradient against closed forms (d/dx of x itself is 1) and PyTorch."""
    def run(L, value):
        x = L.tensor(value, dtype=L.float64, requires_grad=True)
        if op == "norm":
            y = x.norm(dim=dim, keepdim=keepdim)
        elif op == "prod":
            y = x.prod(dim if isinstance(dim, int) else dim[0], keepdim=keepdim)
        else:
            y = getattr(x, op)(dim, keepdim=keepdim)
        y.backward()
        return y.item(), tuple(y.shape), x.grad.item()
    for value in (1.5, -2.0):
        got = run(tg, value)
        assert got[1] == ()
        if op in ("var", "std"):            # one value, one degree of freedom: NaN
            assert np.isnan(got[0]) and np.isnan(got[2])
        else:
            assert got[2] == (-1.0 if op == "norm" and value < 0 else 1.0)
            assert got[0] == (abs(value) if op == "norm" else value)
        torch = pytest.importorskip("torch")
        want = run(torch, value)
        np.testing.assert_equal(got, want)
