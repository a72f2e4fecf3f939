"""The forward replay sweep (``tapegrad.replay_kernels.forward_sweep``) against eager runs.

Each case records a real graph eagerly on a ``keep_all`` tape (every value kept), makes it
a ``Program`` (``replay_program``: its values laid out in an arena), writes new input
values into the leaves' sources, wipes every computed value (NaN, and the int lists
max(dim)/min(dim) and where recompute), runs the sweep, and compares every record's value
and every int list with an eager recording at the new inputs (rtol 1e-12); first it replays
at the recorded inputs, which must give the recording back. The cases cover every
non-source row of ``ops.TABLE`` (``test_cases_cover_the_table``) with broadcasting, Python
numbers and Python-float scalars. Comparisons and CASTNG, which only a tg.compile
recording records, are recorded under a stand-in recording (``test_recorded_comparisons``)
and also checked on records built by hand (``test_compare_records``: scalar records and
b = constant).
"""
import math
import types
import zlib

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import ops
from tapegrad.layout import (CONST_A, CONST_B, F32, ILEN, IOBJ, OPMASK, RECORD, SCALAR, SHIFT,
                             SIZE, YOBJ, static_row)
from tapegrad.replay_kernels import ALL_FORWARD_OPCODES, forward_sweep, sweep_scratch
from tapegrad.replay_program import Program
from tapegrad.state import thread_state
from tapegrad.tape import Tape
from tapegrad.recording import slot_of as _slot

from op_catalogue import UNARY as CATALOGUE, call

RTOL = 1e-12
COND = np.array([True, False, False, True])          # a constant condition for where
MASK = np.array([[True, False, True, False], [False, False, True, True],
                 [True, True, False, False]])


# ----- recording and replaying ----------------------------------------------------------
class Recording:
    """``with Recording() as tape:`` records on a fresh keep_all tape (the thread's tape is
    restored afterwards). ``compare=True`` also stands in for a tg.compile recording, inside
    which comparisons and casts to bool/int are recorded (as replay.py's Recording)."""

    def __init__(self, compare=False):
        self.compare = compare

    def __enter__(self):
        self.tape = Tape()
        self.tape.keep_all = True
        self.st = thread_state()
        self.old = self.st._tape, self.st.recording
        self.st.tape = self.tape
        if self.compare:
            self.st.recording = types.SimpleNamespace(tape=self.tape, guards=[])
        return self.tape

    def __exit__(self, *exc):
        self.st.tape = self.old[0]() if self.old[0] is not None else None
        self.st.recording = self.old[1]
        return False


def leaf(x, dtype=tg.float64):
    """A leaf requiring grad (float64 by default); 0-d values become Python-float
    scalars."""
    x = np.array(x, dtype=np.float64)
    if x.ndim == 0:
        return tg.tensor(float(x), dtype=dtype, requires_grad=True)
    return tg.tensor(x, dtype=dtype, requires_grad=True)


class Call:
    """One replayed call of a program: its records (scalar values), arena, pointers; every
    source holds its recorded value."""

    def __init__(self, program):
        P = self.program = program
        self.rec = P.rec.copy()
        self.arena = np.full(P.arena_size, np.nan, P.dtype)
        self.ptrs = P.pointers(self.arena)
        for s, v in P.kept_sources.items():
            self.values(s)[:] = np.ravel(v)

    @property
    def rd(self):
        return self.rec.view(np.float64)

    def values(self, slot):
        """Slot's values: a view of the arena, or of its record's value field."""
        k = self.program.row_of[slot]
        if k < 0:
            return self.rd[3 * slot + 2:3 * slot + 3]
        o = self.program.voff[k]
        return self.arena[o:o + self.program.ms[k, SIZE]]

    def ints(self, k):
        """Array row k's int list (None when it has none)."""
        md = self.program.md
        if md[k, IOBJ] < 0:
            return None
        return self.program.ints_of(self.arena, md[k, IOBJ] - self.program.nrows)

    def sweep(self, start=0, stop=None, blas_min=None):
        P = self.program
        if blas_min is None and stop is not None:
            forward_sweep(self.rec.view(np.int64), self.rd, P.ms, P.msd, P.md, self.ptrs,
                          P.cond, P.c2s, P.fx, P.no_ext, P.no_tab, P.no_tab[0], start, stop,
                          *sweep_scratch(self.arena))
        else:
            P.forward(self.rec, self.arena, self.ptrs, start, stop, blas_min)


def record(fn, inputs, compare=False, dtype=tg.float64):
    """Runs fn eagerly on leaves holding ``inputs``; returns (tape, leaves, program)."""
    leaves = [leaf(x, dtype) for x in inputs]
    with Recording(compare) as tape:
        out = fn(*leaves)
    assert out is not None
    return tape, leaves, Program(tape)


def heads(P):
    return P.rec.view(np.int64)[0::3]


def is_computed(P, r):
    return ops.FAMILY[int(heads(P)[r]) & OPMASK] != ops.F_SOURCE


