"""A flag's value as a function of NumPy arrays: ``parse_function`` reads a Python expression
(``0.5 + 0.4 * sin(6 * x)``) that may use only arithmetic, comparisons, the given variables
and NumPy's math functions, so that a mistyped or hostile --f is one line naming the flag,
never a traceback, a hang or a file touched."""

import ast
import types

import numpy as np

from experiments.checks import UsageError

MATH = (
    *("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "exp"),
    *("log", "log1p", "expm1", "sqrt", "abs", "minimum", "maximum", "where", "clip"),
    *("floor", "ceil", "sign", "pi", "e"),
)


# The syntax --f and --f2 may use: arithmetic and comparisons of numbers, the variables and
# MATH's functions; no strings, containers, comprehensions, lambdas or attributes but np.NAME.
NODES = (
    *(ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name, ast.Load),
    *(ast.Constant, ast.Attribute, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv),
    *(ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq),
    ast.NotEq,
)
MAX_EXPRESSION = 1000  # characters of --f or --f2


class _Floats(ast.NodeTransformer):
    """Turns every number into a NumPy float64, so that 10**10**10 is inf at once rather
    than an integer Python would take hours to compute."""

    def visit_Constant(self, node):
        return ast.copy_location(
            ast.Call(ast.Name("_float", ast.Load()), [ast.Constant(float(node.value))], []),
            node,
        )


def parse_function(flag: str, text: str, variables: tuple):
    """The function of ``variables`` (NumPy arrays) that the expression ``text`` is; a
    UsageError naming --``flag`` unless it is arithmetic of numbers, ``variables`` and
    ``MATH`` (evaluated in float64: its time and memory are those of a few arrays shaped
    like the variables)."""
    names = {name: getattr(np, name) for name in MATH}
    modules = {m: types.SimpleNamespace(**names) for m in ("np", "numpy", "jnp")}
    help_ = f"use {', '.join(variables)} and {', '.join(MATH)}"
    if len(text) > MAX_EXPRESSION:
        raise UsageError(f"--{flag} is {len(text):,} characters long; at most {MAX_EXPRESSION:,}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        why = getattr(e, "msg", None) or type(e).__name__
        raise UsageError(f"--{flag}={text!r} is not a Python expression: {why}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id in modules and node.attr in names
        ):
            raise UsageError(f"--{flag}={text!r}: no attribute .{node.attr} ({help_})")
        if isinstance(node, ast.Name) and node.id not in (*names, *modules, *variables):
            raise UsageError(f"--{flag}={text!r}: unknown name {node.id!r} ({help_})")
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, (int, float))
        ):
            raise UsageError(f"--{flag}={text!r}: {node.value!r} is not a number ({help_})")
        if isinstance(node, ast.Call) and (node.keywords or not node.args):
            raise UsageError(f"--{flag}={text!r}: a function takes arrays, without keywords")
        if not isinstance(node, NODES):
            what = type(node).__name__
            raise UsageError(f"--{flag}={text!r}: no {what} here, only arithmetic ({help_})")
    try:
        code = compile(ast.fix_missing_locations(_Floats().visit(tree)), f"--{flag}", "eval")
    except (RecursionError, MemoryError):  # nested deeper than Python compiles
        raise UsageError(f"--{flag}={text!r}: nested too deeply to evaluate") from None

    def f(*values):
        scope = {"__builtins__": {}, "_float": np.float64, **names, **modules}
        scope.update(zip(variables, values))
        try:
            with np.errstate(all="ignore"):
                return np.broadcast_to(eval(code, scope), np.shape(values[0])).astype(float)
        except Exception as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"--{flag}={text!r} cannot be evaluated: {why}") from None

    return f
