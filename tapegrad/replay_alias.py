"""A replayed backward's adjoints shared where an add passes its adjoint straight through.

The backward of ``z = a + b`` with b broadcast (``replay_backward._add_rows``) adds z's
adjoint g into a's: d(a + b)/da = 1 on every element. When z is a's only reader in the
backward, a's adjoint is exactly g, so a can take z's place in the workspace instead of a
place of its own: the kernel finds them at one address and skips the copy, and the
workspace it zeroes at each call is smaller. The same holds for ``a - b`` (a's share is
+g) and for b when b is the full operand of ``a + b``. Shares chain: a's place may itself
be shared on with its own single reader.

Conditions, checked per backward (its reach and roots): z is reached, an array ADD/SUB of
two tensors broadcast as rows (``Program.fx``, as ``replay_backward.reverse`` picks it);
the full operand gets +g, is an array record computed on the tape (not a source: a leaf's
adjoint is added into its grad at the end), is not a root, and is read exactly once by the
records the backward reaches (operands, where's condition, cat/stack's parts counted).
"""
import numpy as np

from .layout import CONST_A, CONST_B, OPMASK, SCALAR, SHIFT, SIZE
from .ops import ADD, CASTNG, FAMILY, F_BINARY, F_COMPARE, F_MATMUL, F_SETITEM, F_SOURCE, SUB

_FAMILY = np.array(FAMILY, np.int64)


def share_adjoints(P, reach, off, roots, total):
    """Rewrites ``off`` (the workspace offsets of one backward's array rows, ``total``
    values) so that the full operand of each add that allows it takes its reader's place;
    returns the workspace's new size."""
    heads = P.rec.view(np.int64)[0::3]
    rd = P.rec.view(np.float64)
    n = len(heads)
    reached = reach[:n] > 0
    target = np.arange(len(off))                # row -> the row whose place it takes
    counts = _reads(P, heads, rd, reached)
    ops, fam = heads & OPMASK, _FAMILY[heads & OPMASK]
    adds = reached & (fam == F_BINARY) & ((ops == ADD) | (ops == SUB)) & \
        ((heads & (CONST_A | CONST_B | SCALAR)) == 0)
    rootset = set(int(s) for s in roots)
    for r in np.nonzero(adds)[0][::-1].tolist():      # readers before what they read
        k = P.row_of[r]
        kind = P.fx[k, 0]
        if kind <= 0:
            continue
        a, b = int(heads[r]) >> SHIFT, int(rd[3 * r + 1])
        full = a if kind in (1, 2, 5) else b
        if full == b and ops[r] == SUB:               # a - b: b's share is -g
            continue
        f = P.row_of[full]
        if f < 0 or fam[full] == F_SOURCE or full in rootset or counts[full] != 1 or \
                not reached[full] or off[f] < 0:
            continue
        target[f] = target[k]
    shared = target != np.arange(len(off))
    if not shared.any():
        return total
    own = (off >= 0) & ~shared
    sizes = np.where(own, P.ms[:len(off), SIZE], 0)
    new = np.cumsum(sizes) - sizes
    off[own] = new[own]
    off[shared] = off[target[shared]]
    return int(sizes.sum())


def _reads(P, heads, rd, reached):
    """How many times each slot is read by the reached records."""
    fam = _FAMILY[heads & OPMASK]
    computed = reached & (fam != F_SOURCE)
    first = (heads >> SHIFT)[computed]
    two = computed & (np.isin(fam, (F_BINARY, F_MATMUL, F_SETITEM)) |
                      ((fam == F_COMPARE) & ((heads & OPMASK) != CASTNG))) & \
        ((heads & (CONST_A | CONST_B)) == 0)
    b = rd[1::3][two]
    reads = [first, b[np.isfinite(b)].astype(np.int64)]
    cond = P.cond[P.row_of[computed & ((heads & SCALAR) == 0)]]
    reads.append(cond[cond >= 0])
    for r, parts in P.multi.items():
        if reached[r]:
            reads.append(np.asarray(parts, np.int64))
    reads = np.concatenate(reads)
    return np.bincount(reads[reads >= 0], minlength=len(heads))
