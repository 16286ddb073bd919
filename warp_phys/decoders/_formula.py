"""A whitelist parser from untrusted formula strings to sympy expressions.

Formula strings come from command lines and config files, so they are never given to
`eval`, `sympify` or `parse_expr` (all of which run Python code). Instead a small
tokenizer (`_lexer`) and a recursive-descent parser accept exactly this grammar:

    formula  := sum
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/") unary)*
    unary    := ("+" | "-") unary | power
    power    := atom (("**" | "^") unary)?              (right-associative; -x**2 = -(x**2))
    atom     := NUMBER | NAME | FUNCTION "(" sum ("," sum)* ")" | "(" sum ")"

NUMBER is a decimal literal (`2`, `1.5`, `.5`, `3e-4`); NAME an ASCII identifier that
does not start with `_` and is not a Python keyword; FUNCTION one of `FUNCTIONS`; `pi`
and `E` are constants. The sympy expression is built unevaluated, by calling sympy
constructors directly, so sympy computes nothing on its own; constant sub-expressions
are folded as they are read, exactly where possible (see `_constants`). A formula is at
most `MAX_LENGTH` characters and `MAX_NODES` nodes, nested at most `MAX_DEPTH` deep.
Anything else is rejected with a one-line `FormulaError` (a `ValueError`) naming the
problem, the offending token and its position, quoting at most ~80 characters.
"""

import math
from collections.abc import Collection, Iterable, Iterator

import sympy

from . import _constants as constants
from ._lexer import CONSTANTS, FUNCTIONS, FormulaError, Token, short, tokenize

MAX_LENGTH = 4096  # characters of a whole input: all channels of a spec together
MAX_DEPTH = 64  # nesting, in the text and in the expression tree (Python allows 200 parens)
MAX_NODES = 10_000  # nodes of the expression trees of a whole input

# The only node types and atoms a parsed expression may contain.
ALLOWED_HEADS = frozenset({sympy.Add, sympy.Mul, sympy.Pow}) | frozenset(
    cls for cls, _ in FUNCTIONS.values() if cls is not None
)

_UNEXPECTED = {
    ")": "unbalanced ')'",
    ",": "',' is only allowed between the arguments of a function call",
}


def parse_formula(text: str, symbols: Collection[str] | None = None) -> sympy.Expr:
    """Parse an untrusted formula into a sympy expression over real symbols.

    **Arguments:**

    - `text`: the formula (see the module docstring for the grammar).
    - `symbols`: the names allowed as symbols; `None` allows any valid name.

    **Returns:** an unevaluated sympy expression whose nodes are in `ALLOWED_HEADS` and
    whose atoms are real `Symbol`s with allowed names, numbers within the range of
    float64 (see `_constants`), `pi` or `E`. Raises `FormulaError` (a `ValueError`) otherwise;
    nothing is ever executed.
    """
    if not isinstance(text, str):
        raise ValueError(f"a formula must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"formula is {len(text)} characters long, the limit is {MAX_LENGTH}", text
        )
    expr = _Parser(text, symbols).parse()
    try:
        check_whitelisted(expr, symbols)
    except ValueError as err:
        raise FormulaError(str(err), text) from None
    return expr


def nodes(exprs: Iterable[sympy.Basic]) -> Iterator[sympy.Basic]:
    """Every node of the expression trees, without recursion; `ValueError` once there
    are more than `MAX_NODES`, or at the end if one is nested deeper than `MAX_DEPTH`."""
    stack = [(expr, 1) for expr in exprs]
    count = deepest = 0
    while stack:
        node, depth = stack.pop()
        count, deepest = count + 1, max(deepest, depth)
        if count > MAX_NODES:
            raise ValueError(f"formula larger than the limit of {MAX_NODES} nodes")
        yield node
        stack.extend((arg, depth + 1) for arg in node.args)
    if deepest > MAX_DEPTH:
        raise ValueError(f"formula nested {deepest} deep, the limit is {MAX_DEPTH}")


def check_size(exprs: Iterable[sympy.Basic]) -> None:
    """`ValueError` unless the trees together have at most `MAX_NODES` nodes and none is
    nested deeper than `MAX_DEPTH`."""
    for _ in nodes(exprs):
        pass