def write_inputs(tape, leaves, inputs, call):
    """Writes new input values into the leaves' source slots."""
    for t, x in zip(leaves, inputs):
        assert t._node is not None and t._node.tape_id == tape.id
        s = t._node.slot
        assert not is_computed(call.program, s)
        call.values(s)[:] = np.ravel(x)


RECOMPUTED_INTS = (ops.MAXDIM, ops.MINDIM, ops.WHERE)


def wipe(call):
    """Forgets every computed value (NaN) and the int lists a replay recomputes."""
    P = call.program
    for r in range(P.nrec):
        if not is_computed(P, r):
            continue
        call.values(r)[:] = np.nan
        k = P.row_of[r]
        if k >= 0 and int(heads(P)[r]) & OPMASK in RECOMPUTED_INTS:
            call.ints(k)[:] = 0


def eager_values(tape):
    """Every record's value on an eager keep_all tape, and its int lists (by row)."""
    rq, rd, ms, md = (np.array(a) for a in tape.arrays())
    vals, ints = [], {}
    for r in range(len(tape)):
        if rq[3 * r] & SCALAR:
            vals.append(np.array([rd[3 * r + 2]]))
            continue
        k = int(rd[3 * r + 2])
        vals.append(np.ravel(np.asarray(tape.objs[md[k, YOBJ]], np.float64)))
        if md[k, IOBJ] >= 0:
            ints[k] = np.ravel(tape.objs[md[k, IOBJ]])
    return vals, ints


def mutated_slots(P):
    """Records whose kept value an in-place change made after recording (x in
    ``x[key] = v``, y in ``y.mul_(2)`` with views of y alive): the tape keeps a reference, so the eager buffer shows the new value
    while the replay (rightly) recomputes the one at recording time."""
    h = heads(P)
    out = {int(h[r]) >> SHIFT for r in range(P.nrec) if int(h[r]) & OPMASK == ops.COPYSLICES}
    # a view regenerated after its base changed in place (AsStrided of the base's new
    # record): the in-place op's operand is the base's old value, overwritten
    out |= {int(h[int(h[r]) >> SHIFT]) >> SHIFT for r in range(P.nrec)
            if int(h[r]) & OPMASK == ops.ASSTRIDED}
    return out


def same_program(P, P2):
    """The same records (leaf cells aside: each recording's leaves have their own) and
    the same static rows."""
    h, h2 = heads(P), heads(P2)
    np.testing.assert_array_equal(h, h2)
    b = P.rec.view(np.float64)[1::3]
    b2 = P2.rec.view(np.float64)[1::3]
    leafs = (h & OPMASK) == ops.LEAF
    np.testing.assert_array_equal(b[~leafs], b2[~leafs])
    np.testing.assert_array_equal(P.ms, P2.ms)


def assert_same_values(call, expected, skip=(), rtol=RTOL, atol=0.0):
    """Every record's value and every int list of ``call`` equal ``expected``'s (an eager
    keep_all tape at the same inputs)."""
    P = call.program
    vals, ints = eager_values(expected)
    assert len(vals) == P.nrec
    for r in range(P.nrec):
        if r in skip:
            continue
        what = f"record {r} ({ops.BY_CODE[int(heads(P)[r]) & OPMASK].name})"
        np.testing.assert_allclose(call.values(r), vals[r], rtol=rtol, atol=atol,
                                   err_msg=what)
    for k, want in ints.items():
        np.testing.assert_array_equal(call.ints(k), want, err_msg=f"int list of row {k}")


def replay_matches_eager(fn, inputs, new_inputs, split=None, blas_min=None, atol=0.0,
                         compare=False, dtype=tg.float64, rtol=RTOL):
    """Records fn at ``inputs`` on leaves of ``dtype``, replays it at ``new_inputs`` and
    checks every record against an eager recording at ``new_inputs``. Returns the
    replayed call."""
    tape, leaves, P = record(fn, inputs, compare, dtype)
    skip = mutated_slots(P)
    call = Call(P)
    # 1. the same inputs: the sweep reproduces the recording
    write_inputs(tape, leaves, inputs, call)
    wipe(call)
    call.sweep(blas_min=blas_min)
    assert_same_values(call, tape, skip, rtol, atol)
    # 2. new inputs: the sweep gives what an eager run at the new inputs gives
    write_inputs(tape, leaves, new_inputs, call)
    wipe(call)
    if split is None:
        call.sweep(blas_min=blas_min)
    else:                           # in pieces, as a replay with hooks would
        cut = split(P.nrec)
        call.sweep(0, cut, blas_min)
        call.sweep(cut, P.nrec, blas_min)
    expected, _, P2 = record(fn, new_inputs, compare, dtype)
    same_program(P, P2)
    assert_same_values(call, expected, skip, rtol, atol)
    return call


