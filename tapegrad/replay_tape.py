"""The tape of one replayed call: the recording's records over this call's values.

The engine sweeps it as any tape (``backward()``, ``autograd.grad``, hooks on its
results), reading values through ``ptrs`` (``Tape.ptrs``: this call's arena) rather than
from kept arrays. Its leaves are the call's: a leaf record's grad cell, an array leaf's
grad buffer and ``leaf_nodes`` are those of the tensors the call was given.
"""
import numpy as np

from .layout import RECORD_SIZE, SIZE
from .tape import Tape


class ArenaArrays:
    """``tape.objs`` of a replay: entry i is the array at ``ptrs[i]`` (a row's value, or an
    int list), made when asked for (only large products and error messages ask); entries
    from ``nptrs`` on are the inputs whose versions a backward checks."""
    __slots__ = ("program", "arena", "shown")

    def __init__(self, program, arena, shown=()):
        self.program = program
        self.arena = arena
        self.shown = shown

    def __len__(self):
        return self.program.nptrs + len(self.shown)

    def __getitem__(self, i):
        p = self.program
        if i >= p.nptrs:
            return self.shown[i - p.nptrs]
        if i < p.nrows:
            o = p.voff[i]
            return self.arena[o:o + p.ms[i, SIZE]]
        return p.ints_of(self.arena, i - p.nrows)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class ReplayTape(Tape):
    """One replayed call's tape (see the module docstring)."""
    __slots__ = ("arena",)

    def __init__(self, program, binding, rec, arena, ptrs, links, saved=(), shown=(),
                 epoch=-1):
        super().__init__()
        self.rec = rec
        self.n = len(rec) // RECORD_SIZE
        self.static = program.static
        self.dyn = binding.dyn
        self.rows = program.nrows
        self.arena = arena
        self.objs = ArenaArrays(program, arena, shown)
        self.ptrs = ptrs
        self.leaf_nodes = binding.leaf_nodes
        self.links = links
        self.multi = program.multi
        self.big = bool(program.big)
        self.full = program.full
        # swept in the element type of its values (0: nothing to sweep)
        self.dtypes = (1 if program.dtype == np.float32 else 2) if program.dtypes else 0
        self.saved = saved
        self.epoch = epoch            # the in-place count at the call (see engine._check)

    def drop_values(self):
        """The values stay with the tape (its arena): a later backward may still read an
        int list before it finds what was freed."""
        self.saved = []
