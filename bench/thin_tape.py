"""A reference, not a library: the thinnest eager tape that trains the walkthrough's network.

Each op makes one object (its value, computed by NumPy) and appends one tuple to a list;
``backward`` walks the list from the end in Python, one NumPy expression per gradient,
and adds leaf gradients ``out=`` into persistent ``.grad`` arrays. It knows only the six
ops of the walkthrough and none of what a library owes its users: no dtype rules, shape
errors, version counters, hooks, grad mode, threads or tg.compile. ``walkthrough_parts.py``
times it next to tapegrad and NumPy, as the cost of a tape with the least machinery on
the machine the bench runs on.
"""
import numpy as np

_new = object.__new__
MM, ADD, CLAMP, SUB, SQUARE, SUM = range(6)


class Thin:
    __slots__ = ("v", "grad", "rg", "adj")
    tape = []                   # (op, a, b, out) of every op since the last backward

    def _out(self, op, b, v):
        out = _new(Thin)
        out.v, out.grad, out.rg = v, None, True
        Thin.tape.append((op, self, b, out))
        return out

    def mm(self, o):
        return self._out(MM, o, self.v @ o.v)

    def add(self, o):
        return self._out(ADD, o, self.v + o.v)

    def clamp(self, min):  # noqa: A002 (PyTorch's name)
        return self._out(CLAMP, None, np.maximum(self.v, min))

    def __sub__(self, o):
        return self._out(SUB, o, self.v - o.v)

    def pow(self, c):
        assert c == 2
        return self._out(SQUARE, None, np.square(self.v))

    def sum(self):
        return self._out(SUM, None, np.add.reduce(self.v, None))

    def __rmul__(self, c):          # lr * w.grad, outside the graph
        out = _new(Thin)
        out.v, out.grad, out.rg = self.v * c, None, False
        return out

    def sub_(self, o):
        np.subtract(self.v, o.v, out=self.v)

    def zero_(self):
        self.v.fill(0.0)

    def backward(self):
        tape, Thin.tape = Thin.tape, []
        self.adj = np.ones((), self.v.dtype)
        for op, a, b, out in reversed(tape):
            g = out.adj
            if op == MM:
                _acc(a, g @ b.v.T)
                _acc(b, a.v.T @ g)
            elif op == ADD:                                 # b broadcast over rows
                _acc(a, g)
                _acc(b, g.sum(0, keepdims=True) if b.v.shape != g.shape else g)
            elif op == CLAMP:                               # d/dx max(x, 0) = [x >= 0]
                _acc(a, g * (a.v >= 0))
            elif op == SUB:
                _acc(a, g)
            elif op == SQUARE:                              # d/dx x^2 = 2x
                _acc(a, 2.0 * a.v * g)
            else:                                           # d/dx sum(x) = 1
                _acc(a, np.full(a.v.shape, g, a.v.dtype))


def _acc(t, g):
    if not t.rg:
        return
    if t.grad is not None:                                  # a leaf: into its .grad
        np.add(t.grad.v, g, out=t.grad.v)
    else:
        t.adj = g


def leaf(a):
    t, grad = _new(Thin), _new(Thin)
    grad.v, grad.grad, grad.rg = np.zeros_like(a), None, False
    t.v, t.grad, t.rg = a.copy(), grad, True
    return t


def const(a):
    t = _new(Thin)
    t.v, t.grad, t.rg = a, None, False
    return t