def check_whitelisted(expr: sympy.Basic, symbols: Collection[str] | None = None) -> None:
    """Raise `ValueError` unless `expr` only uses whitelisted nodes and atoms, and is
    within `MAX_NODES` and `MAX_DEPTH`."""
    for node in nodes([expr]):
        if node.is_Symbol:
            if symbols is not None and node.name not in symbols:
                raise ValueError(f"undeclared symbol {short(node.name)}")
        elif node.is_Number:
            if not math.isfinite(float(constants.bounded(node))):
                number = constants.describe(node)
                raise ValueError(f"the constant {number} is beyond the range of float64")
        elif node not in (sympy.pi, sympy.E) and (node.func not in ALLOWED_HEADS or not node.args):
            raise ValueError(f"{node.func.__name__} is not allowed in a formula")


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
            self.error(f"formula nested deeper than the limit of {MAX_DEPTH}")

    def constant(self, fold, *args: sympy.Expr, token: Token) -> sympy.Expr:
        try:
            return fold(*args)
        except ValueError as err:
            self.error(str(err), token)

    # grammar
    def parse(self) -> sympy.Expr:
        if self.token.kind == "end":
            self.error("empty formula")
        self.check_parentheses()
        expr = self.sum()
        if self.token.kind != "end":
            self.error(_UNEXPECTED.get(self.token.text, "unexpected token"))
        return expr

    def check_parentheses(self):
        """Measure the nesting of parentheses before parsing, to report it in full."""
        depth, deepest, first = 0, 0, None
        for token in self.tokens:
            if token.kind == "op" and token.text in "()":
                depth += 1 if token.text == "(" else -1
                deepest = max(deepest, depth)
                first = first or (token if depth > MAX_DEPTH else None)
        if first is not None:
            self.error(f"parentheses nested {deepest} deep, the limit is {MAX_DEPTH}", first)

    def sum(self) -> sympy.Expr:
        terms, total, op, start = [], sympy.Integer(0), None, self.token
        while True:
            term = self.product()
            if op is not None and op.text == "-":
                term = self.negate(term)
            if term.is_Number:
                total = self.constant(constants.add, total, term, token=op or start)
            else:
                terms.append(term)
            if (op := self.accept("+", "-")) is None:
                break
        if not terms or not total.is_zero:
            terms.append(total)
        return sympy.Add(*terms, evaluate=False)

    def product(self) -> sympy.Expr:
        factors, coefficient, op, start = [], sympy.Integer(1), None, self.token
        while True:
            factor = self.unary()
            divide = op is not None and op.text == "/"
            if factor.is_Number:
                fold = constants.divide if divide else constants.multiply
                coefficient = self.constant(fold, coefficient, factor, token=op or start)
            else:
                factors.append(sympy.Pow(factor, -1, evaluate=False) if divide else factor)
            if (op := self.accept("*", "/")) is None:
                break
        if not factors or coefficient != 1:
            factors.insert(0, coefficient)
        return sympy.Mul(*factors, evaluate=False)

    @staticmethod
    def negate(expr: sympy.Expr) -> sympy.Expr:
        return -expr if expr.is_Number else sympy.Mul(-1, expr, evaluate=False)

    def unary(self) -> sympy.Expr:
        if (op := self.accept("+", "-")) is not None:
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return self.negate(operand) if op.text == "-" else operand
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if (op := self.accept("**", "^")) is None:
            return base
        self.enter()
        exponent = self.unary()
        self.depth -= 1
        if base.is_number and exponent.is_number:
            return self.constant(constants.power, base, exponent, token=op)
        return sympy.Pow(base, exponent, evaluate=False)

    def atom(self) -> sympy.Expr:
        token = self.token
        if token.kind == "number":
            self.i += 1
            return self.constant(constants.literal, token.text, token=token)
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

    def name(self, token: Token) -> sympy.Expr:
        name = token.text
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            self.error(f"function {name!r} must be called, as in {name}(...)", token)
        if self.symbols is not None and name not in self.symbols:
            self.error(f"unknown name (declared symbols: {short(sorted(self.symbols))})", token)
        return sympy.Symbol(name, real=True)

    def call(self, token: Token) -> sympy.Expr:
        name = token.text
        if name not in FUNCTIONS:
            self.error(f"unknown function (allowed: {', '.join(sorted(FUNCTIONS))})", token)
        cls, arity = FUNCTIONS[name]
        self.expect("(", "after a function name")
        self.enter()
        args = [self.sum()]
        while self.accept(",") is not None:
            args.append(self.sum())
        self.expect(")", f"to close the call of {name!r} at position {token.position}")
        self.depth -= 1
        if len(args) != arity:
            self.error(f"{name} takes {arity} argument(s), got {len(args)}", token)
        if cls is None:  # sqrt
            args.append(sympy.Rational(1, 2))
            if all(arg.is_number for arg in args):
                return self.constant(constants.power, *args, token=token)
            return sympy.Pow(*args, evaluate=False)
        if all(arg.is_number for arg in args):
            return self.constant(constants.apply, cls, args, token=token)
        return cls(*args, evaluate=False)
