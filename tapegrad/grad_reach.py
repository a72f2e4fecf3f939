"""What ``autograd.grad()`` and ``backward(inputs=...)`` run: the records between the
outputs and the inputs.

PyTorch's engine executes only the nodes that lead to an input (its ``exec_info``). In
``grad()`` an input's own node is captured, not executed, unless another input lies below
it; in ``backward(inputs=...)`` the inputs' nodes are executed too. Nothing below the
inputs runs: nothing there is freed (a later ``backward()`` through it works), and no hook
or custom Function there is called.

``restrict`` finds those records on one tape of the engine's sweep (``engine._Sweep``) and
gives the sweep records in which the others are turned into sources: they still take an
adjoint (an input's gradient is read there) but pass nothing on. The one jitted loop
(``closure``) reads only the arrays it is given, so its on-disk cache cannot go stale when
the op table or the kernels change.
"""
from collections.abc import Mapping
import warnings

import numpy as np

from .base import TensorBase as Tensor
from .kernels_base import jit
from .layout import BIG, CONST_A, CONST_B, ILEN, IOBJ, OPMASK, SHIFT
from .ops import (FAMILY, F_BINARY, F_COMPARE, F_CUSTOM, F_MATMUL, F_MULTI, F_SETITEM,
                  F_SOURCE, LEAF, LINK)

_FAMILY = np.array(FAMILY, np.int64)
_NOTHING = np.zeros(0, np.int64)


@jit
def closure(first, second, start, extra, reach, wanted, top, out):
    """out[r] = 1 for each reached record r <= top that has an operand (first[r],
    second[r], extra[start[r]:start[r + 1]]; -1: none) that is wanted or whose record is
    marked itself. Operands come before their records (SSA): one pass upwards."""
    for r in range(top + 1):
        if reach[r] == 0:
            continue
        for k in range(-2, start[r + 1] - start[r]):
            s = first[r] if k == -2 else (second[r] if k == -1 else extra[start[r] + k])
            if 0 <= s < r and (wanted[s] != 0 or out[s] != 0):
                out[r] = 1
                break


def restrict(run, inputs, run_inputs):
    """Sets the sweep's ``runs`` (the records whose backward runs, and is freed), ``seen``
    (the slots whose gradient is computed: hooks, retained grads) and ``srq`` (the records
    as swept). ``run_inputs``: the inputs' own records run (backward(inputs=...)). A link
    counts as leading to an input when an input is on the tape it continues into, or on
    one that tape links to."""
    tape, rq, rd, reach = run.tape, run.rq, run.rd, run.reach
    n = len(reach)
    wanted = np.zeros(n, np.uint8)
    nodes, elsewhere = set(), False
    for t in inputs:
        if t._tape is tape:
            wanted[t._slot] = 1
        else:
            elsewhere = True
            if t._tape is None and t._node is not None:
                nodes.add(id(t._node))
    heads = rq[0::3]
    ops = heads & OPMASK
    fam = _FAMILY[ops]
    if nodes:
        mark = np.array([id(node) in nodes for node in tape.leaf_nodes] + [False])
        if mark.any():                  # the records of the input leaves on this tape
            recs = np.nonzero(ops == LEAF)[0]
            wanted[recs[mark[heads[recs] >> SHIFT]]] = 1
    memo = {}
    links = [s for s, node in tape.links.items()
             if reach[s] and _holds_input(node._tape, inputs, memo)] if elsewhere else []
    wanted[links] = 1
    out = np.zeros(n, np.uint8)
    top = max(s for s, _ in run.roots)
    first, second, start, extra = _operands(tape, rd, run.md, heads, fam, reach, top)
    closure(first, second, start, extra, reach, wanted, top, out)
    run.seen = reach & (out | wanted)
    out[links] = 1
    if run_inputs:
        out |= run.seen
    run.runs = out
    # PyTorch always calls the tensor hooks of an output's node (not of one a link reaches)
    run.seen[[t._slot for t in run.outputs if t._tape is tape]] = 1
    idle = (reach != 0) & (out == 0) & (fam != F_SOURCE)
    if idle.any():
        srq = rq.copy()
        srq[0::3][idle] = (heads[idle] & ~(OPMASK | BIG)) | LINK
        run.srq = srq


def _holds_input(tape, inputs, memo):
    """Is an input (a non-leaf of the tape, a leaf it recorded) on ``tape`` or on a tape
    it links to (older ones)?"""
    if tape.id in memo:
        return memo[tape.id]
    memo[tape.id] = False               # (while looking: no cycle hangs)
    nodes = {id(n) for n in tape.leaf_nodes}
    found = any(t._tape is tape or (t._tape is None and id(t._node) in nodes)
                for t in inputs) or \
        any(_holds_input(node._tape, inputs, memo) for node in tape.links.values())
    memo[tape.id] = found
    return found


def _operands(tape, rd, md, heads, fam, reach, top):
    """Each record's operand slots, as ``closure`` reads them (as kernels._operands_reach
    finds them): the head's slot, the second slot of a two-operand record, and the slot
    lists of multi-operand records and custom Functions' outputs."""
    none = (fam == F_SOURCE) | (fam == F_COMPARE) | (fam == F_MULTI) | (fam == F_CUSTOM)
    first = np.where(none, -1, heads >> SHIFT)
    two = ((fam == F_BINARY) | (fam == F_MATMUL) | (fam == F_SETITEM)) & \
        ((heads & (CONST_A | CONST_B)) == 0)
    second = np.where(two, rd[1::3], -1).astype(np.int64)
    start = np.zeros(len(heads) + 1, np.int64)
    lists = {}
    for r in np.nonzero(((fam == F_MULTI) | (fam == F_CUSTOM))[:top + 1] &
                        (reach[:top + 1] != 0))[0].tolist():
        if fam[r] == F_MULTI:
            lists[r] = tape.multi[r]
        else:                               # a custom Function's output: its inputs
            k = int(rd[3 * r + 2])
            lists[r] = tape.objs[int(md[k, IOBJ])][:int(md[k, ILEN])]
    if not lists:
        return first, second, start, _NOTHING
    for r, ss in lists.items():
        start[r + 1] = len(ss)
    np.cumsum(start, out=start)
    extra = np.concatenate([np.asarray(lists[r], np.int64) for r in sorted(lists)])
    return first, second, start, extra


def grad_arguments(inputs, only_inputs, allow_unused, is_grads_batched, materialize_grads):
    """PyTorch's checks of grad()'s arguments: (keys of a dict of inputs or None, the
    inputs as a list, allow_unused)."""
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    if allow_unused is None:
        allow_unused = materialize_grads
    if is_grads_batched:
        raise NotImplementedError("tapegrad: autograd.grad(is_grads_batched=True) needs vmap, "
                                  "which tapegrad does not have: call grad() once per row")
    keys = None
    if type(inputs) is dict:
        keys, inputs = list(inputs.keys()), list(inputs.values())
    elif isinstance(inputs, Mapping):
        raise TypeError(f"`inputs` argument to `grad()` must be a dict, not "
                        f"{type(inputs).__name__}. Other Mapping types are not supported.")
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    if not only_inputs:
        warnings.warn("only_inputs argument is deprecated and is ignored now (defaults to "
                      "True). To accumulate gradient for other parts of the graph, please "
                      "use torch.autograd.backward.", FutureWarning, stacklevel=4)
    return keys, inputs, allow_unused
