"""``tg.save`` / ``tg.load``: round trips, shared storage, the safety default, bad files.

Round trips keep type, dtype, shape, values, ``requires_grad`` and shared memory; what
PyTorch's ``torch.save``/``torch.load(weights_only=True)`` gives for the same object is the
reference where it is installed. Loading never runs code: pickles (at every protocol, alone or
inside a ``.npy``) are refused with PyTorch's ``UnpicklingError`` "Weights only load failed",
and the marker file their payload would write stays absent. Truncated and corrupt files,
``torch.save`` files and other strangers give one clear ``RuntimeError``, not a zipfile or
JSON traceback.
"""
import io
import json
import math
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

from conftest import still_works

pytestmark = pytest.mark.usefixtures("isolated")


def roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    tg.save(obj, buf)
    buf.seek(0)
    return tg.load(buf, **load_kwargs)


def _values(t):
    return t.detach().numpy()


def assert_same(got, want):
    """Equal in type and value, all the way down; tensors equal in class, dtype, shape,
    requires_grad and values (NaN equal to NaN), and loaded as leaves."""
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, tg.Tensor):
        assert got.dtype is want.dtype and got.shape == want.shape
        assert got.requires_grad == want.requires_grad and got.is_leaf
        np.testing.assert_array_equal(_values(got), _values(want))
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, dict):
        assert list(got) == list(want)              # keys, in order
        for k in want:
            assert type(k) is type(next(g for g in got if g == k))
            assert_same(got[k], want[k])
        assert_same(getattr(got, "_metadata", None), getattr(want, "_metadata", None))
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want
        if isinstance(want, float):
            assert math.copysign(1, got) == math.copysign(1, want)     # -0.0 stays -0.0


# ----- round trips -------------------------------------------------------------------------
TENSORS = {
    "float32": lambda: tg.tensor([[1.5, -2.0, 3.25]]),
    "float64": lambda: tg.tensor([1e-300, 1e300, -0.0], dtype=tg.float64),
    "int64": lambda: tg.tensor([2 ** 62, -3]),
    "int32": lambda: tg.tensor([7, -8], dtype=tg.int32),
    "int16": lambda: tg.tensor([300], dtype=tg.int16),
    "int8": lambda: tg.tensor([[-128, 127]], dtype=tg.int8),
    "uint8": lambda: tg.tensor([0, 255], dtype=tg.uint8),
    "bool": lambda: tg.tensor([True, False]),
    "nan_inf": lambda: tg.tensor([math.nan, math.inf, -math.inf]),
    "scalar_float": lambda: tg.tensor(2.5),                     # a Python-float value
    "scalar_float64": lambda: tg.tensor(2.5, dtype=tg.float64),
    "scalar_int": lambda: tg.tensor(7),
    "scalar_from_indexing": lambda: tg.arange(3.0)[1],          # a 0-d array view
    "empty": lambda: tg.zeros(2, 0),
    "4d": lambda: tg.randn(2, 3, 1, 2),
    "requires_grad": lambda: tg.randn(3, 2, requires_grad=True),
    "requires_grad_float64": lambda: tg.ones(2, dtype=tg.float64, requires_grad=True),
    "non_leaf": lambda: tg.ones(2, requires_grad=True) * 3,     # loads as a leaf, as PyTorch
    "transposed": lambda: tg.arange(6.0).reshape(2, 3).t(),
    "slice_of_a_bigger_one": lambda: tg.arange(10.0)[2:7:2],
    "expanded": lambda: tg.ones(3, 1).expand(3, 4),
}


@pytest.mark.parametrize("make", TENSORS.values(), ids=TENSORS.keys())
def test_tensor_round_trip(make, seed):
    t = make()
    got = roundtrip(t)
    want = t.detach().requires_grad_(t.requires_grad) if not t.is_leaf else t
    assert_same(got, want)
    assert got is not t


