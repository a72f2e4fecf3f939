"""``tg.einsum``: Einstein summation composed from the recorded primitives, as PyTorch
contracts it: a subscript repeated within an operand takes that operand's diagonal (an
``index`` record), a subscript of one operand that no later operand and not the output
has is summed away (``sum``), and operands are contracted left to right, two at a time:
no subscript summed, a broadcast ``mul``; else ``permute``/``reshape`` to
(batch, rows, summed) and (batch, summed, columns) and one ``mm``/``bmm``. The result is
permuted to the output's order. Every pattern of the equation language is covered:
explicit (``->``) and implicit output, ``...`` (broadcast like PyTorch's), size-1
subscripts broadcast against others, the sublist form ``einsum(a, [0, 1], b, [1, 2])``.

Differences: operands are contracted left to right (PyTorch orders the contractions of
three operands or more with opt_einsum when it is installed: values can differ in the last
bits); operands of different dtypes are promoted (PyTorch promotes floating dtypes and
refuses to mix integer and floating ones).
"""
import math

import numpy as np

from . import dtypes as D
from .face import TensorBase as Tensor, _shape
from .indexing import _flat_positions, _pick
from .ops import INDEX

_ELL = "."


def _letter(k):
    return chr(ord("A") + k) if k < 26 else chr(ord("a") + k - 26)


def _rank(label):
    """Implicit output order: the ellipsis first, then A-Z, then a-z."""
    if isinstance(label, tuple):
        return (0, label[1])
    return (1, ord(label) - ord("A") if label.isupper() else 26 + ord(label) - ord("a"))


def _parse_term(term, start, operand, what):
    """Labels of one term (a string starting at index ``start`` of the equation): letters,
    and ``_ELL`` once where the ellipsis is."""
    labels, i = [], 0
    while i < len(term):
        c = term[i]
        if c == ".":
            if _ELL in labels:
                raise RuntimeError(f"einsum(): found '.' for {what} {operand} for which an "
                                   "ellipsis was already found")
            if term[i:i + 3] != "...":
                raise RuntimeError(f"einsum(): found '.' for {what} {operand} that is not "
                                   "part of any ellipsis")
            labels.append(_ELL)
            i += 3
            continue
        if not ("a" <= c <= "z" or "A" <= c <= "Z"):
            raise RuntimeError(f"einsum(): invalid subscript given at index {start + i} in "
                               "the equation string, subscripts must be in [a-zA-Z]")
        labels.append(c)
        i += 1
    return labels


def _parse(equation, n_operands):
    """(labels of each input term, labels of the output term or None)."""
    arrow = equation.find("->")
    lhs = equation if arrow < 0 else equation[:arrow]
    terms, at = [], 0
    for term in lhs.split(","):
        terms.append((term, at))
        at += len(term) + 1
    if len(terms) > n_operands:
        raise RuntimeError("einsum(): fewer operands were provided than specified in the "
                           "equation")
    if len(terms) < n_operands:
        raise RuntimeError("einsum(): more operands were provided than specified in the "
                           "equation")
    ins = [_parse_term(t, s, i, "operand") for i, (t, s) in enumerate(terms)]
    out = None if arrow < 0 else _parse_term(equation[arrow + 2:], arrow + 2, 0, "output")
    return ins, out


def _expand_ellipses(ins, operands):
    """Each term's labels with its ellipsis replaced by ('.', j) labels: the ellipsis dims
    of all operands right-aligned (broadcast). Returns (terms, number of ellipsis dims)."""
    n_ell = 0
    for i, (labels, t) in enumerate(zip(ins, operands)):
        nd, letters = t.ndim, sum(1 for c in labels if c != _ELL)
        if _ELL in labels:
            if letters > nd:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                                   f"({letters}) is more than the number of dimensions ({nd})"
                                   f" for operand {i}")
            n_ell = max(n_ell, nd - letters)
        elif letters != nd:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({letters}) does not match the number of dimensions ({nd}) "
                               f"for operand {i} and no ellipsis was given")
    terms = []
    for labels, t in zip(ins, operands):
        k = t.ndim - (len(labels) - 1) if _ELL in labels else 0
        out = []
        for c in labels:
            out += [(_ELL, n_ell - k + j) for j in range(k)] if c == _ELL else [c]
        terms.append(out)
    return terms, n_ell


def _sizes(terms, operands):
    """The size of every label, checked as PyTorch checks it (size 1 broadcasts)."""
    size = {}
    for i, (labels, t) in enumerate(zip(terms, operands)):
        seen = {}
        for c, n in zip(labels, _shape(t)):
            if c in seen and seen[c] != n:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {i} but "
                                   f"the sizes don't match, {n} != {seen[c]}")
            seen[c] = n
        for c, n in seen.items():
            prev = size.get(c)
            if prev is None or prev == 1:
                size[c] = n
            elif n != 1 and n != prev:
                if isinstance(c, tuple):
                    raise RuntimeError(f"einsum(): dimension {c[1]} covered by ellipsis in "
                                       f"operand {i}has size {n} which does not broadcast "
                                       f"with previously seen ellipsis with size {prev} for "
                                       "the respective dimension")
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {i} "
                                   f"which does not broadcast with previously seen size "
                                   f"{prev}")
    return size


