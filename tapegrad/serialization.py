"""``tg.save(obj, f)`` and ``tg.load(f, weights_only=True)``: tensors and state dicts on disk.

The format holds data, never code. A file is a zip archive (as NumPy's ``.npz``) of

- ``tapegrad.json``: the index, plain JSON: the saved object as a tree, the tensors (storage,
  offset, shape, stride, ``requires_grad``) and the storages;
- ``data/<k>.npy``: storage ``k``, a NumPy array in ``.npy`` format (``allow_pickle=False``).

so ``np.load("model.tg")["data/0"]`` or any zip and JSON reader can open one without
tapegrad. Tensors that view one memory (a tensor and its views) are saved as views of one
storage, as PyTorch saves them, and load sharing memory and version counter again.

What a file can hold is what ``tg.save`` writes: tensors, ``None``, bools, ints, floats,
strings, and lists, tuples, dicts and OrderedDicts of them (which covers ``state_dict()``s of
modules and optimizers), plus ``tg.Size`` and dtypes. Loading never unpickles: a pickle,
including one inside a ``.npy`` (an object array), is refused with PyTorch's
``UnpicklingError`` "Weights only load failed", so a file crafted to run code on load cannot.
``weights_only=False`` loads the same (the format has nothing more to allow) and still refuses
pickles: tapegrad has no way to load one without running the code it names.
"""
import io
import json
import math
import os
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from . import dtypes as D
from .base import TensorBase as Tensor
from .face import _cell, _new
from .shapes import Size

FORMAT = "tapegrad.save"
VERSION = 1
INDEX = "tapegrad.json"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")     # a local file header, an empty archive
_EPOCH = (1980, 1, 1, 0, 0, 0)                    # fixed zip dates: same object, same bytes
_SUPPORTED = ("tensors, and None, bools, ints, floats, strings, and lists, tuples, dicts and "
              "OrderedDicts of them")

WEIGHTS_ONLY_FAILED = (
    "Weights only load failed. tg.load reads only what tg.save writes: NumPy "
    "arrays and a JSON index, no code. {what} Loading a pickle can result in arbitrary code "
    "execution, so tapegrad never unpickles, whatever weights_only says; do it yourself with "
    "pickle only if you got the file from a trusted source.")


# ----- saving ------------------------------------------------------------------------------
def save(obj, f):
    """Saves ``obj`` (tensors, and dicts, lists and tuples of tensors, numbers, strings, None
    and bools, such as a ``state_dict()``) to ``f``, a path or a binary file object."""
    index, arrays = _Encoder().encode(obj)       # a type error raises before f is touched
    payload = json.dumps(index, allow_nan=False, separators=(",", ":")).encode()
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fp:
            _write(fp, payload, arrays)
    else:
        if not hasattr(f, "write") or isinstance(f, io.TextIOBase):
            raise TypeError("tg.save: f must be a path or a binary file object (opened 'wb'), "
                            f"not {type(f).__name__}")
        _write(f, payload, arrays)


