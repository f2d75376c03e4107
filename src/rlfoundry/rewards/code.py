"""Rewards as code: validate user (or model) written reward source, compile it under jit.

A reward source defines ``def reward(obs, action, next_obs, info): ...`` (a potential for
shaping defines ``def potential(obs): ...``). The text is never run as Python first: its
AST is checked against an allow-list, so only arithmetic, comparisons, subscripts, a
fixed set of ``jnp`` functions and the given arguments get through. Refused: imports,
any attribute other than the allowed ``jnp.*`` names (so ``().__class__`` escapes fail),
dunder and unknown names, loops and comprehensions, ``if``/``and``/``or`` (they need a
Python bool, and ``jnp.where`` is the traceable spelling), calls to anything outside the
list (so no ``open``, ``eval``, ``__import__`` and no recursion), and constant powers.
Every numeric literal becomes a float32 JAX scalar, so no Python integer can grow huge
while tracing; after compilation the program's every intermediate is size-checked (no
``jnp.zeros(10**12)``-style allocation can run), and sample transitions check the output
is one finite number per transition. Every refusal is a one-line :class:`RewardCodeError`
naming the construct and its line.

``info`` holds ``reward`` (the environment's own reward), ``terminated`` and
``truncated``, so ``info["reward"] + 0.1 * ...`` adds a bonus to the task reward.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from rlfoundry.errors import ConfigError

#: ``jnp`` functions a reward may call: elementwise math, reductions, products of the
#: given arrays. Nothing that takes a shape (zeros, ones, full, arange, tile, ...).
JNP_FUNCTIONS = frozenset({
    "abs", "absolute", "sign", "sqrt", "square", "exp", "expm1", "log", "log1p", "tanh",
    "sin", "cos", "tan", "arctan", "arctan2", "sinh", "cosh", "floor", "ceil", "round",
    "clip", "minimum", "maximum", "where", "logical_and", "logical_or", "logical_not",
    "logical_xor", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "isclose", "sum", "mean", "max", "min", "prod", "any", "all", "argmax", "argmin",
    "dot", "vdot", "hypot", "float32", "int32", "asarray", "stack", "concatenate",
})
JNP_SUBMODULE_FUNCTIONS = frozenset({"linalg.norm"})
BUILTINS = frozenset({"abs"})
#: Info keys the environment stack provides.
INFO_KEYS = ("reward", "terminated", "truncated")
SIGNATURES = {"reward": ("obs", "action", "next_obs", "info"), "potential": ("obs",)}
MAX_SOURCE_CHARS = 20_000
MAX_INDEX = 1_000_000
MAX_POWER = 64
#: Largest intermediate array (elements) a reward program may hold per transition.
MAX_ELEMENTS = 1_000_000

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
           ast.BitAnd, ast.BitOr, ast.BitXor, ast.MatMult)
_UNARY = (ast.USub, ast.UAdd, ast.Invert, ast.Not)
_CMP = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class RewardCodeError(ConfigError):
    """Reward source text was refused; the message names the construct and its line."""


def _refuse(where: str, node: ast.AST | None, what: str, hint: str = "") -> RewardCodeError:
    line = f" line {node.lineno}:" if node is not None and hasattr(node, "lineno") else ""
    tail = f"; {hint}" if hint else ""
    return RewardCodeError(f"{where}:{line} {what} is not allowed{tail}.")


_CONSTRUCT_NAMES = {
    ast.Import: ("import", "the reward gets jnp already; remove the import"),
    ast.ImportFrom: ("import", "the reward gets jnp already; remove the import"),
    ast.While: ("`while` loop", "a reward is a fixed computation; vectorise with jnp"),
    ast.For: ("`for` loop", "a reward is a fixed computation; vectorise with jnp"),
    ast.AsyncFor: ("`for` loop", "vectorise with jnp"),
    ast.ListComp: ("list comprehension", "vectorise with jnp"),
    ast.SetComp: ("set comprehension", "vectorise with jnp"),
    ast.DictComp: ("dict comprehension", "vectorise with jnp"),
    ast.GeneratorExp: ("generator expression", "vectorise with jnp"),
    ast.Lambda: ("lambda", "write the expression inline"),
    ast.If: ("`if` statement", "use jnp.where(condition, a, b)"),
    ast.IfExp: ("conditional expression", "use jnp.where(condition, a, b)"),
    ast.BoolOp: ("`and`/`or`", "use jnp.logical_and / jnp.logical_or"),
    ast.With: ("`with` block", "a reward does no I/O"),
    ast.Try: ("`try` block", "a reward cannot fail"),
    ast.Raise: ("`raise`", "a reward cannot fail"),
    ast.Global: ("`global`", "use local names"),
    ast.Nonlocal: ("`nonlocal`", "use local names"),
    ast.ClassDef: ("class definition", "define only the reward function"),
    ast.Delete: ("`del`", "assign a new name instead"),
    ast.Yield: ("`yield`", "return one value"),
    ast.YieldFrom: ("`yield`", "return one value"),
    ast.Await: ("`await`", "return one value"),
    ast.AsyncFunctionDef: ("async function", "use a plain def"),
    ast.Starred: ("starred expression", "pass arguments one by one"),
    ast.NamedExpr: ("`:=`", "assign on its own line"),
    ast.Dict: ("dict literal", "return one number"),
    ast.Set: ("set literal", "return one number"),
    ast.JoinedStr: ("f-string", "a reward does no I/O"),
    ast.Assert: ("`assert`", "a reward cannot fail"),
}


class _Checker(ast.NodeVisitor):
    """Walks one function body; raises on the first construct outside the allow-list."""

    def __init__(self, where: str, name: str, args: tuple[str, ...]):
        self.where = where
        self.function = name
        self.names = set(args)
        self.args = args

    def refuse(self, node: ast.AST, what: str, hint: str = "") -> None:
        raise _refuse(self.where, node, what, hint)

    def generic_visit(self, node: ast.AST) -> None:
        for kind, (what, hint) in _CONSTRUCT_NAMES.items():
            if isinstance(node, kind):
                self.refuse(node, what, hint)
        allowed = (ast.Expr, ast.Load, ast.Store, ast.Tuple, ast.List, ast.Slice,
                   ast.keyword, ast.Pass)
        if not isinstance(node, allowed):
            self.refuse(node, f"`{type(node).__name__}`")
        super().generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.refuse(node, f"nested function {node.name!r}", "define one function only")

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is None:
            self.refuse(node, "a bare `return`", "return the reward")
        self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._bind(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            self.refuse(node, "assignment to a subscript or attribute", "assign a new name")
        self._check_op(node, node.op)
        if isinstance(node.op, ast.Pow):
            self.refuse(node, "`**=`", "write x = x ** 2")
        if node.target.id not in self.names:
            self.refuse(node, f"unknown name {node.target.id!r}")
        self.visit(node.value)

    def _bind(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self._check_name(target, target.id)
            if target.id in ("jnp", *BUILTINS):
                self.refuse(target, f"rebinding {target.id!r}")
            self.names.add(target.id)
        elif isinstance(target, ast.Tuple):
            for t in target.elts:
                self._bind(t)
        else:
            self.refuse(target, "assignment to a subscript or attribute", "assign a new name")

    def _check_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            self.refuse(node, f"name {name!r} (leading underscore)")

    def visit_Name(self, node: ast.Name) -> None:
        self._check_name(node, node.id)
        if isinstance(node.ctx, ast.Load) and node.id not in self.names:
            if node.id in ("jnp", *BUILTINS):
                self.refuse(node, f"using {node.id!r} other than by calling an allowed function")
            close = difflib.get_close_matches(node.id, sorted(self.names), n=1)
            self.refuse(node, f"unknown name {node.id!r}",
                        f"use the arguments {', '.join(self.args)} or names you assigned"
                        + (f" (did you mean {close[0]!r}?)" if close else ""))

    def visit_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if isinstance(v, bool) or v is None:
            if v is None:
                self.refuse(node, "None", "return a number")
            return
        if isinstance(v, (int, float)):
            return
        self.refuse(node, f"constant {v!r}", "only numbers (and info keys) may appear")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.refuse(node, f"attribute access '.{node.attr}'",
                    "only calls of jnp functions such as jnp.sqrt(x) are allowed")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._check_op(node, node.op)
        if isinstance(node.op, ast.Pow):
            exp = node.right
            if isinstance(exp, ast.UnaryOp) and isinstance(exp.operand, ast.Constant):
                exp = exp.operand
            if not (isinstance(exp, ast.Constant) and isinstance(exp.value, (int, float))
                    and not isinstance(exp.value, bool) and abs(exp.value) <= MAX_POWER):
                self.refuse(node, "a power whose exponent is not a number literal up to "
                            f"{MAX_POWER}", "write x ** 2 or jnp.exp(k * jnp.log(x))")
        self.visit(node.left)
        self.visit(node.right)

    def _check_op(self, node: ast.AST, op: ast.AST) -> None:
        if not isinstance(op, _BINOPS):
            self.refuse(node, f"operator {type(op).__name__}")

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.refuse(node, "`not`", "use jnp.logical_not")
        if not isinstance(node.op, _UNARY):
            self.refuse(node, f"operator {type(node.op).__name__}")
        self.visit(node.operand)

    def visit_Compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            self.refuse(node, "a chained comparison", "compare two values at a time")
        if not isinstance(node.ops[0], _CMP):
            self.refuse(node, f"comparison {type(node.ops[0]).__name__}",
                        "use ==, !=, <, <=, >, >=")
        self.visit(node.left)
        self.visit(node.comparators[0])

    def visit_Subscript(self, node: ast.Subscript) -> None:
        value = node.value
        if isinstance(value, ast.Name) and value.id == "info" and "info" in self.args:
            key = node.slice
            if not (isinstance(key, ast.Constant) and key.value in INFO_KEYS):
                self.refuse(node, "this info subscript",
                            f"info has the keys {', '.join(map(repr, INFO_KEYS))}")
            return
        self.visit(value)
        self._visit_index(node.slice)

    def _visit_index(self, index: ast.AST) -> None:
        """Indices stay Python integers (slices need them), so they must be small literals
        or names; the values checked here are never arithmetic on large numbers."""
        parts = index.elts if isinstance(index, ast.Tuple) else [index]
        for part in parts:
            if isinstance(part, ast.Slice):
                for bound in (part.lower, part.upper, part.step):
                    if bound is not None:
                        self._visit_index_value(bound)
            else:
                self._visit_index_value(part)

    def _visit_index_value(self, node: ast.AST) -> None:
        """An index is a small integer literal or a name (an array: a traced index); index
        arithmetic stays Python integers, so it is refused (assign it to a name first)."""
        lit = node.operand if isinstance(node, ast.UnaryOp) and isinstance(
            node.op, ast.USub) else node
        if isinstance(lit, ast.Constant):
            if isinstance(lit.value, bool) or not isinstance(lit.value, int) or \
                    abs(lit.value) > MAX_INDEX:
                self.refuse(node, f"index {ast.unparse(node)}",
                            f"index with integers up to {MAX_INDEX}")
            return
        if not isinstance(node, ast.Name):
            self.refuse(node, f"computed index {ast.unparse(node)}",
                        "assign it to a name first (i = ...; obs[i])")
        self.visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        dotted = _dotted(func)
        if dotted is None:
            self.refuse(node, f"calling {ast.unparse(func)!r}",
                        "call jnp functions by name, e.g. jnp.sqrt(x)")
        if dotted.startswith("jnp."):
            fname = dotted[4:]
            if fname not in JNP_FUNCTIONS and fname not in JNP_SUBMODULE_FUNCTIONS:
                self.refuse(node, f"calling {dotted!r}",
                            "allowed jnp functions: elementwise math, reductions, where, clip "
                            "(see docs/rewards.md)")
        elif dotted not in BUILTINS:
            if dotted in SIGNATURES:
                self.refuse(node, f"calling {dotted!r} (recursion)", "compute the value directly")
            self.refuse(node, f"calling {dotted!r}",
                        "only jnp functions (and abs) may be called")
        for arg in node.args:
            self.visit(arg)
        for kw in node.keywords:
            if kw.arg is None:
                self.refuse(node, "**keyword unpacking")
            if kw.arg not in ("axis", "keepdims", "ord", "dtype"):
                self.refuse(kw.value, f"keyword argument {kw.arg!r}",
                            "allowed keywords: axis, keepdims, ord")
            if kw.arg == "dtype":
                self.refuse(kw.value, "keyword argument 'dtype'")
            self._visit_index_value(kw.value) if kw.arg == "axis" else self.visit(kw.value)


def _dotted(node: ast.AST) -> str | None:
    """``jnp.linalg.norm`` -> "jnp.linalg.norm"; a plain name -> its id; else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    dotted = ".".join(reversed(parts))
    if len(parts) > 1 and parts[-1] != "jnp":
        return None
    return dotted


