"""A replayed call's many tables in one buffer: Numba's dispatch costs about 80 ns per
array argument, and a call reads some twenty tables. ``packed`` copies them into one int64
buffer after a header of (offset, rows, cols) per table (a 1-d table: rows = its length,
cols = 1) and gives back views of them there, so Python keeps using the tables as before;
``replay_step_kernels`` finds them again by number (layout.py ``T_*``, ``S_*``)."""
import numpy as np

_I64 = np.dtype(np.int64)


class Layout:
    """Where tables of these dtypes and shapes sit in a packed buffer."""

    def __init__(self, specs):
        self.specs = [(np.dtype(dt), tuple(shape)) for dt, shape in specs]
        k = len(self.specs)
        self.header = np.empty(3 * k, np.int64)
        self.spans = []
        at = 3 * k
        for i, (dt, shape) in enumerate(self.specs):
            n = int(np.prod(shape, dtype=np.int64))
            words = (n * dt.itemsize + 7) // 8
            rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (n, 1)
            self.header[3 * i:3 * i + 3] = at, rows, cols
            self.spans.append((at, words, n))
            at += words
        self.size = at

    def new(self, zero=False):
        """A buffer of this layout, its header written (values uninitialised unless zero)."""
        buf = (np.zeros if zero else np.empty)(self.size, np.int64)
        buf[:len(self.header)] = self.header
        return buf

    def views(self, buf, count=None):
        """The tables of ``buf`` (the first ``count`` of them) as arrays of their dtypes and
        shapes (views, not copies; an int64 row is a plain slice of the buffer)."""
        out = []
        for (at, words, n), (dt, shape) in zip(self.spans[:count], self.specs):
            v = buf[at:at + words]
            if dt is not _I64:
                v = v.view(dt)[:n]
            out.append(v if len(shape) == 1 else v.reshape(shape))
        return out


def packed(arrays):
    """(layout, buffer, views): one buffer holding copies of ``arrays`` (1-d or 2-d; int64,
    float64 or uint8), its layout, and views of the copies in it."""
    layout = Layout([(a.dtype, a.shape) for a in arrays])
    buf = layout.new(zero=True)
    views = layout.views(buf)
    for v, a in zip(views, arrays):
        v[...] = a
    return layout, buf, views
