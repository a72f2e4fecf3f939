"""What every Numba kernel module shares: the jit decorator (cached on disk where a cache
directory is writable) and the per-element helpers the generated code calls."""
import functools
import importlib
import os
import warnings

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

try:                    # what Numba's np.empty emits (the intrinsics ``empty``, ``zeros``)
    from numba.np.arrayobj import get_itemsize, make_array, populate_array
    _ARRAYS = True
except ImportError:
    _ARRAYS = False

try:                    # Numba internals (jit_light); another Numba may lack them
    from numba.core import config
    from numba.core.compiler import CompilerBase, DefaultPassBuilder, Flags
    from numba.core.codegen import JITCodeLibrary
    from numba.core.compiler_machinery import register_pass
    from numba.core.typed_passes import NativeLowering
    _LIGHT = hasattr(config, "_OptLevel") and \
        hasattr(JITCodeLibrary, "_optimize_final_module") and \
        hasattr(JITCodeLibrary, "_get_module_for_linking") and \
        hasattr(Flags, "options") and hasattr(Flags, "_values")
except ImportError:
    _LIGHT = False

try:                    # Numba internals (_CachedInlining); another Numba may lack them
    from numba.core.untyped_passes import InlineInlinables
    from numba.core.inline_closurecall import InlineWorker
    _INLINING = _LIGHT and hasattr(InlineInlinables, "_do_work") and \
        hasattr(InlineWorker, "run_untyped_passes")
except ImportError:
    _INLINING = False


def _cache_ok():
    """True when Numba can write its on-disk cache somewhere (read-only installs cannot)."""
    if os.environ.get("TAPEGRAD_NO_CACHE"):
        return False
    try:
        njit(cache=True)(_probe)
        return True
    except Exception:  # numba raises RuntimeError when no cache locator is writable
        warnings.warn("tapegrad: no writable Numba cache directory; kernels compile "
                      "in every process (set NUMBA_CACHE_DIR to a writable folder)")
        return False


def _probe():
    return 0


CACHE = _cache_ok()


# Every kernel the decorators below make, so that a light library can find the kernel
# (and signature) behind each library it calls (see _LightLibrary).
_KERNELS = []


def _kernel(dispatcher):
    _KERNELS.append(dispatcher)
    return _compile_when_stale(dispatcher)


def jit(fn):
    """A kernel Python calls (no C wrapper: nothing takes its address)."""
    return _kernel(njit(cache=CACHE, error_model="numpy", no_cfunc_wrapper=True,
                        **_PIPELINE)(fn))


class _StaleCallee(Exception):
    """A light library's cached code calls a kernel under a symbol the kernel no longer has."""


def _load_kernel(module, name, args, symbol=None):
    """Compiles kernel ``module.name`` for ``args``, or loads it from the disk cache: what a
    light library's machine code calls must be in the process before that code is loaded.
    ``symbol``: the name that code calls it by. Numba's names carry a counter of the process
    that compiled them, so a kernel compiled again since (in another process, racing on a
    cold cache, or after its cache entry went stale alone) has another name: the caller's
    cached code would call an address that is not there (a crash), so it is stale too."""
    disp = getattr(importlib.import_module(module), name)
    disp.compile(args)
    if symbol is not None and disp.overloads[args].fndesc.mangled_name != symbol:
        raise _StaleCallee(f"{module}.{name}{args}")


def _compile_when_stale(disp):
    """A kernel's disk cache with a stale entry (_StaleCallee while the kernels a light
    library calls load: its own, or one it links in and inherits the loaders of) read as a
    miss: the kernel compiles against the kernels in the process, and is saved again."""
    cache = getattr(disp, "_cache", None)
    load = getattr(cache, "load_overload", None)
    if load is None:
        return disp

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except _StaleCallee:
            return None
    cache.load_overload = load_overload
    return disp