class _LiftConstants(ast.NodeTransformer):
    """Numeric literals outside indices become ``_const(v)`` (a float32 JAX scalar), so the
    traced program never does arithmetic on Python numbers (no ``x = x * x`` blow-up)."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        node.value = self.visit(node.value)
        return node  # the index keeps its literals (validated small)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node.left = self.visit(node.left)
        if not isinstance(node.op, ast.Pow):  # the exponent stays a small literal
            node.right = self.visit(node.right)
        return node

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        if node.arg in ("axis", "keepdims", "ord"):
            return node
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)):
            call = ast.Call(ast.Name("_const", ast.Load()), [node], [])
            return ast.copy_location(call, node)
        return node


@dataclass(frozen=True)
class CheckedSource:
    """A validated source and the compiled Python function it defines."""

    name: str
    function: Callable[..., jax.Array]


def check_source(source: str, name: str = "reward", where: str = "reward code") -> CheckedSource:
    """Validate ``source`` (see the module docstring) and compile the function ``name``.

    Returns the function (traceable, unjitted); raises :class:`RewardCodeError` naming the
    first refused construct and its line.
    """
    if not isinstance(source, str) or not source.strip():
        raise RewardCodeError(f"{where}: empty source; define def {name}"
                              f"({', '.join(SIGNATURES[name])}): return ...")
    if len(source) > MAX_SOURCE_CHARS:
        raise RewardCodeError(f"{where}: source of {len(source)} characters is not allowed; "
                              f"keep it under {MAX_SOURCE_CHARS}.")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as err:
        raise RewardCodeError(f"{where}: line {err.lineno}: syntax error ({err.msg}).") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise RewardCodeError(f"{where}: cannot parse ({type(err).__name__}).") from None
    found = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and \
                isinstance(stmt.value.value, str):
            continue  # module docstring
        if isinstance(stmt, ast.FunctionDef) and stmt.name in SIGNATURES:
            if stmt.name == name:
                found = stmt
            continue
        kind = _CONSTRUCT_NAMES.get(type(stmt), (f"top-level `{type(stmt).__name__}`",))[0]
        if isinstance(stmt, ast.FunctionDef):
            kind = f"helper function {stmt.name!r}"
        raise _refuse(where, stmt, kind, f"the file defines only def {name}(...)")
    if found is None:
        raise RewardCodeError(f"{where}: no function {name!r}; define def {name}"
                              f"({', '.join(SIGNATURES[name])}): return ...")
    expected = SIGNATURES[name]
    a = found.args
    got = tuple(x.arg for x in a.args)
    if (a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults
            or got != expected):
        raise _refuse(where, found, f"the signature {name}({', '.join(got)})",
                      f"write def {name}({', '.join(expected)})")
    if found.decorator_list:
        raise _refuse(where, found.decorator_list[0], "a decorator")
    if found.returns is not None:
        raise _refuse(where, found, "a return annotation")
    body = found.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body or not isinstance(body[-1], ast.Return):
        raise _refuse(where, found, "a function that does not end with `return`",
                      "return the reward on the last line")
    checker = _Checker(where, name, expected)
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.Return) and i != len(body) - 1:
            raise _refuse(where, stmt, "an early `return`", "return once, on the last line")
        if isinstance(stmt, ast.Expr):
            raise _refuse(where, stmt, "an expression statement", "assign it or return it")
        checker.visit(stmt)
    func_def = ast.FunctionDef(name=found.name, args=found.args, body=body,
                               decorator_list=[], returns=None, type_comment=None,
                               type_params=[])
    module = ast.Module([_LiftConstants().visit(func_def)], type_ignores=[])
    ast.fix_missing_locations(ast.copy_location(func_def, found))
    ast.fix_missing_locations(module)
    namespace: dict[str, Any] = {
        "__builtins__": {"abs": abs},
        "jnp": _AllowedJnp(),
        "_const": lambda v: jnp.asarray(v, jnp.float32),
    }
    exec(compile(module, f"<{where}>", "exec"), namespace)  # noqa: S102 - validated AST
    return CheckedSource(name, namespace[name])


class _AllowedJnp:
    """The ``jnp`` a reward sees: the allow-listed functions only (defence in depth)."""

    def __init__(self) -> None:
        for fname in JNP_FUNCTIONS:
            setattr(self, fname, getattr(jnp, fname))
        self.linalg = type("linalg", (), {"norm": staticmethod(jnp.linalg.norm)})()


def check_program(
    fn: Callable[..., jax.Array], samples: tuple[Any, ...], where: str = "reward code"
) -> None:
    """Trace ``fn`` on one sample transition and refuse any intermediate over
    :data:`MAX_ELEMENTS` elements (before anything is allocated), then run it vmapped over
    all samples and require one finite number per transition."""
    one = jax.tree.map(lambda x: x[0], samples)
    try:
        jaxpr = jax.make_jaxpr(fn)(*one)
    except RewardCodeError:
        raise
    except Exception as err:  # the user's code failed to trace: report its line
        raise RewardCodeError(f"{where}: does not compile for this environment "
                              f"({type(err).__name__}: {_first_line(err)}).") from None
    biggest = max((int(np.prod(v.aval.shape)) for v in _all_vars(jaxpr.jaxpr)), default=0)
    if biggest > MAX_ELEMENTS:
        raise RewardCodeError(
            f"{where}: an intermediate array of {biggest:,} elements is not allowed "
            f"(limit {MAX_ELEMENTS:,}); compute the reward from the given arrays."
        )
    out_shape = jax.eval_shape(fn, *one)
    if tuple(out_shape.shape) != ():
        raise RewardCodeError(f"{where}: returns shape {tuple(out_shape.shape)} per "
                              "transition; return one number (e.g. wrap it in jnp.sum).")
    if not (jnp.issubdtype(out_shape.dtype, jnp.number) or out_shape.dtype == jnp.bool_):
        raise RewardCodeError(f"{where}: returns {out_shape.dtype}; return a number.")
    values = np.asarray(jax.jit(jax.vmap(fn))(*samples))
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise RewardCodeError(f"{where}: gave a non-finite value on {bad} of {values.size} "
                              "sample transitions; guard divisions and logs (e.g. + 1e-8).")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _all_vars(jaxpr: Any) -> list[Any]:
    out = list(jaxpr.invars) + list(jaxpr.constvars)
    for eqn in jaxpr.eqns:
        out.extend(v for v in eqn.outvars if hasattr(v, "aval"))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            out.extend(_all_vars(sub))
    return [v for v in out if hasattr(v.aval, "shape")]
