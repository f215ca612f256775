"""Safe arithmetic over table columns, for user-typed "derived column" formulas.

The law fitter lets a user add columns such as ``D = `Training FLOP` / (6 * `Model Size`)``. That
text comes from a web page, so it must never reach Python's ``eval`` (``DataFrame.eval`` is ``eval``
with a pandas front end: ``__import__('os').system(...)`` ran through it). This module parses the
text with :mod:`ast` and evaluates a strict whitelist of nodes with numpy:

- column names (plain identifiers, or any name in back-quotes: ```Model Size```),
- numbers (int or float literals, evaluated as float64),
- ``+ - * / **``, unary ``-`` / ``+``, parentheses,
- the functions in :data:`FUNCTIONS` (``log exp sqrt log10 abs``), one argument each.

Everything else (attribute access, calls of any other name, subscripts, strings, comparisons,
lambdas, comprehensions, keyword arguments, dunder names) is refused with an
:class:`ExpressionError` that names what was refused. Hand-written because the libraries that do
this (``simpleeval``, ``asteval``, ``numexpr``) accept far more than this grammar and would each be
a new dependency for a 100-line job.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

import numpy as np

from workbench.errors import WorkbenchError

FUNCTIONS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log10": np.log10, "abs": np.abs}
"""The only callables an expression may use, each with exactly one argument."""

MAX_LENGTH = 1000
"""Longest expression accepted (characters): keeps the parser's recursion bounded."""

_OPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
ALLOWED = ("column names (`back-quoted` if they have spaces or symbols), numbers, + - * / **, parentheses, "
           + ", ".join(f"{f}()" for f in FUNCTIONS))

_NAMES = {  # readable names of refused syntax, for the message
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension", ast.Compare: "a comparison", ast.BoolOp: "and/or",
    ast.IfExp: "if/else", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
    ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment (:=)", ast.Starred: "*unpacking",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}


class ExpressionError(WorkbenchError):
    """An expression outside the whitelist, malformed, or naming an unknown column."""


def _replace_backticks(text: str) -> tuple[str, dict[str, str]]:
    """Swap each ```any name``` for a fresh identifier; returns the new text and identifier -> name."""
    if text.count("`") % 2:
        raise ExpressionError(f"expression {text!r}: unbalanced back-quote (`)")
    prefix = "wbcol"
    while prefix in text:
        prefix += "_"
    names: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if not name.strip():
            raise ExpressionError(f"expression {text!r}: empty back-quoted column name")
        ident = f"{prefix}{len(names)}"
        names[ident] = name
        return f" {ident} "

    return re.sub(r"`([^`]*)`", sub, text), names


def _refuse(node: ast.AST, text: str, what: str | None = None) -> ExpressionError:
    what = what or _NAMES.get(type(node), type(node).__name__)
    return ExpressionError(f"expression {text!r}: {what} is not allowed; allowed are {ALLOWED}")


def parse(text: str) -> tuple[ast.expression, dict[str, str]]:
    """Parse and check an expression against the whitelist; returns its AST and the column names it
    uses (identifier in the AST -> column name). Raises :class:`ExpressionError` on anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expression: empty; write e.g. 6 * N * D")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression: {len(text)} characters, at most {MAX_LENGTH} allowed")
    src, quoted = _replace_backticks(text)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"expression {text!r}: not a formula ({e.msg})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"expression {text!r}: nested too deeply") from None
    cols: dict[str, str] = {}
    called = {id(n.func) for n in ast.walk(tree.body) if isinstance(n, ast.Call)}
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id.endswith("__"):
                raise _refuse(node, text, f"the name {node.id!r}")
            if id(node) not in called:  # a function's name is checked with its call
                cols[node.id] = quoted.get(node.id, node.id)
        elif isinstance(node, ast.Call):
            f = node.func
            if not isinstance(f, ast.Name) or f.id not in FUNCTIONS or f.id in quoted:
                shown = ast.unparse(f) if not isinstance(f, ast.Name) or f.id not in quoted else quoted[f.id]
                raise _refuse(node, text, f"calling {shown!r}")
            if node.keywords or len(node.args) != 1:
                raise _refuse(node, text, f"{f.id}() with other than one plain argument")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise _refuse(node, text, f"the constant {node.value!r}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPS:
                raise _refuse(node, text, f"the operator {type(node.op).__name__}")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise _refuse(node, text, f"the operator {type(node.op).__name__}")
        elif not isinstance(node, (ast.operator, ast.unaryop, ast.expr_context)):
            raise _refuse(node, text)
    return tree, cols


def columns(text: str) -> list[str]:
    """The column names an expression uses, in first-use order."""
    return list(dict.fromkeys(parse(text)[1].values()))


def evaluate(text: str, data: Mapping[str, object], *, length: int | None = None) -> np.ndarray:
    """Evaluate an expression over ``data`` (column name -> values: a DataFrame or a dict of arrays)
    with numpy in float64; a constant expression is broadcast to ``length`` (or the columns' length)."""
    tree, cols = parse(text)
    known = list(data.keys())
    values: dict[str, np.ndarray] = {}
    for ident, name in cols.items():
        if name not in known:
            raise ExpressionError(f"expression {text!r}: unknown column {name!r}; columns are "
                                  f"{', '.join(map(str, known[:20]))}")
        try:
            values[ident] = np.asarray(data[name], dtype=float)
        except (TypeError, ValueError):
            raise ExpressionError(f"expression {text!r}: column {name!r} is not numeric") from None

    def ev(node: ast.AST) -> np.ndarray | np.float64:
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.Constant):
            return np.float64(node.value)
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](ev(node.args[0]))
        raise _refuse(node, text)  # pragma: no cover - parse() refused it already

    with np.errstate(all="ignore"):
        out = np.asarray(ev(tree.body), dtype=float)
    if out.ndim == 0:
        n = length if length is not None else (len(next(iter(data.values()))) if known else 1)
        out = np.full(n, float(out))
    return out