VALUES = {
    "none": None, "true": True, "false": False, "int": 3, "big_int": 2 ** 80, "neg_int": -7,
    "float": 0.1, "neg_zero": -0.0, "nan": math.nan, "inf": math.inf, "neg_inf": -math.inf,
    "str": "weights ünïcode ✓", "empty_str": "",
    "list": [1, 2.0, "3", None, True], "tuple": (1, (2, 3), [4]), "empty_list": [],
    "empty_tuple": (), "empty_dict": {}, "empty_ordereddict": OrderedDict(),
    "dict_keys": {"a": 1, 0: 2, 1.5: 3, None: 4, True: 5, (1, "x"): 6, -2: 7},
    "ordered": OrderedDict([("z", 1), ("a", 2), ("m", 3)]),
    "nested": {"a": [{"b": (1, [2, {"c": None}])}]},
    "size": tg.Size([2, 3]), "dtype": tg.float64, "dtypes": [tg.int8, tg.bool, tg.float32],
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_value_round_trip(value):
    assert_same(roundtrip(value), value)
    assert_same(roundtrip([value, {"k": value}]), [value, {"k": value}])


def module_state_dict(L):
    """Shaped as a Module's state_dict(): an OrderedDict of dotted names, with _metadata."""
    sd = OrderedDict([("0.weight", L.randn(4, 3)), ("0.bias", L.zeros(4)),
                      ("2.weight", L.randn(1, 4)), ("2.bias", L.zeros(1)),
                      ("bn.num_batches_tracked", L.tensor(5))])
    sd._metadata = OrderedDict([("", {"version": 1}), ("0", {"version": 1}),
                                ("bn", {"version": 2})])
    return sd


def optimizer_state_dict(L):
    """Shaped as Adam's state_dict(): int keys, 0-d step tensors, tuples, None and bools."""
    return {
        "state": {0: {"step": L.tensor(3.0), "exp_avg": L.randn(4, 3),
                      "exp_avg_sq": L.rand(4, 3)},
                  1: {"step": L.tensor(3.0), "exp_avg": L.randn(4),
                      "exp_avg_sq": L.rand(4)}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                          "weight_decay": 0, "amsgrad": False, "maximize": False,
                          "foreach": None, "capturable": False, "differentiable": False,
                          "fused": None, "params": [0, 1]}],
    }


@pytest.mark.parametrize("make", [module_state_dict, optimizer_state_dict],
                         ids=["module", "optimizer"])
def test_state_dict_round_trip(make, seed, tmp_path):
    sd = make(tg)
    tg.save(sd, tmp_path / "sd.tg")
    got = tg.load(tmp_path / "sd.tg")
    assert_same(got, sd)
    both = {"model": module_state_dict(tg), "optimizer": optimizer_state_dict(tg), "epoch": 7}
    tg.save(both, str(tmp_path / "checkpoint.tg"))
    assert_same(tg.load(str(tmp_path / "checkpoint.tg")), both)


def _shape_of(x, torch=None):
    """A structure's shape in library-neutral words: containers, keys, tensor dtype/shape."""
    if torch is not None and isinstance(x, torch.Tensor) or isinstance(x, tg.Tensor):
        return ("tensor", str(x.dtype).split(".")[-1], list(x.shape), x.requires_grad)
    if isinstance(x, dict):
        return (type(x).__name__, [(k, _shape_of(v, torch)) for k, v in x.items()],
                _shape_of(getattr(x, "_metadata", None), torch))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_shape_of(v, torch) for v in x])
    return x


@pytest.mark.parametrize("make", [module_state_dict, optimizer_state_dict],
                         ids=["module", "optimizer"])
def test_state_dict_round_trip_is_pytorchs(make):
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(make(torch), buf)
    buf.seek(0)
    theirs = torch.load(buf, weights_only=True)
    ours = roundtrip(make(tg))
    assert _shape_of(ours) == _shape_of(theirs, torch)


# ----- shared storage ------------------------------------------------------------------------
def _views(L):
    base = L.arange(12.0).reshape(3, 4)
    return {"base": base, "row": base[1], "col": base[:, 2], "t": base.t(), "again": base}


def test_views_of_one_base_load_sharing_memory():
    got = roundtrip(_views(tg))
    assert got["again"] is got["base"]            # the same tensor saved twice: one object
    a = _values(got["base"])
    for name in ("row", "col", "t"):
        assert np.shares_memory(a, _values(got[name])), name
    with tg.no_grad():
        got["row"].mul_(10)                       # through a view: seen by the others
        got["t"][3, 0] = -1.0
    assert got["base"].tolist() == [[0, 1, 2, -1], [40, 50, 60, 70], [8, 9, 10, 11]]
    assert got["col"].tolist() == [2, 60, 10]
    v = got["base"]._version
    got["col"].add_(1)
    assert got["base"]._version == got["row"]._version == v + 1     # one version counter


