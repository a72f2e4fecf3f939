"""The formulas of the op table (``ops.Op.grads``) as code: Numba per-element expressions
for the sweeps, Tensor operations for ``create_graph`` (``codegen.py`` writes both).

Formulas (``ops.Op.grads``) are Python expressions of g (the incoming gradient), x, y (the
operands), out (the result), c, c2 (constants) and w (where's condition), with
where(cond, a, b), sign(x), exp/log/sqrt/sin/cos/tanh/sinh/cosh/trunc, rsqrt(x) (1 / sqrt(x),
ATen's rsqrt), floordiv(x, y) (ATen's div(rounding_mode="floor"): Python's //, a step),
fnma(a, b, c) (c - a*b rounded once, as a kernel of ATen's contracts it) and powc(x, e)
(x ** e for a constant e, as ATen's pow with a Python number: x*x for 2, sqrt for 0.5, ...). A subexpression of constants only
(c, c2, numbers) stays Python arithmetic (float64) in every target, as PyTorch's double
Scalars: the Numba sweep rounds it into its dtype once, after (log(c) of float64 c).
"""
import ast

FUNCS = ("exp", "log", "sqrt", "sin", "cos", "tanh", "sinh", "cosh", "trunc")
CONSTANT_NAMES = {"c", "c2"}


# ----- formulas into code -----------------------------------------------------------------
def _constant(node):
    """Does the expression involve only constants (c, c2, numbers)? (The names of the
    functions it calls do not count.)"""
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return all(not isinstance(n, ast.Name) or n.id in CONSTANT_NAMES or id(n) in called
               for n in ast.walk(node))


def _call(name, args):
    return ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])


def _np_call(name, args):
    return ast.Call(func=ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load()),
                    args=args, keywords=[])


class _Float64(ast.NodeTransformer):
    """A subexpression of constants as Numba code on float64: np.* functions."""

    def visit_Call(self, node):
        self.generic_visit(node)
        return ast.Call(func=ast.Attribute(ast.Name("np", ast.Load()), node.func.id,
                                           ast.Load()), args=node.args, keywords=[])


class _Numba(ast.NodeTransformer):
    """A formula as Numba per-element code: numbers in the sweep's dtype (``_f(v, g)``, so
    a float32 sweep computes in float32), where() as a conditional, np.* functions. A
    computed constant (log(c), c - 1) is computed in float64 and rounded once: _f(.., g)."""

    def visit(self, node):
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call)) and _constant(node) and \
                any(isinstance(n, ast.Name) and n.id in CONSTANT_NAMES for n in ast.walk(node)):
            return _call("_f", [_Float64().visit(node), ast.Name("g", ast.Load())])
        return super().visit(node)

    def visit_Call(self, node):
        if node.func.id == "powc":      # the exponent stays float64: _powc tests its value
            return _call("_powc", [self.visit(node.args[0]), _Float64().visit(node.args[1])])
        self.generic_visit(node)
        name = node.func.id
        if name == "where":
            cond, a, b = node.args
            return ast.IfExp(test=cond, body=a, orelse=b)
        if name == "sign":
            return ast.Call(func=ast.Name("_sign", ast.Load()), args=node.args, keywords=[])
        if name == "fnma":              # c - a*b = fma(-a, b, c)
            a, b, c = node.args
            return _call("_fma", [ast.UnaryOp(ast.USub(), a), b, c])
        if name == "rsqrt":             # 1 / sqrt(x), each step rounded (ATen's kernel)
            return ast.BinOp(self.visit_Constant(ast.Constant(1.0)), ast.Div(),
                             _np_call("sqrt", node.args))
        if name == "floordiv":          # Numba's float // is CPython's, ATen's div_floor
            return ast.BinOp(node.args[0], ast.FloorDiv(), node.args[1])
        if name in FUNCS:
            return ast.Call(func=ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load()),
                            args=node.args, keywords=[])
        raise ValueError(f"unknown function {name} in a formula")

    def visit_Constant(self, node):
        if isinstance(node.value, float):
            return ast.Call(func=ast.Name("_f", ast.Load()),
                            args=[node, ast.Name("g", ast.Load())], keywords=[])
        return node

    def visit_Name(self, node):      # constants are weak, as PyTorch's Python numbers
        if node.id in CONSTANT_NAMES:
            return ast.Call(func=ast.Name("_f", ast.Load()),
                            args=[node, ast.Name("g", ast.Load())], keywords=[])
        return node


class _Tensor(ast.NodeTransformer):
    """A formula as Tensor operations (recorded, for create_graph): functions of constants
    go to ``_cmath`` (Python floats with the sweep's results at the domain's edges: log(0)
    is -inf); of tensors, methods; where() and sign() go to helpers of formulas.py."""

    def visit_Call(self, node):
        const = _constant(node)
        self.generic_visit(node)
        name = node.func.id
        if name in FUNCS and const:
            return ast.Call(func=ast.Attribute(ast.Name("_cmath", ast.Load()), name,
                                               ast.Load()), args=node.args, keywords=[])
        if name in FUNCS:
            return ast.Call(func=ast.Attribute(node.args[0], name, ast.Load()), args=[],
                            keywords=[])
        if name in ("where", "sign", "floordiv"):
            return ast.Call(func=ast.Name("_" + name, ast.Load()), args=node.args, keywords=[])
        if name == "rsqrt":
            return ast.Call(func=ast.Attribute(node.args[0], name, ast.Load()), args=[],
                            keywords=[])
        if name == "fnma":              # c - a*b (recorded ops round each step)
            a, b, c = node.args
            return ast.BinOp(c, ast.Sub(), ast.BinOp(a, ast.Mult(), b))
        if name == "powc":              # x ** e: the POWC op, which picks ATen's cases
            return ast.BinOp(node.args[0], ast.Pow(), node.args[1])
        raise ValueError(f"unknown function {name} in a formula")


def numba_expr(formula):
    return ast.unparse(_Numba().visit(ast.parse(formula, mode="eval")).body)


def tensor_expr(formula):
    return ast.unparse(_Tensor().visit(ast.parse(formula, mode="eval")).body)


def _names(formula):
    return {n.id for n in ast.walk(ast.parse(formula, mode="eval")) if isinstance(n, ast.Name)}


def check_saves(row):
    """A formula may read only what its row saves (the backward has nothing else)."""
    have = {"g", "c", "c2", "where", "sign", "fnma", "powc", "rsqrt", "floordiv", *FUNCS}
    if "a" in row.saves:
        have.add("x")
    if "b" in row.saves:
        have.add("y")
    if "y" in row.saves:
        have.add("out")
    if "i" in row.saves:
        have.add("w")
    for f in row.grads:
        extra = _names(f) - have
        if extra:
            raise ValueError(f"{row.name}: its gradient {f!r} reads {sorted(extra)}, which "
                             f"its row does not save ({row.saves!r})")