# ----- the cases: every non-source, non-compare row of the table ------------------------
def draw(spec, rng):
    """Input values: spec = (shape, domain) with domain 'any' (-2, 2), 'pos' (0.5, 2),
    'unit' (-0.8, 0.8), 'gt1' (1.3, 2.5), or an explicit array."""
    shape, dom = spec
    if isinstance(dom, np.ndarray):
        v = dom
    elif dom == "any":
        v = rng.uniform(-2.0, 2.0, shape)
    elif dom == "unit":                     # |x| < 1 once perturbed (asin, atanh)
        v = rng.uniform(-0.8, 0.8, shape)
    elif dom == "gt1":                      # x > 1 once perturbed (acosh)
        v = rng.uniform(1.3, 2.5, shape)
    else:
        v = rng.uniform(0.5, 2.0, shape)
    return float(v) if np.ndim(v) == 0 else v


def perturb(x, rng):
    """New values near x, of the same sign (the recorded path stays the path taken)."""
    f = 1.0 + 0.2 * rng.uniform(-1.0, 1.0, np.shape(x))
    return float(x * f) if np.ndim(x) == 0 else x * f


def A(*shape):
    return (shape, "any")


def P(*shape):
    return (shape, "pos")


def V(values):
    values = np.array(values, dtype=np.float64)
    return (values.shape, values)


def setitem(x, key, value):
    y = x * 1.0                 # a non-leaf: assigning into a leaf that requires grad fails
    y[key] = value
    return y


def _view_of_a_changed_base(x):
    """A view made before its base changed in place: the base's AsStrided view after."""
    y = x * 1.0
    v = y[:, 1:3]
    y.mul_(2.0)
    return v * y[0, 0]