def test_views_load_sharing_memory_as_in_pytorch():
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(_views(torch), buf)
    buf.seek(0)
    theirs = torch.load(buf, weights_only=True)
    ours = roundtrip(_views(tg))
    for got, L in ((theirs, torch), (ours, tg)):
        with L.no_grad():
            got["row"].mul_(10)
            got["t"][3, 0] = -1.0
    assert ours["base"].tolist() == theirs["base"].tolist()
    assert ours["col"].tolist() == theirs["col"].tolist()
    assert (ours["again"] is ours["base"]) == (theirs["again"] is theirs["base"])


def test_tensors_that_do_not_share_memory_load_apart():
    a = tg.ones(3)
    got = roundtrip({"a": a, "b": a.clone(), "c": tg.ones(3)})
    assert not np.shares_memory(_values(got["a"]), _values(got["b"]))
    assert not np.shares_memory(_values(got["a"]), _values(got["c"]))


def test_a_view_saves_its_whole_storage_as_pytorch():
    big = tg.arange(1000.0)
    raw = io.BytesIO()
    tg.save(big[:2], raw)
    small = io.BytesIO()
    tg.save(big[:2].clone(), small)
    assert len(raw.getvalue()) > len(small.getvalue()) + 3000      # 1000 float32 values
    raw.seek(0)
    assert tg.load(raw).tolist() == [0.0, 1.0]


def test_a_loaded_tensor_trains():
    w = roundtrip(tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True))
    (w * w).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0]
    still_works()


def test_parameters_load_as_parameters():
    """A ``tapegrad.nn.Parameter`` loads as one; while tapegrad.nn has no such class, a tensor
    of a class named Parameter loads as a plain leaf that requires grad."""
    cls = getattr(tg.nn, "Parameter", None)
    if cls is not None:
        p = cls(tg.ones(2))
    else:
        class Parameter(tg.Tensor):
            __slots__ = ()
        p = tg.ones(2).requires_grad_()
        p.__class__ = Parameter
    got = roundtrip({"w": p})["w"]
    assert type(got) is (cls or tg.Tensor)
    assert got.requires_grad and got.is_leaf and got.tolist() == [1.0, 1.0]


# ----- files, paths, streams, readable without tapegrad --------------------------------------
class Unseekable(io.RawIOBase):
    """A pipe-like stream: read or write, no seek."""

    def __init__(self, data=b""):
        self.data, self.pos, self.out = data, 0, bytearray()

    def readable(self):
        return True

    def writable(self):
        return True

    def readinto(self, b):
        n = min(len(b), len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def write(self, b):
        self.out += b
        return len(b)


def test_paths_and_file_objects(tmp_path):
    obj = {"w": tg.randn(3, 2), "lr": 0.1}
    for f in (tmp_path / "a.tg", str(tmp_path / "b.tg")):
        tg.save(obj, f)
        assert_same(tg.load(f), obj)
    with open(tmp_path / "c.tg", "wb") as fp:
        tg.save(obj, fp)
    with open(tmp_path / "c.tg", "rb") as fp:
        assert_same(tg.load(fp), obj)
    pipe = Unseekable()
    tg.save(obj, pipe)
    assert_same(tg.load(Unseekable(bytes(pipe.out))), obj)
    assert (tmp_path / "c.tg").read_bytes() == (tmp_path / "a.tg").read_bytes()   # same bytes


def test_file_positioned_after_other_data(tmp_path):
    buf = io.BytesIO()
    buf.write(b"header written by someone else")
    start = buf.tell()
    tg.save([tg.ones(2)], buf)
    buf.seek(start)
    assert_same(tg.load(buf), [tg.ones(2)])


def test_readable_with_numpy_and_json_alone(tmp_path):
    sd = module_state_dict(tg)
    tg.save(sd, tmp_path / "m.tg")
    with np.load(tmp_path / "m.tg", allow_pickle=False) as npz:
        index = json.loads(npz["tapegrad.json"])
        for name, node in index["object"]["OrderedDict"]:
            t = index["tensors"][node["tensor"]]
            storage = index["storages"][t["storage"]]
            a = npz[storage["file"][:-len(".npy")]]
            assert str(a.dtype) == storage["dtype"] == sd[name].dtype.name
            np.testing.assert_array_equal(a.reshape(t["shape"]), _values(sd[name]))


def test_text_mode_files_are_refused(tmp_path):
    with open(tmp_path / "t.txt", "w") as fp:
        with pytest.raises(TypeError, match="binary file object"):
            tg.save(tg.ones(1), fp)
    tg.save(tg.ones(1), tmp_path / "t.tg")
    with open(tmp_path / "t.tg") as fp:
        with pytest.raises(TypeError, match="binary file object"):
            tg.load(fp)


def test_map_location(tmp_path):
    tg.save(tg.ones(2), tmp_path / "a.tg")
    assert tg.load(tmp_path / "a.tg", map_location="cpu").tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="only the 'cpu' device"):
        tg.load(tmp_path / "a.tg", map_location="cuda:0")