def _kernel_loaders(libraries):
    """{library: a picklable loader of its kernel} for the libraries of our kernels (each a
    module attribute under its own name) among ``libraries``."""
    found = {}
    for disp in _KERNELS:
        fn = disp.py_func
        if getattr(importlib.import_module(fn.__module__), fn.__name__, None) is not disp:
            continue
        for args, cres in list(disp.overloads.items()):
            if cres.library in libraries:
                found[cres.library] = functools.partial(_load_kernel, fn.__module__,
                                                        fn.__name__, tuple(args),
                                                        cres.fndesc.mangled_name)
    return found


if _LIGHT:
    class _LightLibrary(JITCodeLibrary):
        """A code library whose final module is not optimized again as a whole, and holds
        no copy of the kernels it calls.

        Its function is optimized on its own (-O3's function passes), then its final module
        with no -O3 module passes (inlining, vectorizing), only the reference-count pruning
        Numba runs at every level. (Numba reads its level from ``config.OPT`` when it builds
        the passes; finalizing holds its compiler lock, so no other compile sees the change.)

        Numba links a copy of every library a function calls into its final module and
        compiles that whole module to machine code: each kernel's code compiled again in
        every caller. Here the calls into our own kernels stay calls to their symbols, which
        the JIT resolves against their code already loaded (each kernel is compiled, or
        loaded from the disk cache, before any caller's code): on a load from the disk
        cache, the loaders in ``_reload_init`` (Numba runs them before it loads the code)
        load them first. A caller that links this library in (the engine's general path)
        gets the copies all the same (``_get_module_for_linking``)."""
        _external = ()

        def finalize(self):
            loaders = _kernel_loaders(set(self._linking_libraries))
            self._external = [lib for lib in self._linking_libraries if lib in loaders]
            self._linking_libraries = [lib for lib in self._linking_libraries
                                       if lib not in loaders]
            self._reload_init.update(loaders.values())
            super().finalize()

        def _get_module_for_linking(self):
            if self._shared_module is None:
                mod = super()._get_module_for_linking()
                if self._external:
                    if mod is self._final_module:
                        mod = mod.clone()
                    for lib in dict.fromkeys(self._external):
                        mod.link_in(lib._get_module_for_linking(), preserve=True)
                    self._shared_module = mod
            return self._shared_module

        def _optimize_final_module(self):
            saved = config.OPT
            config.OPT = config._OptLevel(0)
            try:
                super()._optimize_final_module()
            finally:
                config.OPT = saved


    @register_pass(mutates_CFG=True, analysis_only=False)
    class _LightLowering(NativeLowering):
        """Numba's lowering into a ``_LightLibrary``."""
        _name = "tapegrad_light_lowering"

        def run_pass(self, state):
            if state.library is None:
                state.library = state.targetctx.codegen().create_library(
                    state.func_id.func_qualname)
                state.library.enable_object_caching()
            if type(state.library) is JITCodeLibrary:
                state.library.__class__ = _LightLibrary
            return super().run_pass(state)


    class _Flags(Flags):
        """Numba's compile flags, compared faster. Typing looks each overload up in a cache
        keyed by the flags of the compile (``_OverloadFunctionTemplate._get_impl``), which
        hashes and compares them thousands of times on a cold start: each time, a dict of
        every option's value built through its property (0.3-0.5 s of a cold start). The
        same comparison here reads that dict from a memo keyed by the options set; the hash
        (Numba's: of the sorted option names, a constant) is computed once."""
        __slots__ = ()
        _memo = {}
        _hash = hash(tuple(sorted(Flags.options)))

        def _options(self):
            try:
                key = tuple(self._values.items())
                found = self._memo.get(key)
            except TypeError:               # an unhashable value: as Numba does
                return Flags.values(self)
            if found is None:
                found = self._memo[key] = Flags.values(self)
            return found

        def values(self):
            return dict(self._options())

        def __eq__(self, other):
            if isinstance(other, _Flags):
                return self._options() == other._options()
            return Flags.__eq__(self, other)

        def __hash__(self):
            return self._hash

    _Flags.__name__ = _Flags.__qualname__ = "Flags"   # (its summary names the class: the
    #                                                    symbols' mangled names stay Numba's)


    class _Compiler(CompilerBase):
        """Numba's nopython pipeline, its flags ``_Flags``, inlining with
        ``_CachedInlining`` (where Numba has what it needs)."""
        _swaps = {}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if type(self.state.flags) is Flags:
                self.state.flags.__class__ = _Flags

        def define_pipelines(self):
            pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
            pm.passes = [(self._swaps.get(p, p), d) for p, d in pm.passes]
            pm.finalize()
            return [pm]


    class _LightCompiler(_Compiler):
        """``_Compiler``, lowering with ``_LightLowering``."""
        _swaps = {NativeLowering: _LightLowering}


