"""What a tensor is, without its methods: the class every tensor instance belongs to.

``face.py`` works on tensors, ``tensor.py`` gives them their methods; modules below both
check ``isinstance(x, TensorBase)``.
"""


class TensorBase:
    """A tensor's data: its value (a Python float for a 0-d floating-point tensor made by
    scalar operations, else a NumPy array it owns or views), dtype, whether it requires
    grad, where it sits on a tape, its grad, its leaf node and its version counter."""
    __slots__ = ("_v", "_dtype", "_rg", "_tape", "_slot", "_grad", "_node", "_ver",
                 "_base", "__weakref__")
    # _base is set on views only (the tensor whose memory they view): read it with
    # getattr(t, "_base", None), so that making any other tensor costs nothing for it
    __array_priority__ = 1000      # ndarray (op) Tensor defers to Tensor's reflected op
