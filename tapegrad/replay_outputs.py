"""What a replayed call hands back, and the listing of a recording.

``_mark_outputs`` notes, at the end of a recording, where each tensor of fn's result sits:
a record's value (a call gives a view of its arena, or a copy in the output's dtype), an
argument (the call's), a tensor fn reached from outside (itself), a tensor fn made from no
input (a fresh copy of its value). ``_listing`` prints a recording one record a line, in
sections when it has effects (forward, each reverse sweep, the update).
"""
import numpy as np

from .base import TensorBase as Tensor
from .face import _array, _new
from .layout import CONST_A, CONST_B, OPMASK, SHIFT
from .ops import BY_CODE, node_name

_float = float


class _Outputs:
    """fn's return value, with its tensors replaced by what a call gives back: a record's
    value (a view of the call's arena; a copy in its dtype when that is not float64), an
    argument (the call's), a tensor fn reached from outside (itself), or a tensor fn made
    from no input (a fresh copy of its value)."""

    def __init__(self, marked, requires, slots):
        self.marked = marked
        self.requires = requires
        self.slots = slots            # (slot, requires grad) of the outputs on the tape
        self.one = None

    def prepare(self, P):
        """One tensor computed on the tape: (slot, arena offset or -1 for a scalar record,
        size, shape, dtype, requires grad), to build it fast."""
        m = self.marked
        if type(m) is tuple and len(m) == 4 and m[0] == "slot":
            _, slot, dt, rg = m
            k = P.row_of[slot]
            self.one = (slot, int(P.voff[k]) if k >= 0 else -1,
                        int(P.ms[k, 0]) if k >= 0 else 1, P.shape(slot), dt, rg)

    def build(self, P, arena, rec, tape, args, copy=False):
        """The outputs of a call: views of its arena (copies when ``copy``: the call's
        buffers are shared with the next), its tape for those that require grad."""
        if self.one is not None:
            return self._one(arena, rec, tape, copy)
        return _build(self.marked, P, arena, rec, tape, args, {}, copy)

    def _one(self, arena, rec, tape, copy):
        """``_build`` of the one tensor ``prepare`` found, from its numbers."""
        slot, o, n, shape, dt, rg = self.one
        if o < 0:                                   # a scalar record's float
            v = _float(rec.view(np.float64)[3 * slot + 2])
            if not dt.is_floating_point:
                v = np.array(v, dt.np)
        else:
            v = arena[o:o + n].reshape(shape)
            if copy or v.dtype != dt.np:
                v = v.astype(dt.np)
        out = _new(v, dt)
        if rg:
            out._rg = True
            out._tape = tape
            out._slot = slot
        return out


def _mark_outputs(result, tape, arg_of, requires):
    any_grad = [False]
    slots = []

    def mark(x):
        if isinstance(x, Tensor):
            if x._tape is tape:
                rg = bool(requires[x._slot])
                any_grad[0] |= rg
                slots.append((x._slot, rg))
                return ("slot", x._slot, x._dtype, rg)
            if id(x) in arg_of:
                return ("arg", arg_of[id(x)])
            node = x._node
            if x._tape is not None or (node is not None and node.tape_id == tape.id):
                return ("obj", x)
            return ("fresh", _array(x).copy(), x._dtype, type(x._v) is _float)
        if isinstance(x, (tuple, list)):
            return type(x)(mark(y) for y in x) if type(x) in (tuple, list) else \
                type(x)(*[mark(y) for y in x])
        if isinstance(x, dict):
            return {k: mark(v) for k, v in x.items()}
        return x
    marked = mark(result)
    return _Outputs(marked, any_grad[0], slots)


def _hashable(key):
    from .replay_plan import _hashable as h
    return h(key)


