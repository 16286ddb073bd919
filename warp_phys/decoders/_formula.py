"""A whitelist parser from untrusted formula strings to sympy expressions.

Formula strings come from command lines and config files, so they are never given to
`eval`, `sympify` or `parse_expr` (all of which run Python code). Instead a small
tokenizer and a recursive-descent parser accept exactly this grammar:

    formula  := sum
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/") unary)*
    unary    := ("+" | "-") unary | power
    power    := atom (("**" | "^") unary)?              (right-associative; -x**2 = -(x**2))
    atom     := NUMBER | NAME | FUNCTION "(" sum ("," sum)* ")" | "(" sum ")"

NUMBER is a decimal literal (`2`, `1.5`, `.5`, `3e-4`); NAME an ASCII identifier that
does not start with `_` and is not a Python keyword; FUNCTION one of `FUNCTIONS`; `pi`
and `E` are constants. The sympy expression is built by calling sympy constructors
directly. Constant sub-expressions (`2**10`, `sin(1)`) are folded in floating point,
so no input can make sympy compute a huge exact number. Anything else is rejected with a
`FormulaError` (a `ValueError`) naming the offending token and its position.
"""

import builtins
import keyword
import math
import re
from collections.abc import Callable, Collection
from typing import NamedTuple

import numpy as np
import sympy

MAX_LENGTH = 4096
MAX_DEPTH = 64

# name -> (sympy class, number of arguments, float implementation for constant folding)
FUNCTIONS: dict[str, tuple[type, int, Callable]] = {
    "exp": (sympy.exp, 1, math.exp),
    "log": (sympy.log, 1, math.log),
    "ln": (sympy.log, 1, math.log),
    "sqrt": (None, 1, math.sqrt),  # sympy represents sqrt(x) as x**(1/2)
    "abs": (sympy.Abs, 1, abs),
    "sign": (sympy.sign, 1, lambda v: float(np.sign(v))),
    "sin": (sympy.sin, 1, math.sin),
    "cos": (sympy.cos, 1, math.cos),
    "tan": (sympy.tan, 1, math.tan),
    "sinh": (sympy.sinh, 1, math.sinh),
    "cosh": (sympy.cosh, 1, math.cosh),
    "tanh": (sympy.tanh, 1, math.tanh),
    "asin": (sympy.asin, 1, math.asin),
    "acos": (sympy.acos, 1, math.acos),
    "atan": (sympy.atan, 1, math.atan),
    "asinh": (sympy.asinh, 1, math.asinh),
    "acosh": (sympy.acosh, 1, math.acosh),
    "atanh": (sympy.atanh, 1, math.atanh),
    "atan2": (sympy.atan2, 2, math.atan2),
    "erf": (sympy.erf, 1, math.erf),
}
for _name in ("asin", "acos", "atan", "asinh", "acosh", "atanh", "atan2"):
    FUNCTIONS["arc" + _name[1:]] = FUNCTIONS[_name]
CONSTANTS = {"pi": sympy.pi, "E": sympy.E}