CASES = [
    # binary, with broadcasting, Python numbers and Python-float scalars
    ("add", lambda x, y: x + y, [A(3, 4), A(3, 4)]),
    ("add_bcast_row", lambda x, y: x + y, [A(3, 4), A(4)]),
    ("add_bcast_outer", lambda x, y: x.add(y), [A(3, 1), A(1, 4)]),
    ("add_bcast_3d", lambda x, y: x + y, [A(2, 1, 4), A(3, 1)]),
    ("add_const", lambda x: x + 2.5, [A(3, 4)]),
    ("add_scalar_tensor", lambda x, s: x + s, [A(3, 4), A()]),
    ("add_scalars", lambda s, t: s + t, [A(), A()]),
    ("add_0d_array_scalar", lambda x, s: x.sum() + s, [A(3), A()]),
    ("sub", lambda x, y: x - y, [A(3, 4), A(4)]),
    ("sub_bcast_first", lambda x, y: x - y, [A(4), A(3, 4)]),
    ("rsub_const", lambda x: 2.0 - x, [A(3, 4)]),
    ("rsub_const_scalar", lambda s: 2.0 - s, [A()]),
    ("sub_scalars", lambda s, t: s - t, [A(), A()]),
    ("mul", lambda x, y: x * y, [A(3, 4), A(3, 4)]),
    ("mul_bcast", lambda x, y: x * y, [A(3, 1), A(4)]),
    ("mul_const_scalar", lambda s: s * 3.0, [A()]),
    ("mul_scalar_tensor", lambda s, x: s * x, [A(), A(2, 3)]),
    ("div", lambda x, y: x / y, [A(3, 4), P(3, 4)]),
    ("div_bcast", lambda x, y: x / y, [A(3, 4), P(4)]),
    ("div_const", lambda x: x / 4.0, [A(3, 4)]),
    ("rdiv_const", lambda x: 2.0 / x, [P(3, 4)]),
    ("div_scalars", lambda s, t: s / t, [A(), P()]),
    ("div_by_zero", lambda x, y: x / y, [A(4), V([0.0, 1.0, 0.0, 2.0])]),
    ("pow", lambda x, y: x.pow(y), [P(3, 4), A(4)]),
    ("pow_negative_base", lambda x, y: x ** y, [A(3, 4), V([2.0, 0.5, 3.0, 1.5])]),
    ("pow_scalars", lambda s, t: s ** t, [P(), A()]),
    ("maximum", lambda x, y: x.maximum(y), [A(3, 4), A(3, 4)]),
    ("maximum_bcast", lambda x, y: tg.maximum(x, y), [A(3, 4), A(4)]),
    ("maximum_nan", lambda x, y: x.maximum(y), [V([1.0, np.nan, 2.0]), V([np.nan, 0.5, 3.0])]),
    ("maximum_scalars", lambda s, t: s.maximum(t), [A(), A()]),
    ("max_other", lambda x, y: x.max(other=y), [A(3, 4), A(3, 4)]),
    ("minimum", lambda x, y: x.minimum(y), [A(3, 4), A(1, 4)]),
    ("minimum_nan", lambda x, y: x.minimum(y), [V([1.0, np.nan, 2.0]), V([np.nan, 0.5, 3.0])]),
    ("minimum_scalars", lambda s, t: s.minimum(t), [A(), A()]),
    ("atan2", lambda x, y: x.atan2(y), [A(3, 4), A(3, 4)]),
    ("atan2_bcast", lambda x, y: tg.atan2(x, y), [A(3, 4), A(4)]),
    ("atan2_scalars", lambda s, t: s.arctan2(t), [A(), A()]),
    ("hypot", lambda x, y: x.hypot(y), [A(3, 4), A(4)]),
    ("hypot_scalars", lambda s, t: tg.hypot(s, t), [A(), A()]),
    ("logaddexp", lambda x, y: tg.logaddexp(x, y), [A(3, 1), A(1, 4)]),
    ("logaddexp_scalars", lambda s, t: s.logaddexp(t), [A(), A()]),
    ("fmod", lambda x, y: x.fmod(y), [A(3, 4), P(3, 4)]),
    ("fmod_scalars", lambda s, t: tg.fmod(s, t), [A(), P()]),
    ("fmod_number", lambda x: x.fmod(-0.7), [A(3, 4)]),
    ("fmod_number_scalar", lambda s: s.fmod(0.3), [A()]),
    ("remainder", lambda x, y: x % y, [A(3, 4), P(4)]),
    ("remainder_scalars", lambda s, t: s.remainder(t), [A(), P()]),
    ("remainder_number", lambda x: x % 0.7, [A(3, 4)]),
    ("remainder_number_scalar", lambda s: tg.remainder(s, -0.3), [A()]),
    ("where", lambda x, y: tg.where(tg.tensor(COND), x, y), [A(3, 4), A(3, 4)]),
    ("where_bcast", lambda x, y: tg.where(tg.tensor(COND), x, y), [A(3, 1), A(4)]),
    ("where_number", lambda x: tg.where(tg.tensor(COND), x, 0.5), [A(2, 4)]),
    ("where_scalar", lambda s, y: tg.where(tg.tensor(COND), s, y), [A(), A(4)]),
    # unary: every row on arrays and on Python-float scalars (UNARY, below)
    ("log_negative", lambda x: x.log(), [V([-1.0, 0.0, 2.0])]),
    ("sigmoid_far", lambda x: x.sigmoid(), [V([-30.0, -800.0, 30.0, 800.0])]),
    ("relu_nan", lambda x: x.relu(), [V([np.nan, -1.0, 1.0])]),
    ("to_0d_array", lambda x: x.sum().to(tg.float64, copy=True) * 2.0, [A(3)]),
    # reductions
    ("sum", lambda x: x.sum(), [A(3, 4)]),
    ("sum_scalar", lambda s: s.sum(), [A()]),
    ("sumdim", lambda x: x.sum(1), [A(3, 4)]),
    ("sumdim_keep", lambda x: x.sum((0, 2), keepdim=True), [A(2, 3, 4)]),
    ("mean", lambda x: x.mean(), [A(3, 4)]),
    ("meandim", lambda x: x.mean(0), [A(3, 4)]),
    ("meandim_keep", lambda x: x.mean(dim=(1,), keepdim=True), [A(2, 3, 4)]),
    # lane ops
    ("max", lambda x: x.max(), [A(3, 4)]),
    ("min", lambda x: x.min(), [A(3, 4)]),
    ("max_nan", lambda x: x.max(), [V([1.0, np.nan, 3.0])]),
    ("amax", lambda x: x.amax(1), [A(2, 3, 4)]),
    ("amax_all", lambda x: x.amax(), [A(3, 4)]),
    ("amin", lambda x: x.amin((0, 2)), [A(2, 3, 4)]),
    ("prod", lambda x: x.prod(), [A(3, 4)]),
    ("proddim", lambda x: x.prod(1), [A(3, 4)]),
    ("proddim_keep", lambda x: x.prod(0, keepdim=True), [A(3, 4)]),
    ("var", lambda x: x.var(), [A(3, 4)]),
    ("var_dim", lambda x: x.var(1, correction=0), [A(3, 4)]),
    ("var_one_per_lane", lambda x: x.var(1), [A(3, 1)]),
    ("std", lambda x: x.std(0), [A(3, 4)]),
    ("std_all", lambda x: x.std(), [A(2, 3, 4)]),
    ("norm", lambda x: x.norm(), [A(3, 4)]),
    ("norm_p1", lambda x: x.norm(p=1, dim=1), [A(3, 4)]),
    ("norm_p3", lambda x: x.norm(p=3, dim=0), [A(3, 4)]),
    ("norm_inf", lambda x: x.norm(p=math.inf), [A(3, 4)]),
    ("logsumexp", lambda x: x.logsumexp(1), [A(3, 4)]),
    ("logsumexp_all", lambda x: x.logsumexp((0, 1)), [A(3, 4)]),
    ("logsumexp_big", lambda x: x.logsumexp(0), [V([800.0, 801.0, -5.0])]),
    ("softmax", lambda x: x.softmax(1), [A(3, 4)]),
    ("softmax_dim0", lambda x: x.softmax(0), [A(2, 3, 4)]),
    ("softmax_scalar", lambda s: s.softmax(0), [A()]),
    ("log_softmax", lambda x: x.log_softmax(-1), [A(3, 4)]),
    ("log_softmax_dim1", lambda x: x.log_softmax(1), [A(2, 3, 4)]),
    # matrix products
    ("mm", lambda x, w: x.mm(w), [A(3, 4), A(4, 2)]),
    ("bmm", lambda x, w: x.bmm(w), [A(2, 3, 4), A(2, 4, 5)]),
    ("dot", lambda x, y: x.dot(y), [A(4), A(4)]),
    ("mv", lambda x, y: x.mv(y), [A(3, 4), A(4)]),
    ("matmul_batched", lambda x, w: x @ w, [A(2, 1, 3, 4), A(5, 4, 2)]),
    ("matmul_vec_mat", lambda v, w: v @ w, [A(4), A(4, 3)]),
    # strided views
    ("select", lambda x: x[1], [A(3, 4)]),
    ("select_dim1", lambda x: x[:, 2], [A(3, 4)]),
    ("select_0d", lambda x: x[1, 2] * 2.0, [A(3, 4)]),
    ("slice", lambda x: x[1:3], [A(3, 4)]),
    ("slice_step", lambda x: x[:, ::2], [A(3, 4)]),
    ("slice_all", lambda x: x[...], [A(3, 4)]),
    ("slice_scalar", lambda s: s[...] * 2.0, [A()]),
    ("unsqueeze", lambda x: x.unsqueeze(1), [A(3, 4)]),
    ("unsqueeze_none", lambda x: x[None], [A(3, 4)]),
    ("unsqueeze_scalar", lambda s: s.unsqueeze(0), [A()]),
    ("squeeze", lambda x: x.squeeze(), [A(3, 1, 4)]),
    ("squeezedim", lambda x: x.squeeze(1), [A(3, 1, 4)]),
    ("view", lambda x: x.view(4, 3), [A(3, 4)]),
    ("reshape_flat", lambda x: x.reshape(-1), [A(2, 3, 2)]),
    ("reshape_scalar", lambda s: s.reshape(1), [A()]),
    ("flatten", lambda x: x.flatten(1), [A(2, 3, 2)]),
    ("t", lambda x: x.t(), [A(3, 4)]),
    ("permute", lambda x: x.permute(2, 0, 1), [A(2, 3, 4)]),
    ("T", lambda x: x.T, [A(2, 3, 4)]),
    ("transpose", lambda x: x.transpose(0, 2), [A(2, 3, 4)]),
    ("expand", lambda x: x.expand(2, 3, 4), [A(3, 1)]),
    ("expand_scalar", lambda s: s.expand(3), [A()]),
    ("as_strided", _view_of_a_changed_base, [A(3, 4)]),
    ("view_chain", lambda x: x.t()[1:, None].expand(3, 2, 3).sum(1), [A(3, 4)]),
    # gathers
    ("index", lambda x: x[[0, 2]], [A(3, 4)]),
    ("index_repeat", lambda x: x[[0, 0, 2], [1, 1, 3]], [A(3, 4)]),
    ("index_mask", lambda x: x[MASK], [A(3, 4)]),
    ("index_columns", lambda x: x[:, [1, 3]], [A(3, 4)]),
    ("index_select", lambda x: x.index_select(1, tg.tensor([2, 0, 2])), [A(3, 4)]),
    ("gather", lambda x: x.gather(1, tg.tensor([[0, 3], [1, 1], [2, 0]])), [A(3, 4)]),
    ("maxdim", lambda x: x.max(1).values, [A(3, 4)]),
    ("maxdim_3d", lambda x: x.max(dim=-1, keepdim=True)[0], [A(2, 3, 4)]),
    ("mindim", lambda x: x.min(0).values, [A(3, 4)]),
    ("mindim_keep", lambda x: x.min(1, keepdim=True).values, [A(2, 3, 4)]),
    # cat / stack
    ("cat", lambda x, y: tg.cat([x, y], 0), [A(2, 4), A(3, 4)]),
    ("cat_dim1", lambda x, y: tg.cat([x, y, x], 1), [A(3, 2), A(3, 1)]),
    ("cat_const", lambda x: tg.cat([x, tg.ones(1, 4, dtype=tg.float64)], 0), [A(2, 4)]),
    ("stack", lambda x, y: tg.stack([x, y], 1), [A(3, 4), A(3, 4)]),
    ("stack_scalars", lambda s, t: tg.stack([s, t, s]), [A(), A()]),
    # item assignment (CopySlices)
    ("setitem_row", lambda x, v: setitem(x, 0, v), [A(3, 4), A(4)]),
    ("setitem_number", lambda x: setitem(x, (slice(None), 1), 2.5), [A(3, 4)]),
    ("setitem_rows_bcast", lambda x, v: setitem(x, [0, 2], v), [A(3, 4), A(4)]),
    ("setitem_scalar_bcast", lambda x, s: setitem(x, 1, s), [A(3, 4), A()]),
    ("setitem_element", lambda x, s: setitem(x, (2, 3), s), [A(3, 4), A()]),
    ("setitem_then_use", lambda x, v: setitem(x, 1, v).sum(0) * 2.0, [A(3, 4), A(4)]),
    # a whole network: the walkthrough's loss
    ("mlp", lambda w1, b1, w2, b2: (tg.tensor(np.linspace(-1, 1, 12).reshape(4, 3),
                                              dtype=w1.dtype)
                                    .mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
                                    - tg.tensor(np.linspace(0, 1, 8).reshape(4, 2),
                                                dtype=w1.dtype)
                                    ).pow(2).sum(),
     [A(3, 5), A(5), A(5, 2), A(2)]),
    ("scalar_chain", lambda s, t: ((s * t + 1.0).tanh() * s - t / 3.0).exp().log() ** 2.0,
     [A(), A()]),
]


