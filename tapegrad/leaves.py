"""Where leaf gradients live: storage the jitted sweep accumulates into directly.

Every leaf that requires grad gets, when it is first recorded, a 16-byte cell in a page of
cells: a state byte (``HAS_GRAD``: the grad holds a value; ``DEFERRED``: the engine, not
the sweep, accumulates it, for leaves with hooks or a grad the user assigned) and, for a
0-d leaf, the grad itself. An array leaf's grad is a buffer of its own, allocated once.
Its record on the tape carries the cell's address (and the buffer's), so a backward adds
into ``.grad`` with no Python per leaf; ``x.grad`` is a view of the cell or buffer, made
when first read, and the same object across backwards.

A page is reused once nothing refers to it: no node (a leaf's AccumulateGrad holds its
page, a tape holds the nodes it recorded) and no view of its cells (a grad tensor).
"""
import sys
import threading

import numpy as np

from .layout import CELL, DEFERRED, HAS_GRAD, STATE_OFFSET

PAGE_CELLS = 1024


class Page:
    """PAGE_CELLS cells of CELL bytes: grads (float64 or float32 at +0), states at +8."""
    __slots__ = ("raw", "f64", "f32", "state", "addr", "next")

    def __init__(self):
        self.raw = np.zeros(PAGE_CELLS * CELL, np.uint8)
        self.f64 = self.raw.view(np.float64)[0::CELL // 8]
        self.f32 = self.raw.view(np.float32)[0::CELL // 4]
        self.state = self.raw[STATE_OFFSET::CELL]
        self.addr = self.raw.ctypes.data
        self.next = 0


class _Pool:
    def __init__(self):
        self.pages = []
        self.current = None

    def cell(self):
        """A fresh zeroed cell: (page, index)."""
        p = self.current
        if p is None or p.next == PAGE_CELLS:
            p = self.current = self._page()
        i = p.next
        p.next = i + 1
        return p, i

    def _page(self):
        for p in self.pages:
            # free: only the list and this loop hold the page (no node), and only its own
            # three views hold its bytes (no grad tensor)
            if p is not self.current and sys.getrefcount(p) == 3 and \
                    sys.getrefcount(p.raw) == 5:
                p.raw[:] = 0
                p.next = 0
                return p
        p = Page()
        self.pages.append(p)
        return p


_POOL = _Pool()


_FIRST_USE = threading.Lock()


def attach(node, shape, np_dtype):
    """Gives a leaf's node its grad storage (once per leaf, under a lock: two threads
    recording a leaf's first use at once share one storage, where a second one would free
    the first under the other thread's tape, which then writes into freed memory)."""
    with _FIRST_USE:
        if node.page is not None:           # another thread's first use came first
            return
        page, cell = _POOL.cell()
        node.cell, node.addr = cell, page.addr + cell * CELL
        node.faddr = float(node.addr)
        if shape is not None:               # an array leaf (0-d too): a buffer; a Python
            node.buf = np.zeros(shape, np_dtype)    # float's (shape None): the cell alone
            node.buf_addr = node.buf.ctypes.data
        node.page = page                    # last: a node with a page is complete


def leaf_node(t):
    """t's AccumulateGrad node, made once: two threads recording t's first use at once
    would each make one, and one thread's grads would go to a node t no longer has."""
    with _FIRST_USE:
        node = t._node
        if node is None:
            from .graph import AccumulateGrad
            node = t._node = AccumulateGrad(t)
        return node


def has_grad(node):
    return node.page.state[node.cell] & HAS_GRAD


def grad_array(node, shape, np_dtype):
    """The NumPy view of a leaf's grad storage (shape ``shape``)."""
    if node.buf is not None:
        return node.buf
    p, i = node.page, node.cell
    return (p.f32 if np_dtype == np.float32 else p.f64)[i:i + 1].reshape(())


def clear(node):
    """``x.grad = None``: the storage is zeroed for the next backward to fill."""
    p, i = node.page, node.cell
    p.state[i] &= ~HAS_GRAD & 0xFF
    if node.buf is not None:
        node.buf.fill(0)
    else:
        p.f64[i] = 0.0


def mark(node):
    """The storage now holds the grad (a user's grad was copied in)."""
    node.page.state[node.cell] |= HAS_GRAD


def set_deferred(node, on):
    """Whether the engine (hooks, a user-assigned grad) accumulates this leaf's grad."""
    p, i = node.page, node.cell
    if on:
        p.state[i] |= DEFERRED
    else:
        p.state[i] &= ~DEFERRED & 0xFF