# The only node types and atoms a parsed expression may contain.
ALLOWED_HEADS = frozenset({sympy.Add, sympy.Mul, sympy.Pow}) | frozenset(
    cls for cls, _, _ in FUNCTIONS.values() if cls is not None
)

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_OPERATORS = ("**", "+", "-", "*", "/", "^", "(", ")", ",")
_WHITESPACE = " \t\r\n"
# Names of Python built-ins (open, eval, exec, ...) are refused even as symbols, so a
# formula never even mentions them.
_BUILTIN_NAMES = frozenset(dir(builtins)) - set(FUNCTIONS)
_HINTS = {
    ".": "attribute access is not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "[": "indexing and lists are not allowed",
    "{": "dicts and sets are not allowed",
    "=": "assignments and comparisons are not allowed",
    ":": "lambdas and slices are not allowed",
    ";": "statements are not allowed (use ';' only between channel formulas)",
}

_UNEXPECTED = {
    ")": "unbalanced ')'",
    ",": "',' is only allowed between the arguments of a function call",
}


class FormulaError(ValueError):
    """A rejected formula; `token` and `position` (0-based) locate the problem."""

    def __init__(self, message: str, text: str, token: str, position: int):
        snippet = text if len(text) <= 80 else text[max(0, position - 30) : position + 30]
        super().__init__(f"{message}: {token!r} at position {position} in formula {snippet!r}")
        self.token = token
        self.position = position


class Token(NamedTuple):
    kind: str  # "number", "name", "op" or "end"
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    """Split `text` into number, name and operator tokens; `FormulaError` on anything else."""
    tokens, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
            continue
        if (match := _NUMBER.match(text, i)) is not None:
            tokens.append(Token("number", match.group(), i))
        elif (match := _NAME.match(text, i)) is not None:
            name = match.group()
            if name.startswith("_"):
                raise FormulaError("names starting with '_' are not allowed", text, name, i)
            if keyword.iskeyword(name) or keyword.issoftkeyword(name):
                raise FormulaError("Python keywords are not allowed", text, name, i)
            if name in _BUILTIN_NAMES:
                raise FormulaError("names of Python built-ins are not allowed", text, name, i)
            tokens.append(Token("name", name, i))
        else:
            op = next((op for op in _OPERATORS if text.startswith(op, i)), None)
            if op is None:
                hint = _HINTS.get(ch, "unexpected character")
                raise FormulaError(hint, text, ch, i)
            tokens.append(Token("op", op, i))
        i += len(tokens[-1].text)
    tokens.append(Token("end", "", len(text)))
    return tokens


def check_name(name: str, what: str = "symbol") -> str:
    """Validate a user-declared symbol name (same rules as names in formulas)."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None or name.startswith("_"):
        raise ValueError(f"{what} name {name!r} is not an ASCII identifier without leading '_'")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _BUILTIN_NAMES:
        raise ValueError(f"{what} name {name!r} is a Python keyword or built-in")
    if name in FUNCTIONS or name in CONSTANTS:
        raise ValueError(f"{what} name {name!r} is reserved for a function or constant")
    return name


def parse_formula(text: str, symbols: Collection[str] | None = None) -> sympy.Expr:
    """Parse an untrusted formula into a sympy expression over real symbols.

    **Arguments:**

    - `text`: the formula (see the module docstring for the grammar).
    - `symbols`: the names allowed as symbols; `None` allows any valid name.

    **Returns:** a sympy expression whose nodes are in `ALLOWED_HEADS` and whose atoms
    are real `Symbol`s with allowed names, finite numbers, `pi` or `E`.
    Raises `FormulaError` (a `ValueError`) otherwise; nothing is ever executed.
    """
    if not isinstance(text, str):
        raise ValueError(f"a formula must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula longer than {MAX_LENGTH} characters", text, text[:10], 0)
    expr = _Parser(text, symbols).parse()
    check_whitelisted(expr, symbols)
    return expr


def check_whitelisted(expr: sympy.Basic, symbols: Collection[str] | None = None) -> None:
    """Raise `ValueError` unless `expr` only uses whitelisted nodes and atoms."""
    for node in sympy.preorder_traversal(expr):
        if node.is_Symbol:
            if symbols is not None and node.name not in symbols:
                raise ValueError(f"undeclared symbol {node.name!r} in {expr}")
        elif node.is_Number:
            try:
                ok = math.isfinite(float(node))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"the formula evaluates to a non-finite constant {node} in {expr}")
        elif node in (sympy.pi, sympy.E):
            continue
        elif node.func not in ALLOWED_HEADS or not node.args:
            raise ValueError(f"{node.func.__name__} ({node}) is not allowed in a formula")


class _Parser:
    def __init__(self, text: str, symbols: Collection[str] | None):
        self.text = text
        self.tokens = tokenize(text)
        self.symbols = None if symbols is None else frozenset(symbols)
        self.i = 0
        self.depth = 0

    # helpers
    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, token: Token | None = None):
        token = token or self.token
        raise FormulaError(message, self.text, token.text or "<end>", token.position)

    def accept(self, *ops: str) -> Token | None:
        if self.token.kind == "op" and self.token.text in ops:
            self.i += 1
            return self.tokens[self.i - 1]
        return None

    def expect(self, op: str, context: str):
        if self.accept(op) is None:
            self.error(f"expected {op!r} {context}")

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error(f"formula nested deeper than {MAX_DEPTH} levels")

    # grammar
    def parse(self) -> sympy.Expr:
        if self.token.kind == "end":
            self.error("empty formula")
        expr = self.sum()
        if self.token.kind != "end":
            self.error(_UNEXPECTED.get(self.token.text, "unexpected token"))
        return expr

    def sum(self) -> sympy.Expr:
        expr = self.product()
        while (op := self.accept("+", "-")) is not None:
            rhs = self.product()
            expr = sympy.Add(expr, rhs if op.text == "+" else -rhs)
        return expr

    def product(self) -> sympy.Expr:
        expr = self.unary()
        while (op := self.accept("*", "/")) is not None:
            rhs = self.unary()
            if op.text == "/":
                rhs = self.power_of(rhs, sympy.Integer(-1), op)
            expr = sympy.Mul(expr, rhs)
        return expr

    def unary(self) -> sympy.Expr:
        if (op := self.accept("+", "-")) is not None:
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return -operand if op.text == "-" else operand
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if (op := self.accept("**", "^")) is not None:
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return self.power_of(base, exponent, op)
        return base

    def atom(self) -> sympy.Expr:
        token = self.token
        if token.kind == "number":
            self.i += 1
            return self.number(token)
        if token.kind == "name":
            self.i += 1
            if self.token.kind == "op" and self.token.text == "(":
                return self.call(token)
            return self.name(token)
        if self.accept("(") is not None:
            self.enter()
            expr = self.sum()
            self.expect(")", f"to close the '(' at position {token.position}")
            self.depth -= 1
            return expr
        if token.kind == "end":
            self.error("formula ends unexpectedly")
        self.error(_UNEXPECTED.get(token.text, "unexpected token"))

    def number(self, token: Token) -> sympy.Expr:
        text = token.text
        if text.isdigit() and len(text) <= 18:
            return sympy.Integer(int(text))
        value = float(text)
        if not math.isfinite(value):
            self.error("number out of floating-point range", token)
        return sympy.Float(value)

    def name(self, token: Token) -> sympy.Expr:
        name = token.text
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            self.error(f"function {name!r} must be called, as in {name}(...)", token)
        if self.symbols is not None and name not in self.symbols:
            self.error(f"unknown name (declared symbols: {sorted(self.symbols)})", token)
        return sympy.Symbol(name, real=True)

    def call(self, token: Token) -> sympy.Expr:
        name = token.text
        if name not in FUNCTIONS:
            self.error(f"unknown function (allowed: {sorted(FUNCTIONS)})", token)
        cls, arity, numeric = FUNCTIONS[name]
        self.expect("(", "after a function name")
        self.enter()
        args = [self.sum()]
        while self.accept(",") is not None:
            args.append(self.sum())
        self.expect(")", f"to close the call of {name!r} at position {token.position}")
        self.depth -= 1
        if len(args) != arity:
            self.error(f"{name} takes {arity} argument(s), got {len(args)}", token)
        if all(arg.is_number for arg in args):
            return self.fold(numeric, args, token)
        if cls is None:  # sqrt
            return sympy.Pow(args[0], sympy.Rational(1, 2))
        return cls(*args, evaluate=False)

    def power_of(self, base: sympy.Expr, exponent: sympy.Expr, token: Token) -> sympy.Expr:
        if not (base.is_number and exponent.is_number):
            return sympy.Pow(base, exponent)
        if base.is_Integer and exponent.is_Integer and abs(exponent) <= 64 and abs(base) < 2**64:
            if base == 0 and exponent < 0:
                self.error("division by zero", token)
            return sympy.Pow(base, exponent)
        return self.fold(lambda b, e: b**e, [base, exponent], token)

    def fold(self, numeric: Callable, args: list[sympy.Expr], token: Token) -> sympy.Expr:
        """Evaluate a constant sub-expression in float64 (cheap and bounded)."""
        try:
            value = numeric(*(float(arg) for arg in args))
        except (ValueError, OverflowError, ZeroDivisionError, TypeError) as err:
            self.error(f"invalid constant expression ({type(err).__name__}: {err})", token)
        if isinstance(value, complex) or not math.isfinite(value):
            self.error("constant expression is complex or not finite", token)
        return sympy.Float(value)