# (name, fn, domain): each runs on a (3, 4) array and on a Python-float scalar. First the
# elementwise unary ops of tests/op_catalogue.py (a pole at 0: positive inputs; a kink:
# any, perturb keeps the sign), then the unary rows with constants, and casts
_DOMAIN = {"any": "any", "kink": "any", "nz": "pos", "pos": "pos", "step": "any",
           "unit": "unit", "gt1": "gt1"}
UNARY = [(name, call(name), _DOMAIN[domain]) for name, domain in CATALOGUE.items()] + [
    ("clamp", lambda x: x.clamp(-0.5, 0.5), "any"),
    ("clamp_min", lambda x: x.clamp(min=0), "any"),
    ("clamp_max", lambda x: x.clamp(max=0.3), "any"),
    ("powc_square", lambda x: x.pow(2), "any"),
    ("powc_cube", lambda x: x ** 3.0, "any"),
    ("powc_half", lambda x: x ** 0.5, "pos"),
    ("powc_negative", lambda x: x.pow(-1.5), "pos"),
    ("powc_of_negative", lambda x: (-x) ** 0.5, "pos"),       # NaN
    ("square", lambda x: x.square(), "any"),
    ("rpow", lambda x: 2.0 ** x, "any"),
    ("to", lambda x: x.to(tg.float64, copy=True), "any"),
    ("round_decimals", lambda x: x.round(decimals=1), "any"),
    ("round_decimals_negative", lambda x: x.round(decimals=-1), "any"),
]
CASES += [(f"{name}_array", fn, [((3, 4), dom)]) for name, fn, dom in UNARY]
CASES += [(f"{name}_scalar", fn, [((), dom)]) for name, fn, dom in UNARY]
CASES += [("sigmoid_far_scalars", lambda s, t, u: s.sigmoid() + t.sigmoid() + u.sigmoid(),
           [V(-30.0), V(-800.0), V(30.0)])]