if _INLINING:
    # The untyped Numba IR of each function inlined (jit_inline, jit_inline_into) by its
    # Python function: Numba builds it anew (bytecode, then a dozen untyped passes) at
    # every call site it inlines, _row's a dozen times for one tier's sweep; it depends
    # on nothing of the caller's, and InlineWorker.inline_ir copies it before changing it.
    _UNTYPED = {}

    def _untyped_ir(worker, func, enable_ssa=False):
        """InlineWorker.run_untyped_passes, once for each function."""
        worker.flags.enable_ssa = enable_ssa          # (as run_untyped_passes does)
        key = (func, enable_ssa)
        if key not in _UNTYPED:
            _UNTYPED[key] = InlineWorker.run_untyped_passes(worker, func, enable_ssa)
        return _UNTYPED[key]

    @register_pass(mutates_CFG=True, analysis_only=False)
    class _CachedInlining(InlineInlinables):
        """Numba's inlining of jitted functions (``inline=``), their untyped IR built once
        (``_untyped_ir``)."""
        _name = "tapegrad_inline_inlinables"

        def _do_work(self, state, work_list, block, i, expr, inline_worker):
            inline_worker.run_untyped_passes = functools.partial(_untyped_ir, inline_worker)
            return super()._do_work(state, work_list, block, i, expr, inline_worker)

    _Compiler._swaps = {InlineInlinables: _CachedInlining}
    _LightCompiler._swaps = {**_Compiler._swaps, NativeLowering: _LightLowering}
_PIPELINE = {"pipeline_class": _Compiler} if _LIGHT else {}


def jit_light(fn, internal=False):
    """jit, for a kernel whose own code dispatches to kernels that do the loops: LLVM
    optimizes its function alone (-O3's function passes) but not its module again (see
    ``_LightLibrary``): the module passes over the copies of all the kernels it calls were
    half of its compile, and undo nothing those kernels' own optimization did.
    ``internal``: only other kernels call it (as ``jit_internal``)."""
    if not _LIGHT:                      # (a slower cold start, the same kernel)
        return _kernel(njit(cache=CACHE, error_model="numpy", no_cfunc_wrapper=True,
                            no_cpython_wrapper=internal)(fn))
    return _kernel(njit(cache=CACHE, error_model="numpy", no_cfunc_wrapper=True,
                        no_cpython_wrapper=internal, pipeline_class=_LightCompiler)(fn))


def jit_sums(fn):
    """jit, with the function's floating-point sums free to be reassociated (and multiply
    and add fused): LLVM then vectorizes a dot product's loop (3.5x on 32-long rows). The
    sums come out in another order; NaN and infinity keep their meaning (no 'fast' flags
    beyond these two)."""
    return _kernel(njit(cache=CACHE, error_model="numpy", no_cfunc_wrapper=True,
                        fastmath={"reassoc", "contract"}, **_PIPELINE)(fn))


def jit_internal(fn):
    """A kernel that only other kernels call: compiled without the wrappers through which
    Python and C call a jitted function (Numba builds, optimizes and caches both for
    every function, several hundred lines of LLVM each: a good part of a cold start).
    Python cannot call it."""
    return _kernel(njit(cache=CACHE, error_model="numpy", no_cpython_wrapper=True,
                        no_cfunc_wrapper=True, **_PIPELINE)(fn))


