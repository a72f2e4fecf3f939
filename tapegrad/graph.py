"""``grad_fn`` views: backward nodes read off the tape, and the leaves' AccumulateGrad.

A ``Node`` is not kept per operation: ``t.grad_fn`` builds one from the tape and the slot
of ``t``'s record each time it is asked for, so recording stays a list append. Two views
of the same record compare equal.
"""
import weakref

from .drawing import draw, to_dot  # noqa: F401  (tg.graph.draw(out), tg.graph.to_dot(out))
from .layout import SHIFT
from .ops import BY_CODE, CONST, FUNCTION, LINK, LEAF, SUB, node_name


class AccumulateGrad(weakref.ref):
    """The node that accumulates a leaf's gradient into ``leaf.grad``; it also holds where
    that gradient lives (``leaves.attach``: a cell of a page, and a buffer for arrays).
    It is itself the weak reference to its leaf: one object a leaf, not two (a graph of
    50,000 leaves gives the cyclic garbage collector half as much to walk)."""
    __slots__ = ("tape_id", "slot", "hooks", "post_hooks", "page", "cell", "addr", "faddr",
                 "buf", "buf_addr", "rows", "rows_of")
    __eq__ = object.__eq__              # a node is itself, whatever its leaf
    __hash__ = object.__hash__

    def __init__(self, leaf):
        # (weakref.ref.__new__ made the reference; its __init__ only checks the arguments)
        self.tape_id = 0        # the tape this leaf is registered on, and its slot there
        self.slot = -1
        self.hooks = None       # {key: register_hook function}, run before accumulation
        self.post_hooks = None  # {key: register_post_accumulate_grad_hook function}
        self.page = None        # grad storage (leaves.attach)
        self.cell = -1
        self.addr = 0
        self.faddr = 0.0        # addr as a float: a LEAF record's second number (packed
        #                          with no int -> double conversion on each new tape)
        self.buf = None
        self.buf_addr = 0
        self.rows = None        # its record's metadata rows, for value rows_of
        self.rows_of = None

    @property
    def variable(self):
        return self()

    def name(self):
        return "AccumulateGrad"

    @property
    def next_functions(self):
        return ()

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


class Node:
    """The backward node of the record at ``slot`` on ``tape``."""
    __slots__ = ("_tape", "_slot")

    def __init__(self, tape, slot):
        self._tape = tape
        self._slot = slot

    @property
    def _key(self):
        return (self._tape.id, self._slot)

    def _op(self):
        return self._tape.op_of(self._slot)

    def name(self):
        _, _, const_first = self._tape.operands(self._slot)
        return node_name(self._op(), const_first)

    @property
    def next_functions(self):
        tape, op = self._tape, self._op()
        row = BY_CODE[op]
        if row.arity < 0:              # cat/stack: a list of inputs
            return tuple(_edge(tape, s) for s in tape.multi[self._slot])
        a, b, const_first = tape.operands(self._slot)
        if op == SUB and const_first:  # 2 - x lists only x, as PyTorch's RsubBackward1
            return (_edge(tape, b),)
        slots = [a, b] if row.arity == 2 else [a]
        return tuple(_edge(tape, s) for s in slots)

    def __eq__(self, other):
        return isinstance(other, Node) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"<{class_name(self)} object at {id(self):#x}>"


def class_name(node):
    """The name PyTorch prints for a node (its class's): CopySlices for the node whose
    name() is torch::autograd::CopySlices."""
    return node.name().rpartition("::")[2]


def _edge(tape, slot):
    """The (node, output number) an operand slot's gradient flows into ((None, 0) for
    constants): a link stands for what it links to, and the outputs of a custom
    autograd.Function are its node's outputs 0, 1, ... (autograd/function.py)."""
    if slot < 0:
        return None, 0
    op = tape.op_of(slot)
    if op == LEAF:
        return tape.leaf_nodes[tape.head(slot) >> SHIFT], 0
    if op == FUNCTION:
        return tape.functions[slot]
    if op == LINK:
        node = tape.links.get(slot)
        return (None, 0) if node is None else _edge(node._tape, node._slot)
    if op == CONST:
        return None, 0
    return _typed(Node(tape, slot)), 0


_NODE_CLASSES = {}


def _typed(node):
    """``node`` as an instance of a Node subclass with PyTorch's class name for it, as
    PyTorch's nodes are (``type(y.grad_fn).__name__`` is ``SumBackward0``: torchviz and
    other graph walkers read it). The subclass adds no slots, so the class can change."""
    name = class_name(node)
    cls = _NODE_CLASSES.get(name)
    if cls is None:
        cls = _NODE_CLASSES[name] = type(name, (Node,), {"__slots__": (), "__module__":
                                                          "builtins"})
    node.__class__ = cls
    return node