@pytest.mark.parametrize("name, fn, specs", CASES, ids=[c[0] for c in CASES])
def test_replay_matches_eager(name, fn, specs):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    inputs = [draw(s, rng) for s in specs]
    new = [perturb(x, rng) for x in inputs]
    replay_matches_eager(fn, inputs, new)


@pytest.mark.parametrize("name, fn, specs", CASES, ids=[c[0] for c in CASES])
def test_float32_replay_computes_in_a_float32_arena(name, fn, specs):
    """A recording of float32 values only replays in a float32 arena (values rounded as
    they are stored, numbers taken as float32 as NumPy takes them with a float32 array,
    sums accumulated in float64) and gives eager float32's values to a few ulps. Integer
    and bool values (a where's condition) keep it float32, as eager's sweep is (exact below
    2^24, which a guard checks at each call: ``int_slots``); a float64 value makes it
    float64."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    inputs = [draw(s, rng) for s in specs]
    new = [perturb(x, rng) for x in inputs]
    call = replay_matches_eager(fn, inputs, new, dtype=tg.float32, rtol=2e-6, atol=2e-6)
    P = call.program
    all_f32 = bool((heads(P) & F32).all())
    assert P.dtype == (np.float32 if all_f32 or P.dtypes == 1 else np.float64)
    assert call.arena.dtype == P.dtype
    if P.dtype == np.float32:           # every other record's values are guarded, bar 0/1s
        not_f32 = set(np.nonzero((heads(P) & F32) == 0)[0].tolist())
        guarded = set(P.int_slots.tolist())
        assert guarded <= not_f32
        for r in not_f32 - guarded:
            assert ops.FAMILY[int(heads(P)[r]) & OPMASK] == ops.F_COMPARE


@pytest.mark.parametrize("reduce", ["amax", "logsumexp", "var"])
def test_squeezed_lane_reduction_then_broadcast(reduce):
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(3, 4)), rng.normal(size=(2, 3))]
    replay_matches_eager(lambda x, y: getattr(x, reduce)(1) + y, inputs,
                         [perturb(x, rng) for x in inputs])


def test_cases_cover_the_table():
    """Every non-source row of the table is recorded by some case (the comparisons by the
    cases recorded as tg.compile records them)."""
    seen = set()
    rng = np.random.default_rng(0)
    for cases, compare in ((CASES, False), (COMPARE_CASES, True)):
        for _, fn, specs in cases:
            _, _, P = record(fn, [draw(s, rng) for s in specs], compare)
            seen.update(int(h) & OPMASK for h in heads(P))
    rows = {ops.code_of(row.name) for row in ops.TABLE.values()
            if row.family not in ("source", "custom")}
    missing = sorted(ops.BY_CODE[c].name for c in rows - seen)
    assert not missing, f"no case records {missing}"


def test_every_row_is_handled():
    """The op table and the sweep stay in step: every non-source row is recomputed (but
    a user's autograd.Function, whose forward is Python: a recording refuses it)."""
    handled = set(ALL_FORWARD_OPCODES)
    assert len(handled) == len(ALL_FORWARD_OPCODES)
    for row in ops.TABLE.values():
        code = ops.code_of(row.name)
        if row.family in ("source", "custom"):
            assert code not in handled, row.name
        else:
            assert code in handled, f"forward_sweep does not handle {row.name}"
    assert handled <= set(ops.BY_CODE)


# ----- behaviours beyond one record ---------------------------------------------------
def test_maxdim_recomputes_the_arg_extreme():
    """max(dim)/min(dim) find the new arg-max of each lane (first on ties, NaN wins, as
    np.argmax) and write its flat index into the int list the reverse sweep reads."""
    x0 = np.array([[1.0, 3.0, 2.0, 0.0], [2.0, 2.0, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0]])
    x1 = np.array([[5.0, 1.0, 5.0, 0.0], [0.0, 4.0, 4.0, 4.0], [1.0, np.nan, 2.0, np.nan]])
    for largest in (True, False):
        def fn(x):
            return (x.max(1) if largest else x.min(1)).values * 1.0

        call = replay_matches_eager(fn, [x0], [x1])
        P = call.program
        r = next(r for r in range(P.nrec)
                 if int(heads(P)[r]) & OPMASK in (ops.MAXDIM, ops.MINDIM))
        arg = (np.argmax if largest else np.argmin)(x1, axis=1)
        np.testing.assert_array_equal(call.ints(P.row_of[r]), arg + 4 * np.arange(3))


def test_sweep_in_pieces():
    """Running records [0, cut) and then [cut, n) is the same as one sweep."""
    def fn(x, w, s):
        return ((x.mm(w) * s).softmax(1).log() + x.sum(1, keepdim=True)).max(0).values
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), 0.7]
    new = [perturb(x, rng) for x in inputs]
    for frac in (0.25, 0.5, 0.75):
        replay_matches_eager(fn, inputs, new, split=lambda n: int(n * frac))