def _write(fp, payload, arrays):
    with zipfile.ZipFile(fp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(zipfile.ZipInfo(INDEX, _EPOCH), payload)
        for k, a in enumerate(arrays):
            with zf.open(zipfile.ZipInfo(f"data/{k}.npy", _EPOCH), "w", force_zip64=True) as out:
                np.lib.format.write_array(out, a, allow_pickle=False)


def _memory(a):
    """(root, flat): the array that owns ``a``'s memory and its elements in memory order, or
    (None, None) when that memory is not one contiguous array of ``a``'s dtype."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root.dtype != a.dtype or not (root.flags.c_contiguous or root.flags.f_contiguous):
        return None, None
    return root, root.ravel(order="K")           # a view: contiguous in memory order


class _Encoder:
    """The index (a JSON tree) and the storage arrays of one saved object."""

    def __init__(self):
        self.tensors = []        # index entries
        self.by_id = {}          # id(tensor) -> its number: one tensor saved twice loads once
        self.storages = []       # [array to write, dtype]
        self.by_root = {}        # id(root array) -> (storage number, flat memory)
        self.path = set()        # ids of the containers being encoded (cycles)
        self.keep = []           # what by_id and by_root name stays alive while encoding

    def encode(self, obj):
        tree = self.node(obj)
        storages = [{"file": f"data/{k}.npy", "dtype": dt.name, "numel": int(a.size)}
                    for k, (a, dt) in enumerate(self.storages)]
        index = {"format": FORMAT, "version": VERSION, "object": tree,
                 "tensors": self.tensors, "storages": storages}
        return index, [a for a, _ in self.storages]

    def node(self, x):
        t = type(x)
        if x is None or t is bool or t is str or t is int:
            return x
        if t is float:
            return x if math.isfinite(x) else {"float": repr(x)}      # 'nan', 'inf', '-inf'
        if isinstance(x, Tensor):
            return {"tensor": self.tensor(x)}
        if t is Size:
            return {"Size": [int(n) for n in x]}
        if t is D.dtype:
            return {"dtype": x.name}
        if t in (list, tuple, dict, OrderedDict):
            if id(x) in self.path:
                raise ValueError("tg.save: cannot save a container that contains itself")
            self.path.add(id(x))
            try:
                if t is list:
                    return [self.node(v) for v in x]
                if t is tuple:
                    return {"tuple": [self.node(v) for v in x]}
                items = [[self.key(k), self.node(v)] for k, v in x.items()]
                if t is dict:
                    return {"dict": items}
                out = {"OrderedDict": items}
                if getattr(x, "_metadata", None) is not None:   # a module state_dict's versions
                    out["_metadata"] = self.node(x._metadata)
                return out
            finally:
                self.path.discard(id(x))
        raise TypeError(f"tg.save: cannot save an object of type {t.__module__}.{t.__qualname__} "
                        f"(tapegrad saves {_SUPPORTED})")

    def key(self, k):
        if isinstance(k, Tensor) or type(k) in (list, dict, OrderedDict):
            raise TypeError(f"tg.save: cannot save a dict key of type {type(k).__name__}")
        return self.node(k)

    def tensor(self, t):
        if id(t) in self.by_id:
            return self.by_id[id(t)]
        self.keep.append(t)
        a = t.detach().numpy()           # the tensor's own array (a new 0-d one for a float)
        storage, offset, stride = self.place(a, t.dtype)
        entry = {"storage": storage, "offset": offset, "shape": list(a.shape),
                 "stride": stride, "requires_grad": bool(t.requires_grad)}
        if type(t) is not Tensor and type(t).__name__ == "Parameter":
            entry["parameter"] = True    # tapegrad.nn.Parameter: loads as one
        self.by_id[id(t)] = len(self.tensors)
        self.tensors.append(entry)
        return self.by_id[id(t)]

    def place(self, a, dt):
        """(storage number, offset, strides) of array ``a``, in elements of its storage."""
        item = a.itemsize
        root, flat = _memory(a) if a.size else (None, None)
        if root is not None:
            off, rem = divmod(a.ctypes.data - flat.ctypes.data, item)
            stride = [s // item for s in a.strides]
            last = off + sum(s * (n - 1) for s, n in zip(stride, a.shape) if s > 0)
            first = off + sum(s * (n - 1) for s, n in zip(stride, a.shape) if s < 0)
            if rem or any(s % item for s in a.strides) or first < 0 or last >= flat.size:
                root = None              # not a plain view of its root: saved on its own
        if root is None:
            own = np.ascontiguousarray(a)
            self.storages.append([own, dt])
            return len(self.storages) - 1, 0, [s // item for s in own.strides]
        if id(root) not in self.by_root:
            self.keep.append(root)
            # written with its shape when that is its memory order (readable as it is)
            self.by_root[id(root)] = len(self.storages)
            self.storages.append([root if root.flags.c_contiguous else flat, dt])
        return self.by_root[id(root)], int(off), stride


# ----- loading -----------------------------------------------------------------------------
def load(f, map_location=None, *, weights_only=True):
    """Loads what ``tg.save`` wrote to ``f`` (a path or a binary file object).

    Only data is read, never code: a pickle is refused with ``UnpicklingError`` ("Weights only
    load failed"), with ``weights_only=True`` (the default, as PyTorch's since 2.6) and with
    ``weights_only=False`` alike. ``map_location`` may be None or "cpu" (tapegrad's only device).
    """
    if map_location not in (None, "cpu"):
        raise ValueError(f"tg.load: map_location={map_location!r}: tapegrad has only the 'cpu' "
                         "device")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fp:
            return _load(fp)
    if not hasattr(f, "read") or isinstance(f, io.TextIOBase):
        raise TypeError("tg.load: f must be a path or a binary file object (opened 'rb'), "
                        f"not {type(f).__name__}")
    if not (hasattr(f, "seekable") and f.seekable()):
        f = io.BytesIO(f.read())         # zip archives are read from their end
    return _load(f)


class _Corrupt(Exception):
    """A file that is not what its index says (reported as RuntimeError by ``_load``)."""


def _load(fp):
    start = fp.tell()
    head = fp.read(4)
    fp.seek(start)
    if not isinstance(head, bytes):
        raise TypeError("tg.load: f must be opened in binary mode ('rb')")
    if not head:
        raise RuntimeError("tg.load: the file is empty (truncated, or not written by tg.save)")
    if len(head) < 4 and any(m.startswith(head) for m in _ZIP_MAGIC):
        raise RuntimeError(f"tg.load: failed reading zip archive: the file ends after "
                           f"{len(head)} bytes (it is truncated)")
    if head not in _ZIP_MAGIC:
        if _is_pickle(fp):
            raise pickle.UnpicklingError(WEIGHTS_ONLY_FAILED.format(what="This file is a pickle."))
        raise RuntimeError("tg.load: not a file written by tg.save (neither a zip archive nor a "
                           "pickle: it starts with " + repr(head) + ")")
    try:
        with zipfile.ZipFile(fp) as zf:
            names = set(zf.namelist())
            if INDEX not in names:
                raise RuntimeError(_not_ours(names))
            index = _read_index(zf)
            return _Decoder(zf, index).decode()
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"tg.load: failed reading zip archive: {e} (the file is truncated "
                           "or corrupt)") from None
    except (_Corrupt, zlib.error, EOFError, ValueError, KeyError, TypeError, IndexError,
            struct.error, UnicodeDecodeError, RecursionError, OverflowError) as e:
        detail = str(e) or type(e).__name__
        raise RuntimeError(f"tg.load: the file is corrupt: {detail}") from None


def _not_ours(names):
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return ("tg.load: this file was written by torch.save (a zip archive around a pickle, "
                "data.pkl), not by tg.save; tapegrad does not read it. Load it with "
                "torch.load(f, weights_only=True) and convert each tensor with "
                "tg.tensor(t.numpy()), or save it again with tg.save.")
    return (f"tg.load: not a file written by tg.save (a zip archive without {INDEX}: "
            f"{sorted(names)[:5]})")


def _is_pickle(fp):
    """True when ``fp`` holds a complete pickle stream (parsed by pickletools, never run)."""
    try:
        for op, _, _ in pickletools.genops(fp):
            if op.name == "STOP":
                return True
    except Exception:      # noqa: BLE001  anything pickletools cannot parse is not a pickle
        return False
    return False


def _read_member(zf, name):
    try:
        return zf.read(name)
    except KeyError:
        raise _Corrupt(f"{name} is missing") from None


def _read_index(zf):
    try:
        return json.loads(_read_member(zf, INDEX).decode("utf-8"))
    except (ValueError, RecursionError) as e:     # bad UTF-8 or JSON, absurd nesting
        raise _Corrupt(f"{INDEX} is not valid JSON ({type(e).__name__}: {e})") from None


def _refuse(what):
    return pickle.UnpicklingError(WEIGHTS_ONLY_FAILED.format(what=what))


def _int(v, what, low=0):
    if type(v) is not int or v < low:
        raise _Corrupt(f"{what} is {v!r}, not an integer >= {low}")
    return v


class _Decoder:
    def __init__(self, zf, index):
        if type(index) is not dict or index.get("format") != FORMAT:
            raise _Corrupt(f"{INDEX} is not a tg.save index")
        if _int(index.get("version"), "the format version") > VERSION:
            raise RuntimeError(f"tg.load: the file has format version {index['version']}; this "
                               f"tapegrad reads version {VERSION} (upgrade tapegrad)")
        self.zf = zf
        self.index = index
        self.storages = {}       # number -> flat array, read when a tensor needs it
        self.tensors = {}        # number -> Tensor
        self.versions = {}       # storage number -> version counter shared by its tensors

    def decode(self):
        return self.node(self.index["object"])

    def node(self, x):
        t = type(x)
        if x is None or t in (bool, str, int, float):
            return x
        if t is list:
            return [self.node(v) for v in x]
        if t is not dict or not x:
            raise _Corrupt(f"unexpected {x!r} in the index")
        tag = next(iter(x))
        body = x[tag]
        if len(x) != 1 and not (tag == "OrderedDict" and set(x) == {"OrderedDict", "_metadata"}):
            raise _refuse(f"Unsupported entry with keys {sorted(x)} in the index.")
        if tag == "tensor":
            return self.tensor(_int(body, "a tensor number"))
        if tag == "float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "tuple" and type(body) is list:
            return tuple(self.node(v) for v in body)
        if tag in ("dict", "OrderedDict") and type(body) is list:
            out = (dict if tag == "dict" else OrderedDict)(self.items(body))
            if "_metadata" in x:
                out._metadata = self.node(x["_metadata"])
            return out
        if tag == "Size" and type(body) is list:
            return Size(_int(n, "a size") for n in body)
        if tag == "dtype":
            return self.dtype(body)
        raise _refuse(f"Unsupported type {tag!r} in the index (tapegrad loads {_SUPPORTED}).")

    def items(self, pairs):
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise _Corrupt(f"a dict item is {pair!r}")
            yield self.node(pair[0]), self.node(pair[1])

    @staticmethod
    def dtype(name):
        for d in D.ALL:
            if d.name == name:
                return d
        raise _Corrupt(f"unknown dtype {name!r}")

    def tensor(self, k):
        if k in self.tensors:
            return self.tensors[k]
        entries = self.index["tensors"]
        if type(entries) is not list or k >= len(entries) or type(entries[k]) is not dict:
            raise _Corrupt(f"tensor {k} is not in the index")
        e = entries[k]
        s = _int(e["storage"], "a storage number")
        flat, dt = self.storage(s)
        shape = [_int(n, "a size") for n in e["shape"]]
        stride = [_int(n, "a stride", low=-flat.size) for n in e["stride"]]
        offset = _int(e["offset"], "an offset")
        if len(stride) != len(shape):
            raise _Corrupt(f"tensor {k}: shape {shape} and stride {stride} differ in length")
        if math.prod(shape):      # every element it reaches lies in its storage
            first = offset + sum(st * (n - 1) for st, n in zip(stride, shape) if st < 0)
            last = offset + sum(st * (n - 1) for st, n in zip(stride, shape) if st > 0)
            if first < 0 or last >= flat.size:
                raise _Corrupt(f"tensor {k} reaches outside its storage of {flat.size} elements")
            a = np.ndarray(shape, dt.np, buffer=flat, offset=offset * dt.itemsize,
                           strides=[st * dt.itemsize for st in stride])
        else:
            a = np.empty(shape, dt.np)
        rg = e["requires_grad"]
        if type(rg) is not bool or (rg and not dt.is_floating_point):
            raise _Corrupt(f"tensor {k}: requires_grad={rg!r} for dtype {dt.name}")
        t = _new(a, dt)
        t._ver = self.versions.setdefault(s, _cell(t))   # views of one storage: one counter
        t.requires_grad_(rg)
        if e.get("parameter") is True:
            t = _parameter(t, rg)
        self.tensors[k] = t
        return t

    def storage(self, s):
        """(flat array, dtype) of storage ``s``, read from its ``.npy`` on first use."""
        if s not in self.storages:
            entries = self.index["storages"]
            if type(entries) is not list or s >= len(entries) or type(entries[s]) is not dict:
                raise _Corrupt(f"storage {s} is not in the index")
            e = entries[s]
            dt = self.dtype(e["dtype"])
            self.storages[s] = _read_npy(self.zf, e["file"], dt,
                                         _int(e["numel"], "a storage size")), dt
        return self.storages[s]


def _read_npy(zf, name, dt, numel):
    """The array of member ``name`` (a ``.npy`` of ``numel`` elements of dtype ``dt``), flat.
    The header is checked before anything is allocated; object arrays (pickles) are refused."""
    try:
        size = zf.getinfo(name).file_size
    except (KeyError, TypeError):
        raise _Corrupt(f"storage file {name!r} is missing") from None
    with zf.open(name) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise _Corrupt(f"{name}: .npy format version {version} is not supported")
        if dtype.hasobject:
            raise _refuse(f"{name} holds Python objects (a pickle inside the .npy).")
        if dtype.newbyteorder("=") != dt.np or fortran:
            raise _Corrupt(f"{name} holds {dtype}{' (Fortran order)' if fortran else ''}, not "
                           f"{dt.name}")
        if math.prod(shape) != numel or size - fp.tell() != numel * dtype.itemsize:
            raise _Corrupt(f"{name} holds {size - fp.tell()} bytes of data for shape "
                           f"{list(shape)}; the index says {numel} elements of {dt.name} "
                           "(truncated?)")
        a = np.empty(numel, dtype)
        view = memoryview(a.view(np.uint8))
        done = 0
        while done < a.nbytes:
            n = fp.readinto(view[done:])
            if not n:
                raise _Corrupt(f"{name} ends after {done} of {a.nbytes} bytes")
            done += n
    return a if dtype == dt.np else a.astype(dt.np)


def _parameter(t, requires_grad):
    """``t`` as a ``tapegrad.nn.Parameter`` when tapegrad has that class (else as it is)."""
    from . import nn
    cls = getattr(nn, "Parameter", None)
    return t if cls is None else cls(t, requires_grad=requires_grad)