# ----- what save refuses -----------------------------------------------------------------------
class Opaque:
    pass


@pytest.mark.parametrize("obj, name", [
    ({1, 2}, "builtins.set"), (np.ones(2), "numpy.ndarray"), (np.float64(1.0), "numpy.float64"),
    ([Opaque()], "Opaque"), ({"f": print}, "builtin_function_or_method"),
    (b"bytes", "builtins.bytes"), (1 + 2j, "builtins.complex"),
])
def test_save_refuses_other_types_and_leaves_no_file(obj, name, tmp_path):
    with pytest.raises(TypeError) as info:
        tg.save(obj, tmp_path / "x.tg")
    assert str(info.value).startswith("tg.save: cannot save an object of type ")
    assert name in str(info.value)
    assert not (tmp_path / "x.tg").exists()


def test_save_refuses_tensor_keys_and_cycles(tmp_path):
    with pytest.raises(TypeError, match="dict key of type Tensor"):
        tg.save({tg.ones(1): 1}, tmp_path / "x.tg")
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        tg.save(loop, tmp_path / "x.tg")
    shared = [1]
    assert roundtrip([shared, shared]) == [[1], [1]]     # shared, not cyclic: saved twice


# ----- the safety default: nothing is ever unpickled -----------------------------------------
class Payload:
    """Unpickling it creates the file ``path`` (a stand-in for any code an attacker runs)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _weights_only_failed(info):
    assert info.type is pickle.UnpicklingError
    assert str(info.value).startswith("Weights only load failed.")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("weights_only", [True, False])
def test_a_malicious_pickle_is_refused_not_run(protocol, weights_only, tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"weight": Payload(marker)}, protocol=protocol)
    decoy = tmp_path / "decoy"          # the payload works: unpickled, it writes its file
    pickle.loads(data.replace(str(marker).encode(), str(decoy).encode()))
    assert decoy.exists()
    (tmp_path / "evil.pt").write_bytes(data)
    for f in (tmp_path / "evil.pt", io.BytesIO(data)):
        with pytest.raises(pickle.UnpicklingError) as info:
            tg.load(f, weights_only=weights_only)
        _weights_only_failed(info)
        assert "This file is a pickle." in str(info.value)
    assert not marker.exists()


def test_pytorch_refuses_the_same_pickle_with_the_same_error(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    data = pickle.dumps({"weight": Payload(marker)}, protocol=2)
    with pytest.raises(Exception) as theirs:
        torch.load(io.BytesIO(data), weights_only=True)
    with pytest.raises(Exception) as ours:
        tg.load(io.BytesIO(data))
    assert ours.type is theirs.type is pickle.UnpicklingError
    assert str(theirs.value).startswith("Weights only load failed.")
    assert str(ours.value).startswith("Weights only load failed.")
    assert not marker.exists()


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _index(obj, tensors=(), storages=()):
    return json.dumps({"format": "tapegrad.save", "version": 1, "object": obj,
                       "tensors": list(tensors), "storages": list(storages)})


def _npy(a, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_a_pickle_inside_a_npy_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = Payload(marker)
    data = _zip({"tapegrad.json": _index(
        {"tensor": 0}, [{"storage": 0, "offset": 0, "shape": [1], "stride": [1],
                         "requires_grad": False}],
        [{"file": "data/0.npy", "dtype": "float32", "numel": 1}]),
        "data/0.npy": _npy(evil, allow_pickle=True)})
    for weights_only in (True, False):
        with pytest.raises(pickle.UnpicklingError) as info:
            tg.load(io.BytesIO(data), weights_only=weights_only)
        _weights_only_failed(info)
        assert "holds Python objects" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("node", [
    {"pickle": "gASVIQAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg=="},
    {"__reduce__": ["os.system", ["touch pwned"]]},
    {"tuple": [1], "extra": 2},
    {"set": [1, 2]},
])
def test_an_index_naming_other_types_is_refused(node):
    data = _zip({"tapegrad.json": _index({"dict": [["a", node]]})})
    for weights_only in (True, False):
        with pytest.raises(pickle.UnpicklingError) as info:
            tg.load(io.BytesIO(data), weights_only=weights_only)
        _weights_only_failed(info)


# ----- truncated, corrupt and foreign files ----------------------------------------------------
def _saved():
    buf = io.BytesIO()
    tg.save({"model": module_state_dict(tg), "optimizer": optimizer_state_dict(tg)}, buf)
    return buf.getvalue()


def _clear_error(info, *words):
    """One RuntimeError in tapegrad's words, with no zipfile/json exception chained to it."""
    assert info.type is RuntimeError, f"{info.type.__name__}: {info.value}"
    assert str(info.value).startswith("tg.load: "), str(info.value)
    e = info.value
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)
    for w in words:
        assert w in str(info.value), str(info.value)