@pytest.mark.parametrize("blas_min", [0, 1 << 62])
def test_forward_with_numpy_products(blas_min):
    """``Program.forward``: the sweep with matrix products from blas_min multiply-adds on
    done by NumPy between segments (0: every product; huge: none, all in the sweep's
    loops). The loops add in another order than BLAS: an element where 30 products nearly
    cancel differs in its last bits (atol, for values of order 1)."""
    def fn(x, w, v, y, b1, b2):
        h = (x.mm(w) + 0.5).tanh()                       # (20, 30) @ (30, 40)
        return ((h.mv(v) * 2.0).dot(y) + b1.bmm(b2).sum()).exp()
    rng = np.random.default_rng(5)
    shapes = ((20, 30), (30, 40), (40,), (20,), (3, 4, 5), (3, 5, 2))
    inputs = [rng.normal(size=s) * 0.2 for s in shapes]
    new = [perturb(x, rng) for x in inputs]
    replay_matches_eager(fn, inputs, new, blas_min=blas_min, atol=1e-15)
    replay_matches_eager(fn, inputs, new, split=lambda n: n // 2, blas_min=blas_min,
                         atol=1e-15)


def test_replay_many_times():
    """A replay is repeatable: the same call's buffers serve call after call."""
    fn = CASES[[c[0] for c in CASES].index("mlp")][1]
    rng = np.random.default_rng(7)
    inputs = [rng.normal(size=s) for s in ((3, 5), (5,), (5, 2), (2,))]
    tape, leaves, P = record(fn, inputs)
    call = Call(P)
    out = P.nrec - 1
    for _ in range(5):
        new = [x + 0.1 * rng.normal(size=x.shape) for x in inputs]
        write_inputs(tape, leaves, new, call)
        call.sweep()
        expected, _, _ = record(fn, new)
        assert_same_values(call, expected)
        eager = fn(*[tg.tensor(x) for x in new]).item()
        assert abs(call.values(out)[0] - eager) <= RTOL * abs(eager)