def jit_inline(fn):
    """A small helper inlined into its jitted callers (Numba IR), so that it is not
    compiled, optimized and linked as a function of its own in every caller's module.
    Called from Python, it is an ordinary cached kernel."""
    return njit(cache=CACHE, error_model="numpy", inline="always", **_PIPELINE)(fn)


def jit_inline_into(*callers):
    """A kernel inlined (Numba IR) into the jitted functions named ``callers`` only:
    elsewhere, and from Python, it is an ordinary cached kernel. The sweep goes into
    ``backward_all`` this way: linked as a function of its own, LLVM would optimize and
    compile its whole call tree twice (once for each library)."""
    def cost_model(expr, caller_ir, callee_ir):
        return caller_ir.func_id.func_name in callers
    return lambda fn: _kernel(njit(cache=CACHE, error_model="numpy", inline=cost_model,
                                   **_PIPELINE)(fn))


# ----- arrays allocated in the kernel's own code -----------------------------------------
# np.empty and np.zeros are Numba overloads: each compiles as a function of its own, once per
# element type (and per set of caller flags), then is linked and compiled again into every
# kernel that calls it (about 0.15 s of a cold start per dtype). These intrinsics emit the
# allocation where they are called, as Numba's own np.empty does inside its overload.
def _new_array(zero):
    @intrinsic
    def new(typingctx, n, dtype):
        if isinstance(dtype, types.DType):
            elem = dtype.dtype
        elif isinstance(dtype, types.NumberClass):
            elem = dtype.instance_type
        else:
            return None
        arrty = types.Array(elem, 1, "C")

        def codegen(context, builder, sig, args):
            count = context.cast(builder, args[0], sig.args[0], types.intp)
            with builder.if_then(builder.icmp_signed("<", count, count.type(0)),
                                 likely=False):
                context.call_conv.return_user_exc(builder, ValueError,
                                                  ("negative dimensions not allowed",))
            itemsize = context.get_constant(types.intp, get_itemsize(context, arrty))
            nbytes = builder.mul(count, itemsize)
            align = context.get_constant(types.uint32,
                                         context.get_preferred_array_alignment(elem))
            meminfo = context.nrt.meminfo_alloc_aligned(builder, nbytes, align)
            data = context.nrt.meminfo_data(builder, meminfo)
            ary = make_array(arrty)(context, builder)
            intp = context.get_value_type(types.intp)
            populate_array(ary, data=builder.bitcast(data, context.get_data_type(
                elem).as_pointer()), shape=cgutils.pack_array(builder, [count], ty=intp),
                strides=cgutils.pack_array(builder, [itemsize], ty=intp),
                itemsize=itemsize, meminfo=meminfo)
            if zero:
                cgutils.memset(builder, ary.data, nbytes, 0)
            return ary._getvalue()
        return arrty(n, dtype), codegen
    return new


if _ARRAYS:
    empty, zeros = _new_array(False), _new_array(True)
    empty.__doc__ = "np.empty(n, dtype) for a 1-d array, emitted in place."
    zeros.__doc__ = "np.zeros(n, dtype) for a 1-d array, emitted in place."
else:                       # another Numba: its own overloads (a slower cold start)
    @njit(inline="always")
    def empty(n, dtype):
        return np.empty(n, dtype)

    @njit(inline="always")
    def zeros(n, dtype):
        return np.zeros(n, dtype)


def _f(value, like):
    """A number in the floating type of ``like`` (jitted: see the overload below)."""
    return value


@overload(_f, inline="always")
def _f_typed(value, like):
    """A formula's numbers in the sweep's dtype: a float32 sweep computes in float32, as
    PyTorch does, instead of promoting every product with a constant to float64."""
    if isinstance(like, types.Float) and like.bitwidth == 32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


@njit(inline="always")
def _sign(x):
    """sign(x): 1, -1, or 0 at 0 and for NaN, as PyTorch's sgn in abs's backward."""
    if x > 0:
        return _f(1.0, x)
    if x < 0:
        return _f(-1.0, x)
    return _f(0.0, x)