def _output(out, terms, n_ell):
    if out is None:         # implicit: the ellipsis, then the labels seen once, in order
        count = {}
        for labels in terms:
            for c in labels:
                count[c] = count.get(c, 0) + 1
        ell = [(_ELL, j) for j in range(n_ell)]
        return ell + sorted((c for c, k in count.items() if k == 1 and c[0] != _ELL),
                            key=_rank)
    seen, labels = set(), []
    everywhere = {c for t in terms for c in t}
    for c in out:
        if c == _ELL:
            labels += [(_ELL, j) for j in range(n_ell)]
            continue
        if c in seen:
            raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the "
                               "output")
        if c not in everywhere:
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the "
                               "equation for any input operand")
        seen.add(c)
        labels.append(c)
    return labels


def _diagonal(t, labels):
    """t with each repeated label taken once: its diagonal (an index record)."""
    if len(set(labels)) == len(labels):
        return t, labels
    shape = _shape(t)
    unique = list(dict.fromkeys(labels))
    pos = _flat_positions(shape)
    # the diagonal's flat positions: for every label, one index shared by all its dims
    grids = {c: i for i, c in enumerate(unique)}
    sizes = [shape[labels.index(c)] for c in unique]
    mesh = np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij") if unique else []
    flat = pos[tuple(mesh[grids[c]] for c in labels)]
    return _pick(t, np.asarray(flat), INDEX), unique


def _sum_out(t, labels, keep):
    """t with the dims of labels not in ``keep`` summed away."""
    dims = [i for i, c in enumerate(labels) if c not in keep]
    if not dims:
        return t, labels
    return t.sum(dims), [c for c in labels if c in keep]


def _broadcast_to(t, labels, size):
    """t expanded where a label has size 1 and the equation's size is larger."""
    shape = _shape(t)
    want = [size[c] for c in labels]
    return t if list(shape) == want else t.expand(*want)


def _contract(a, la, b, lb, keep, size):
    """The product of a (labels la) and b (lb) summed over the labels both have and keep
    lacks; the result's labels: batch (in both, kept), a's own, b's own."""
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    a, b = _broadcast_to(a, la, size), _broadcast_to(b, lb, size)
    if not summed:      # a broadcast product: a as (batch, left, 1...), b as (batch, 1..., right)
        pa = a.permute(*[la.index(c) for c in batch + left]) if la else a
        pb = b.permute(*[lb.index(c) for c in batch + right]) if lb else b
        na, nb = len(batch) + len(left), len(batch) + len(right)
        sb = [size[c] for c in batch]
        pa = pa.reshape(*sb, *[size[c] for c in left], *[1] * len(right)) if na else pa
        pb = pb.reshape(*sb, *[1] * len(left), *[size[c] for c in right]) if nb else pb
        return pa * pb, batch + left + right
    nbat = math.prod(size[c] for c in batch)
    nl, nr = math.prod(size[c] for c in left), math.prod(size[c] for c in summed)
    nc = math.prod(size[c] for c in right)
    pa = a.permute(*[la.index(c) for c in batch + left + summed])
    pb = b.permute(*[lb.index(c) for c in batch + summed + right])
    if batch:
        prod = pa.reshape(nbat, nl, nr).bmm(pb.reshape(nbat, nr, nc))
    else:
        prod = pa.reshape(nl, nr).mm(pb.reshape(nr, nc))
    return prod.reshape(*[size[c] for c in batch + left + right]), batch + left + right


def _sublists(args):
    """einsum(a, [0, 1], b, [1, 2], [0, 2]) as an equation and its operands."""
    def term(sub):
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, int) and 0 <= s < 52:
                out.append(_letter(s))
            else:
                raise ValueError("einsum(): subscript in subscript list is not within the "
                                 "valid range [0, 52)")
        return "".join(out)
    pairs = args if len(args) % 2 == 0 else args[:-1]
    eq = ",".join(term(s) for s in pairs[1::2])
    if len(args) % 2:
        eq += "->" + term(args[-1])
    return eq, list(pairs[0::2])


def einsum(*args):
    """``tg.einsum(equation, *operands)`` (or a list of operands, or the sublist form)."""
    if not args or (isinstance(args[0], str) and len(args) < 2):
        raise ValueError("einsum(): must specify the equation string and at least one "
                         "operand, or at least one operand and its subscripts list")
    if isinstance(args[0], str):
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
    else:
        equation, operands = _sublists(args)
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 1, but got "
                            f"{type(t).__name__}")
    equation = equation.replace(" ", "")
    ins, out = _parse(equation, len(operands))
    terms, n_ell = _expand_ellipses(ins, operands)
    size = _sizes(terms, operands)
    out_labels = _output(out, terms, n_ell)
    dt = D.result_dtype([t.dtype for t in operands], [], [])
    ops = []
    for t, labels in zip(operands, terms):
        t = t if t.dtype is dt else t.to(dt)
        ops.append(_diagonal(t, labels))
    keep_out = set(out_labels)
    # the first operand, with the labels nothing else needs summed away
    later = [set(l) for _, l in ops]
    acc, la = ops[0]
    acc, la = _sum_out(acc, la, keep_out.union(*later[1:]))
    for j in range(1, len(ops)):
        b, lb = ops[j]
        needed = keep_out.union(*later[j + 1:])
        b, lb = _sum_out(b, lb, needed | set(la))
        acc, la = _sum_out(acc, la, needed | set(lb))
        acc, la = _contract(acc, la, b, lb, needed, size)
    acc = _broadcast_to(acc, la, size)
    acc, la = _sum_out(acc, la, keep_out)
    perm = [la.index(c) for c in out_labels]
    if perm != list(range(len(perm))):
        acc = acc.permute(*perm)
    elif acc is operands[0]:        # the identity: a new tensor all the same (PyTorch's
        acc = acc.permute(*perm) if perm else acc.clone()       # view)
    return acc