def test_sources_are_not_written():
    """Leaves and constants keep the values the caller wrote."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 4))
    tape, leaves, P = record(lambda a, s: (a * s + tg.tensor(np.ones(4))).sum(), [x, 0.5])
    call = Call(P)
    write_inputs(tape, leaves, [x, 0.5], call)
    before = [call.values(r).copy() for r in range(P.nrec)]
    wipe(call)
    call.sweep()
    for r in range(P.nrec):
        if not is_computed(P, r):
            np.testing.assert_array_equal(call.values(r), before[r])


# ----- comparisons: recorded inside a tg.compile recording only -------------------------
COMPARE_CASES = [
    ("gt_where", lambda x, y: tg.where(x > y, x, y * 2.0), [A(3, 4), A(4)]),
    ("lt_number", lambda x: tg.where(x < 0.25, x, -x), [A(3, 4)]),
    ("ge_le_eq_ne", lambda x, y: ((x >= y).double() + (x <= y).double() * 2.0
                                  + (x == y).double() * 4.0 + (x != y).double() * 8.0) * x,
     [V([[1.0, 2.0, 3.0], [0.5, 2.0, -1.0]]), V([1.0, 0.0, 3.0])]),
    ("compare_scalars", lambda s, t: tg.where(s > t, s, t) * 1.0, [A(), A()]),
    ("castng_bool", lambda x: x.bool().double() * x, [V([0.0, 1.5, -2.0, 0.0])]),
    ("castng_long", lambda x: x.long() * 3 + x, [V([1.7, -1.7, 2.2, -0.4])]),
    ("compare_sum", lambda x: (x > 0).sum() * x, [A(3, 4)]),
]


@pytest.mark.parametrize("name, fn, specs", COMPARE_CASES, ids=[c[0] for c in COMPARE_CASES])
def test_recorded_comparisons(name, fn, specs):
    """GT..NE and CASTNG as a tg.compile recording records them (a branch condition a
    replay recomputes), checked like every other row."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    inputs = [draw(s, rng) for s in specs]
    new = [perturb(x, rng) for x in inputs]
    call = replay_matches_eager(fn, inputs, new, compare=True)
    ops_seen = {int(h) & OPMASK for h in heads(call.program)}
    assert ops_seen & {ops.GT, ops.LT, ops.GE, ops.LE, ops.EQ, ops.NE, ops.CASTNG}


# ----- comparisons: not recorded eagerly, so built by hand ------------------------------
COMPARE = {ops.GT: np.greater, ops.LT: np.less, ops.GE: np.greater_equal,
           ops.LE: np.less_equal, ops.EQ: np.equal, ops.NE: np.not_equal}


def test_compare_records():
    """GT..NE (broadcast like binary ops; b may be the constant c; scalar records too) and
    CASTNG (c: 0 bool, 1 integer toward zero, 2 float), on records built by hand."""
    x = np.array([[0.0, 1.5, -2.5, 3.0], [2.0, -0.7, 0.0, 1.0], [-1.0, 2.0, 4.5, np.nan]])
    y = np.array([0.0, 2.0, -2.5, 1.0])
    s, t = 1.5, 2.0
    tape = Tape()
    tape.keep_all = True
    tx, ty = leaf(x), leaf(y)
    ts, tt, tn = leaf(s), leaf(t), leaf(-s)
    sx, sy, ss, st, sn = (_slot(v, tape) for v in (tx, ty, ts, tt, tn))
    expected = []          # (slot, expected value)

    def array_record(op, a, b, const, value):
        head = op | a << SHIFT | (CONST_B if const else 0)
        slot = tape.record_array(head, float(b), static_row(value.shape),
                                 yobj=tape.keep(np.full(value.shape, np.nan)))
        expected.append((slot, value.astype(np.float64)))

    def scalar_record(op, a, b, flag, value):
        slot = len(tape)
        tape.rec += RECORD.pack(op | SCALAR | flag | a << SHIFT, float(b), np.nan)
        tape.n += 1                    # whoever appends a record counts it (Tape.n)
        expected.append((slot, float(value)))

    for op, f in COMPARE.items():
        array_record(op, sx, sy, False, f(x, y))               # broadcast (3, 4) vs (4,)
        array_record(op, sy, sx, False, f(y, x))
        array_record(op, sx, 1.0, True, f(x, 1.0))             # a Python number
        array_record(op, sx, ss, False, f(x, s))               # a Python-float scalar
        scalar_record(op, ss, st, 0, f(s, t))
        scalar_record(op, ss, 1.5, CONST_B, f(s, 1.5))
        scalar_record(op, st, 1.5, CONST_A, f(1.5, t))
    for kind, f in ((0.0, lambda v: v != 0), (1.0, np.trunc), (2.0, lambda v: v)):
        array_record(ops.CASTNG, sx, kind, True, f(x))
        scalar_record(ops.CASTNG, ss, kind, CONST_B, f(s))
        scalar_record(ops.CASTNG, sn, kind, CONST_B, f(-s))
    call = Call(Program(tape))
    write_inputs(tape, [tx, ty, ts, tt, tn], [x, y, s, t, -s], call)
    call.sweep()
    for slot, v in expected:
        name = ops.BY_CODE[int(heads(call.program)[slot]) & OPMASK].name
        np.testing.assert_array_equal(call.values(slot).reshape(np.shape(v)), v,
                                      err_msg=name)
