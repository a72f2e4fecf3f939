"""tapegrad's dtypes (``tg.float32`` ...) and PyTorch's type-promotion rules."""
import numpy as np


class dtype:
    """A tensor element type, printed as ``tapegrad.float32``."""
    __slots__ = ("name", "np", "is_floating_point", "category", "itemsize")

    def __init__(self, name, np_type, category):
        self.name = name
        self.np = np.dtype(np_type)
        self.category = category            # 0 bool, 1 integer, 2 floating point
        self.is_floating_point = category == 2
        self.itemsize = self.np.itemsize

    def __repr__(self):
        return "tapegrad." + self.name

    def __reduce__(self):
        return (_by_name, (self.name,))


float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
int64 = dtype("int64", np.int64, 1)
int32 = dtype("int32", np.int32, 1)
int16 = dtype("int16", np.int16, 1)
int8 = dtype("int8", np.int8, 1)
uint8 = dtype("uint8", np.uint8, 1)
bool_ = dtype("bool", np.bool_, 0)

ALL = (float32, float64, int64, int32, int16, int8, uint8, bool_)
_BY_NP = {d.np: d for d in ALL}
DEFAULT_FLOAT = float32


# PyTorch's names of each dtype in its messages: the ScalarType ("Float", as in "Got: Long"),
# the C++ type ("float", as in "with dtype 'long int'") and the legacy tensor type
# ("FloatTensor", read "tapegrad.FloatTensor" in tapegrad's messages).
_SCALAR_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                 "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
_CPP_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
              "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
              "bool": "bool"}


def scalar_name(d):
    """PyTorch's ScalarType name of dtype ``d``: "Float", "Long" ..."""
    return _SCALAR_NAMES[d.name]


def cpp_name(d):
    """PyTorch's C++ type name of dtype ``d``: "float", "long int" ..."""
    return _CPP_NAMES[d.name]


def tensor_type(d):
    """The legacy tensor type name of dtype ``d``: "tapegrad.FloatTensor" ..."""
    return f"tapegrad.{_SCALAR_NAMES[d.name]}Tensor"


def _by_name(name):
    return next(d for d in ALL if d.name == name)


def from_numpy(np_dtype):
    """The tapegrad dtype of a NumPy dtype (TypeError for the ones tapegrad has not)."""
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        nd = np.dtype(np_dtype)
        # PyTorch names the non-numeric kinds by their NumPy type: numpy.str_, numpy.object_
        name = f"numpy.{nd.type.__name__}" if nd.kind in "OSUVMm" else str(nd)
        raise TypeError(f"can't convert np.ndarray of type {name}. The only "
                        "supported types are: float64, float32, int64, int32, int16, int8, "
                        "uint8, and bool.") from None


def as_dtype(d):
    """Accepts a tapegrad dtype, a NumPy dtype or a Python type."""
    if d is None or isinstance(d, dtype):
        return d
    if d is float:
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    return from_numpy(d)


def promote(a, b):
    """The wider of two dtypes (bool < integers < floating point, then by size)."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    return a if a.itemsize >= b.itemsize else b


def number_category(x):
    if isinstance(x, (bool, np.bool_)):
        return 0
    return 1 if isinstance(x, (int, np.integer)) else 2


def result_dtype(dim_dtypes, zero_dim_dtypes, number_categories):
    """PyTorch's result type: tensors with dimensions first, then 0-d tensors, then Python
    numbers, each group counting only when it is of a higher category than the ones before."""
    r = None
    for d in dim_dtypes:
        r = d if r is None else promote(r, d)
    z = None
    for d in zero_dim_dtypes:
        z = d if z is None else promote(z, d)
    if z is not None and (r is None or z.category > r.category):
        r = z
    for c in number_categories:
        if r is None or c > r.category:
            r = DEFAULT_FLOAT if c == 2 else (int64 if c == 1 else bool_)
    return r