def _tensors_in(x):
    if isinstance(x, Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for y in x:
            yield from _tensors_in(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors_in(y)


def _build(m, P, arena, rec, tape, args, memo, copy):
    if type(m) is tuple and m and type(m[0]) is str and m[0] in _KINDS:
        kind = m[0]
        if kind == "slot":
            _, slot, dt, rg = m
            out = memo.get(slot)
            if out is not None:
                return out
            v = P.value(arena, rec, slot)
            if type(v) is not _float and (copy or v.dtype != dt.np):
                v = v.astype(dt.np)
            elif type(v) is _float and not dt.is_floating_point:
                v = np.array(v, dt.np)
            out = _new(v, dt)
            if rg:
                out._rg = True
                out._tape = tape
                out._slot = slot
            memo[slot] = out
            return out
        if kind == "arg":
            return args[m[1]]
        if kind == "obj":
            return m[1]
        _, value, dt, scalar = m
        return _new(float(value) if scalar else value.copy(), dt)
    if isinstance(m, (tuple, list)):
        if type(m) in (tuple, list):
            return type(m)(_build(x, P, arena, rec, tape, args, memo, copy) for x in m)
        return type(m)(*[_build(x, P, arena, rec, tape, args, memo, copy) for x in m])
    if isinstance(m, dict):
        return {k: _build(v, P, arena, rec, tape, args, memo, copy) for k, v in m.items()}
    return m


_KINDS = ("slot", "arg", "obj", "fresh")


# ----- the listing -----------------------------------------------------------------------
def _listing(recording):
    """One line a record; with effects, the sections: forward (up to the first backward),
    reverse (each backward, where it runs), update (what follows), and each effect."""
    from .replay_plan import ARG, BACKWARD, CAP, CLEAR, FILL, GRAD, GUARDS, STORE
    P, plan = recording.program, recording.plan
    rq, rd = P.rec.view(np.int64), P.rec.view(np.float64)
    caps = {}

    def ext_name(key):
        if key[0] == ARG:
            return f"in{key[1]}"
        if key[0] == CAP:
            return f"cap{caps.setdefault(id(key[1]), len(caps))}"
        if key[0] == GRAD:
            return f"{ext_name(key[1])}.grad"
        return "const"
    names = {s: ext_name(plan.keys[j]) for s, j in enumerate(plan.src_ext.tolist()) if j >= 0}
    effects = {}
    for e in range(len(plan.eff)):
        effects.setdefault(int(plan.eff[e, 0]), []).append(e)
    steps = bool(plan.backwards or len(plan.eff) - (1 if recording.gslot.size else 0))
    lines = ["-- forward --"] if steps else []
    seen_backward = False
    for r in range(P.nrec + 1):
        for e in effects.get(r, ()):
            pos, kind, j, slot, b = (int(x) for x in plan.eff[e])
            if kind == BACKWARD:
                pos_, roots, retain = plan.backwards[b]
                which = ", ".join(f"%{s}" if seed < 0 else f"%{s} (grad %{seed})"
                                  for s, seed in roots)
                lines.append(f"-- reverse: backward({which}), a sweep over "
                             f"{int(plan.bw_reach[b].sum())} records"
                             f"{', graph kept' if retain else ''} --")
                seen_backward = True
                lines.append("-- update --")
            elif kind == STORE:
                lines.append(f"    {ext_name(plan.keys[j])} <- %{slot}")
            elif kind == FILL:
                lines.append(f"    {ext_name(plan.keys[j])} <- {float(plan.effv[e])!r} "
                             "(filled)")
            elif kind == CLEAR:
                lines.append(f"    {names.get(slot, '%' + str(slot))}.grad <- None")
            elif kind == GUARDS and steps:
                lines.append(f"    (guards checked: {len(recording.gslot)})")
        if r == P.nrec:
            break
        h = int(rq[3 * r])
        op = h & OPMASK
        row = BY_CODE[op]
        a, c = h >> SHIFT, float(rd[3 * r + 1])
        if row.family == "source":
            what = f"{row.name} {names.get(r, '')}".rstrip()
        else:
            if row.arity < 0:
                args = [f"%{s}" for s in P.multi.get(r, ())]
            elif h & CONST_A:
                args = [repr(c), f"%{a}"]
            elif h & CONST_B or row.arity == 1:
                args = [f"%{a}"] + ([repr(c)] if row.arity == 2 or row.family ==
                                    "compare" else [])
            else:
                args = [f"%{a}", f"%{int(c)}"]
            what = f"{row.name}({', '.join(args)})"
            if row.node:
                what += f"  # {node_name(op, bool(h & CONST_A))}"
        lines.append(f"%{r} = {what} : {list(P.shape(r))}")
    del seen_backward
    return "\n".join(lines)
