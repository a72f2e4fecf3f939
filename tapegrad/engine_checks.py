"""The checks before a sweep runs: PyTorch's errors for a backward that would read freed
records or values changed in place (``_check``), and anomaly mode's NaN check of one
record's operands (``_check_nan``). Split from engine.py, which calls them."""
import re
import warnings

import numpy as np

from .layout import CONST_A, CONST_B, OPMASK, SHIFT
from .ops import (CONST, DIV, FAMILY, F_BINARY, F_MATMUL, F_SETITEM, LEAF, MUL, NEEDS,
                  node_name)
from .recording import _INPLACE

_NEEDS = np.array(NEEDS, np.int64)
_FAMILY = np.array(FAMILY, np.int64)

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or "
               "if you need to access saved tensors after calling backward.")


# ----- checks --------------------------------------------------------------------------------
def _check(run):
    """Raises PyTorch's errors for a sweep that would read freed or modified values."""
    tape = run.tape
    reach = getattr(run, "runs", run.reach)     # the records whose backward runs
    found = []      # (the record that fails, the error): PyTorch meets the highest first
    if isinstance(tape.freed, np.ndarray):
        hit = np.flatnonzero(tape.freed & (reach[:len(tape.freed)] > 0))
        if len(hit):
            found.append((int(hit[-1]), None))
    # a link into a graph already freed (older than this tape's records; not one of grad()'s
    # inputs: its record runs only when another input is below, which its tape's check sees)
    captured = () if getattr(run, "captured", None) is None else \
        {(id(t._tape), t._slot) for t in run.inputs}
    for slot, node in tape.links.items():
        if reach[slot] and (id(node._tape), node._slot) not in captured:
            freed = node._tape.freed
            if isinstance(freed, np.ndarray) and node._slot < len(freed) and freed[node._slot]:
                found.append((-1, None))
    if tape.saved and tape.epoch != _INPLACE[0]:       # meets the highest record first
        for consumer, slot, cell, version, idx, ref in tape.saved:
            if reach[consumer] and cell[0] != version:
                # PyTorch names a saved output by the node that saved it, and a saved input
                # by the node that now produces it
                kept = tape.objs[idx]
                found.append((consumer, (tape, slot, kept.shape, kept.dtype, cell[0], version,
                                         None if consumer == slot else ref)))
    if tape.dirty:
        found += _check_dirty(run)
    if found:
        first = max(found, key=lambda f: f[0])[1]
        if first is None:
            raise RuntimeError(SECOND_TIME)
        _raise_modified(*first)


def _check_dirty(run):
    """Scalars changed in place after a record read their value: (reader, error) pairs."""
    tape, rq, rd, reach = run.tape, run.rq, run.rd, getattr(run, "runs", run.reach)
    heads = rq[0::3]
    ops = heads & OPMASK
    fam = _FAMILY[ops]
    need = _NEEDS[ops]
    two = ((fam == F_BINARY) | (fam == F_MATMUL) | (fam == F_SETITEM)) & \
        ((heads & (CONST_A | CONST_B)) == 0)
    first = np.where((heads & CONST_A) != 0, -1, heads >> SHIFT)
    second = np.where(two, rd[1::3], -1).astype(np.int64)
    second = np.where((heads & CONST_A) != 0, heads >> SHIFT, second)
    const = (ops == CONST)
    grad_a = (first >= 0) & ~const[np.maximum(first, 0)]
    grad_b = (second >= 0) & ~const[np.maximum(second, 0)]
    cross = (ops == MUL) | (ops == DIV)      # x's value serves only y's grad (and back)
    read_a = ((need & 1) > 0) & ~(cross & ~grad_b)
    read_b = ((need & 2) > 0) & ~((ops == MUL) & ~grad_a)
    here = np.arange(len(ops))
    hit = reach > 0
    found = []
    for slot, (expected, now, dtype, ref, limit) in tape.dirty.items():
        now = now if ref() is None else max(now, ref()._version)   # changed again since?
        users = (((first == slot) & read_a) | ((second == slot) & read_b)) & (here < limit)
        if ((here == slot) & ((need & 4) > 0) & hit).any():      # a saved output
            found.append((slot, (tape, slot, (), dtype, now, expected)))
        if (users & hit).any():
            found.append((int(np.nonzero(users & hit)[0][-1]),
                          (tape, slot, (), dtype, now, expected, ref)))
    return found


def _raise_modified(tape, slot, shape, dtype, now, expected, ref=None):
    """PyTorch's error, naming the node that now produces the changed tensor."""
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor"}.get(np.dtype(dtype).name,
                                                                     "Tensor")
    t = ref() if ref is not None else None
    if t is not None and t._tape is not None:
        tape, slot = t._tape, t._slot
    op = tape.op_of(slot)
    where = ""
    if op not in (LEAF, CONST) and not (t is not None and t._tape is None):
        _, _, const_first = tape.operands(slot)
        where = ", which is output 0 of " + \
            re.sub(r"Backward(0$)?", "", node_name(op, const_first)) + ","   # Max1, Exp
    raise RuntimeError("one of the variables needed for gradient computation has been "
                       f"modified by an inplace operation: [tapegrad.{kind} {list(shape)}]"
                       f"{where} is at version {now}; expected version {expected} instead. "
                       "Hint: enable anomaly detection to find the operation that failed to "
                       "compute its gradient, with "
                       "torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _check_nan(run, r):
    """Anomaly mode: names the node whose backward just put a NaN in an operand's grad."""
    tape = run.tape
    h = int(run.rq[3 * r])
    op = h & OPMASK
    a, b, const_first = tape.operands(r)
    operands = [s for s in ((a, b) if FAMILY[op] in (F_BINARY, F_MATMUL, F_SETITEM)
                            else (a,))]
    if const_first:
        operands = [b]
    for i, s in enumerate(operands):
        if s >= 0 and run.reach[s] and np.isnan(run.adjoint(s)).any():
            name = node_name(op, const_first)
            trace = tape.traces.get(r)
            if trace:
                warnings.warn(f"Error detected in {name}. Traceback of forward call that "
                              f"caused the error:\n{trace}", UserWarning, stacklevel=5)
            raise RuntimeError(f"Function '{name}' returned nan values in its {i}th output.")