@pytest.mark.parametrize("keep", [1, 3, 30, 0.25, 0.5, 0.9, -22, -1])
def test_truncated_files(keep, seed):
    data = _saved()
    n = keep if isinstance(keep, int) and keep > 0 else (
        len(data) + keep if isinstance(keep, int) else int(len(data) * keep))
    with pytest.raises(Exception) as info:
        tg.load(io.BytesIO(data[:n]))
    _clear_error(info, "truncated")


def test_empty_file(tmp_path):
    (tmp_path / "empty.tg").write_bytes(b"")
    with pytest.raises(RuntimeError) as info:
        tg.load(tmp_path / "empty.tg")
    _clear_error(info, "empty")


def test_corrupt_data_bytes(seed):
    data = bytearray(_saved())
    zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    member = zf.getinfo("data/0.npy")
    start = bytes(data).find(b"\x93NUMPY", member.header_offset)     # the .npy in the zip
    data[start + member.file_size - 1] ^= 0xFF                        # its last data byte
    with pytest.raises(Exception) as info:
        tg.load(io.BytesIO(bytes(data)))
    _clear_error(info, "corrupt", "CRC")


def _one_tensor(tensor=None, storage=None, npy=None, index=None):
    t = {"storage": 0, "offset": 0, "shape": [2, 3], "stride": [3, 1], "requires_grad": False}
    s = {"file": "data/0.npy", "dtype": "float32", "numel": 6}
    t.update(tensor or {})
    s.update(storage or {})
    text = index if index is not None else _index({"tensor": 0}, [t], [s])
    members = {"tapegrad.json": text}
    if npy is not False:
        members["data/0.npy"] = _npy(np.arange(6, dtype=np.float32)) if npy is None else npy
    return _zip(members)


