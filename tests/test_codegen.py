"""The op table is the single source of truth (issue 13): the generated code is what the
generator writes from it today, an opcode with no branch traps, each formula reads only
what its row saves, and the module layout stays small and acyclic."""
import ast
import filecmp
import os

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import codegen, ops

PKG = os.path.dirname(tg.__file__)


def test_generated_files_are_what_the_table_gives(tmp_path):
    """A changed table (or generator) with files not regenerated fails here: run
    ``python -m tapegrad.codegen``."""
    codegen.generate(str(tmp_path))
    for name in codegen.FILES:
        assert filecmp.cmp(tmp_path / name, os.path.join(codegen.OUT, name), shallow=False), \
            f"_generated/{name} differs from what the table gives: python -m tapegrad.codegen"


def test_every_kernel_module_carries_the_hash_of_all_kernel_sources():
    """Numba's disk cache keys a function on its own file: a kernel module whose stamp is
    not the hash of every kernel source would run stale cached code after a change."""
    want = codegen.STAMP + codegen.sources_hash()
    for name in codegen.STAMPED:
        path = os.path.join(PKG, name)
        if os.path.exists(path):
            with open(path) as f:
                assert want + "\n" in f.read(), f"{name}: python -m tapegrad.codegen"


@pytest.mark.parametrize("fn, args", [
    ("unary_grad", (255, 1.0, 2.0, 3.0, 0.0)),
    ("binary_grad", (255, 1.0, 2.0, 3.0, 4.0, 0.0)),
    ("unary_value", (255, 1.0, 0.0, 0.0)),
    ("binary_value", (255, 1.0, 2.0, 0.0)),
])
def test_an_unknown_opcode_traps(fn, args):
    from tapegrad._generated import elementwise
    with pytest.raises(ValueError, match="no branch for this opcode"):
        getattr(elementwise, fn)(*args)


def test_every_elementwise_row_has_its_math():
    for row in ops._ROWS:
        if row.family in ("binary", "unary"):
            assert row.scalar and row.array and row.grads, row.name
            assert len(row.grads) == (2 if row.family == "binary" else 1), row.name
            codegen.check_saves(row)


def test_a_formula_that_reads_what_its_row_does_not_save_is_refused():
    row = ops.TABLE["exp"]._replace(saves="", grads=("g * out",))
    with pytest.raises(ValueError, match="does not save"):
        codegen.check_saves(row)


def test_generated_elementwise_values_match_the_eager_forwards():
    """The replays' per-element values are the Python-float forwards' formulas."""
    from tapegrad._generated import elementwise, tables
    rng = np.random.default_rng(3)
    for row in ops._ROWS:
        code = ops.code_of(row.name)
        if row.family == "unary" and code in tables.SCALAR_F:
            for x in rng.uniform(0.1, 2.0, 5):
                assert elementwise.unary_value(code, x, 0.0, 0.0) == pytest.approx(
                    tables.SCALAR_F[code](x), rel=1e-15, nan_ok=True), row.name   # (asin 2)
        if row.family == "binary" and code in tables.SCALAR_F:
            for x, y in rng.uniform(0.1, 2.0, (5, 2)):
                assert elementwise.binary_value(code, x, y, 0.0) == pytest.approx(
                    tables.SCALAR_F[code](x, y), rel=1e-15, nan_ok=True), row.name


# ----- the layout ------------------------------------------------------------------------
def _modules():
    found = {}
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                name = "tapegrad" + path[len(PKG):-3].replace(os.sep, ".")
                found[name[:-9] if name.endswith(".__init__") else name] = path
    return found


def _imports(mods):
    """module -> the tapegrad modules it imports (anywhere in it, functions included)."""
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.endswith("__init__.py") else m.rsplit(".", 1)[0]
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = node.module if node.level == 0 else \
                    (base + "." + node.module if node.module else base)
                subs = [target + "." + a.name for a in node.names if target + "." + a.name in mods]
                targets = subs if len(subs) == len(node.names) else [target] + subs
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[m].update(t for t in targets if t in mods and t != m)
    return edges


def test_no_two_modules_import_each_other():
    edges = _imports(_modules())
    mutual = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges[b]})
    assert not mutual, f"modules importing each other: {mutual}"


def test_no_module_is_over_600_lines():
    long = {m: n for m, p in _modules().items()
            if (n := sum(1 for _ in open(p))) > 600}
    assert not long, f"modules over 600 lines: {long}"
