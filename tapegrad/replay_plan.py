"""How a call runs a recorded program: its externals, its effects, its backward sections.

An **external** is a tensor a call reads or writes outside its arena: an argument (its
value at this call), a tensor fn reached from outside (captured: read again at every
call), the grad storage of a leaf (a ``.grad`` fn read), or a constant of the program (a
tensor fn made and dropped: its recorded value). Each source record reads its external
where the sweep reaches it; effects write them (``replay_record``). A ``Plan`` turns the
recording's sources and effects into the tables ``replay_step_kernels.run`` reads, and
precomputes every backward section's reach and workspace: they do not change from call to
call. Externals are numbered arguments first, then captured tensors (both read from their
objects at each call: ``ids``), then grad storages and constants (fixed addresses).
"""
import numpy as np

from .layout import OPMASK, SCALAR, SHIFT
from .ops import LEAF, NEEDS
from .replay_alias import share_adjoints
from .replay_ptr import CODES

_NEEDS = np.array(NEEDS, np.int64)

ARG, CAP, GRAD, FIXED = range(4)          # kinds of external
BACKWARD, STORE, FILL, CLEAR, GUARDS = range(5)


class Plan:
    """The externals and effects of one recording (see the module docstring)."""

    def __init__(self, rec, P, by_slot, effects, leaf_key):
        """``by_slot``: source slot -> the key of its external ((ARG, i), (CAP, tensor),
        (GRAD, leaf key), or None: gone, its recorded value); ``effects``: the recording's
        effects with their tensors replaced by keys (None: gone, nobody sees the change)."""
        self.P = P
        heads = P.rec.view(np.int64)[0::3]
        keys, index = [], {}

        def number(key):
            k = _hashable(key)
            if k not in index:
                index[k] = len(keys)
                keys.append(key)
            return index[k]

        src = {}
        for s, key in by_slot.items():
            if key is None:
                if heads[s] & SCALAR:
                    continue              # a scalar constant: its recorded value stays
                key = (FIXED, s)
            src[s] = number(key)
        raw = []                          # (position, kind, external, slot, backward, value)
        self.backwards = []               # (position, roots, retain)
        self.cleared = []                 # leaf keys whose grad a call sets to None
        for e in effects:
            kind, pos = e[0], e[1]
            if kind == "backward":
                raw.append((pos, BACKWARD, -1, -1, len(self.backwards), 0.0))
                self.backwards.append((pos, e[2], e[3]))
            elif kind == "store" and e[3] is not None:
                raw.append((pos, STORE, number(e[3]), e[2], -1, 0.0))
            elif kind == "fill" and e[3] is not None:
                raw.append((pos, FILL, number(e[3]), -1, -1, e[2]))
            elif kind == "clear" and e[2] is not None:
                raw.append((pos, CLEAR, -1, e[3], -1, 0.0))
                self.cleared.append(e[2])
        # externals in order: arguments, captured, then fixed addresses
        order = sorted(range(len(keys)), key=lambda j: (keys[j][0], keys[j][1]
                                                        if keys[j][0] == ARG else 0))
        new = {old: i for i, old in enumerate(order)}
        self.keys = [keys[j] for j in order]
        # a source nothing reads is not loaded (a fill's constant, a cleared leaf's record)
        used = set(P.operands().tolist()) | set(rec.gslot.tolist()) | \
            {s for s, _ in rec.output_slots} | \
            {e[3] for e in raw if e[1] == STORE} | \
            {x for _, rts, _ in self.backwards for r in rts for x in r}
        self.src_ext = np.full(P.nrec, -1, np.int64)
        for s, j in src.items():
            if s in used:
                self.src_ext[s] = new[j]
        raw = [(p, k, new[j] if j >= 0 else -1, s, b, v) for p, k, j, s, b, v in raw]
        self.first_change = min((e[0] for e in raw), default=P.nrec)
        gmax = int(rec.gslot.max()) + 1 if rec.gslot.size else 0
        self.guards_late = gmax > self.first_change   # a branch on a value after a change
        if rec.gslot.size:
            raw.append((min(gmax, self.first_change), GUARDS, -1, -1, -1, 0.0))
        raw.sort(key=lambda e: (e[0], e[1] != GUARDS))
        self.eff = np.array([e[:5] for e in raw], np.int64).reshape(-1, 5)
        self.effv = np.array([e[5] for e in raw], np.float64)
        self.stores = {}                  # external -> in-place changes a call makes
        for e in raw:
            if e[1] in (STORE, FILL):
                self.stores[e[2]] = self.stores.get(e[2], 0) + 1
        self.n_obj = sum(1 for k in self.keys if k[0] in (ARG, CAP))
        self.leaf_key = leaf_key
        self._backward_tables(P, heads)

    def _backward_tables(self, P, heads):
        """Each backward's reach and adjoint places (leaves staged: the call adds them into
        their grads itself), its roots, and the leaves it reaches."""
        from .kernels import prepare
        n, nb = P.nrec, len(self.backwards)
        self.bw_reach = np.zeros((max(nb, 1), n), np.uint8)
        self.bw_off = np.full((max(nb, 1), max(P.nrows, 1)), -1, np.int64)
        self.bw_meta = np.zeros((max(nb, 1), 2), np.int64)
        self.freed = np.zeros(n, np.uint8)        # what eager backwards would have freed
        roots, lv = [], []
        ptrs = P.pointers(P.new_arena())
        rq, rd = P.rec.view(np.int64), P.rec.view(np.float64)
        for b, (pos, rts, retain) in enumerate(self.backwards):
            slots = np.array([s for s, _ in rts], np.int64)
            total = prepare(rq, rd, P.ms, P.md, ptrs, slots, True, False, self.bw_reach[b],
                            self.bw_off[b])
            total = share_adjoints(P, self.bw_reach[b], self.bw_off[b], slots, total)
            self.bw_meta[b] = (total, slots.max())
            roots += [(b, s, seed) for s, seed in rts]
            reached = self.bw_reach[b]
            for r in np.nonzero(reached & ((heads & OPMASK) == LEAF))[0].tolist():
                lv.append((b, r, int(heads[r]) >> SHIFT))
            if not retain:
                self.freed |= ((reached > 0) & (_NEEDS[heads & OPMASK] != 0)).view(np.uint8)
        self.any_freed = bool(self.freed.any())   # (a call's tape copies freed when so)
        self.roots = np.array(roots, np.int64).reshape(-1, 3)
        self.lv = np.array(lv, np.int64).reshape(-1, 3)
        self.work_size = max(int(self.bw_meta[:, 0].max()), 1)
        self.sg_size = P.nrec if nb else 1
        self.n_leaves = int(self.lv[:, 2].max()) + 1 if len(lv) else 1

    def ext_table(self, tensor_of, node_of):
        """(kind, code, size, address) per external: ``tensor_of(key)`` the tensor of an
        argument or captured key at this binding, ``node_of(tensor)`` its leaf node."""
        P = self.P
        out = np.zeros((max(len(self.keys), 1), 4), np.int64)
        for j, key in enumerate(self.keys):
            kind = key[0]
            if kind == FIXED:
                v = P.kept_sources[key[1]]
                out[j] = (1, CODES[v.dtype], v.size, v.ctypes.data)
            elif kind == GRAD:
                leaf = tensor_of(key[1])
                node = node_of(leaf)
                size = leaf.numel()
                addr = node.buf_addr if node.buf is not None else node.addr
                out[j] = (1, CODES[leaf._dtype.np], size, addr)
            else:
                v = tensor_of(key)._v
                out[j] = (0, -1, 1, 0) if type(v) is float else (0, CODES[v.dtype], v.size, 0)
        return out


def _hashable(key):
    kind, what = key
    if kind == CAP:
        return (CAP, id(what))
    if kind == GRAD:
        return (GRAD, _hashable(what))
    return key