def test_the_crafted_helper_loads_when_intact():
    assert tg.load(io.BytesIO(_one_tensor())).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("data, words", [
    (_one_tensor(index="{not json"), "Expecting property name"),
    (_one_tensor(index='{"format": "tapegrad.save", "version": 1'), "corrupt"),
    (_one_tensor(index="[1, 2]"), "not a tg.save index"),
    (_one_tensor(index=b"\xff\xfe"), "corrupt"),
    (_one_tensor(index="[" * 100000 + "]" * 100000), "corrupt"),
    (_one_tensor(npy=False), "data/0.npy' is missing"),
    (_one_tensor(tensor={"offset": 1}), "reaches outside its storage"),
    (_one_tensor(tensor={"offset": 10 ** 12}), "reaches outside its storage"),
    (_one_tensor(tensor={"stride": [4, 1]}), "reaches outside its storage"),
    (_one_tensor(tensor={"stride": [-3, 1]}), "reaches outside its storage"),
    (_one_tensor(tensor={"shape": [2, 3, 1]}), "differ in length"),
    (_one_tensor(tensor={"shape": [2, -3]}), "not an integer"),
    (_one_tensor(tensor={"storage": 5}), "storage 5 is not in the index"),
    (_one_tensor(tensor={"requires_grad": "yes"}), "requires_grad"),
    (_one_tensor(tensor={"requires_grad": True}, storage={"dtype": "int64"},
                 npy=_npy(np.arange(6))), "requires_grad=True for dtype int64"),
    (_one_tensor(storage={"numel": 7}), "the index says 7 elements"),
    (_one_tensor(storage={"dtype": "float64"}), "not float64"),
    (_one_tensor(storage={"dtype": "complex64"}), "unknown dtype"),
    (_one_tensor(npy=_npy(np.arange(6, dtype=np.float32))[:-4]), "truncated"),
    (_one_tensor(npy=_npy(np.arange(4, dtype=np.float32))), "the index says 6 elements"),
    (_one_tensor(npy=_npy(np.asfortranarray(np.ones((2, 3), np.float32)))), "Fortran"),
    (_one_tensor(npy=b"\x93NUMPY\x09\x00junk"), "corrupt"),
    (_one_tensor(npy=b"not a npy file at all"), "corrupt"),
    (_zip({"tapegrad.json": _index({"tensor": 3})}), "tensor 3 is not in the index"),
    (_zip({"tapegrad.json": json.dumps({"format": "tapegrad.save", "version": 99})}),
     "format version 99"),
])
def test_corrupt_files(data, words):
    with pytest.raises(Exception) as info:
        tg.load(io.BytesIO(data))
    _clear_error(info, words)
    still_works()


def test_a_big_endian_npy_loads():
    a = np.arange(6, dtype=">f4")
    got = tg.load(io.BytesIO(_one_tensor(npy=_npy(a))))
    assert got.dtype is tg.float32 and got.tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("data, words", [
    (b"hello, I am not a checkpoint", "not a file written by tg.save"),
    (_zip({"weights.npy": _npy(np.ones(2))}), "without tapegrad.json"),
])
def test_foreign_files(data, words):
    with pytest.raises(Exception) as info:
        tg.load(io.BytesIO(data))
    _clear_error(info, words)


def test_a_torch_save_file_gets_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "model.pt")
    with pytest.raises(Exception) as info:
        tg.load(tmp_path / "model.pt")
    _clear_error(info, "written by torch.save", "torch.load(f, weights_only=True)")
    # and PyTorch, given a tg.save file, refuses it too (it is no PyTorch archive)
    tg.save({"w": tg.ones(2)}, tmp_path / "model.tg")
    with pytest.raises(RuntimeError):
        torch.load(tmp_path / "model.tg", weights_only=True)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        tg.load(tmp_path / "nope.tg")
    assert Path(tmp_path).exists() and not os.listdir(tmp_path)


# ----- real modules and optimizers -------------------------------------------------------------
def _trained(seed_value):
    tg.manual_seed(seed_value)
    model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 1))
    optimizer = tg.optim.Adam(model.parameters(), lr=0.01)
    x, y = tg.randn(8, 3), tg.randn(8, 1)
    for _ in range(3):
        loss = ((model(x) - y) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer, x, y


def test_a_checkpoint_of_a_module_and_its_optimizer_resumes_training(tmp_path):
    """Save after 3 steps, load into fresh objects, and the next steps are those of the
    original (the README's example)."""
    model, optimizer, x, y = _trained(0)
    tg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3},
            tmp_path / "checkpoint.tg")
    checkpoint = tg.load(tmp_path / "checkpoint.tg")
    assert_same(checkpoint["model"], model.state_dict())
    assert checkpoint["epoch"] == 3
    model2, optimizer2, _, _ = _trained(1)            # other weights, other Adam state
    model2.load_state_dict(checkpoint["model"])
    optimizer2.load_state_dict(checkpoint["optimizer"])
    for m, opt in ((model, optimizer), (model2, optimizer2)):
        for _ in range(2):
            loss = ((m(x) - y) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(_values(a), _values(b))
