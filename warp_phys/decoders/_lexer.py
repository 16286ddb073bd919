"""The words of a formula: its tokens, the names it may use, and the error that points
into it.

A formula is split into numbers, names and operators; anything else (quotes, dots,
brackets, ...) is refused at once with a hint. Names are ASCII identifiers that do not
start with `_` and are neither Python keywords nor built-ins (so a formula never even
mentions `open` or `eval`); `FUNCTIONS` and `CONSTANTS` are the names with a meaning.
Every error is one line and quotes at most ~80 characters of the input.
"""

import builtins
import keyword
import re
from typing import NamedTuple

import sympy

_EXCERPT = 80  # characters of an input quoted in an error message

# name -> (sympy class, number of arguments); sqrt is x**(1/2) in sympy
FUNCTIONS: dict[str, tuple[type | None, int]] = {
    "exp": (sympy.exp, 1), "log": (sympy.log, 1), "ln": (sympy.log, 1), "sqrt": (None, 1),
    "abs": (sympy.Abs, 1), "sign": (sympy.sign, 1), "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1), "tan": (sympy.tan, 1), "sinh": (sympy.sinh, 1),
    "cosh": (sympy.cosh, 1), "tanh": (sympy.tanh, 1), "asin": (sympy.asin, 1),
    "acos": (sympy.acos, 1), "atan": (sympy.atan, 1), "asinh": (sympy.asinh, 1),
    "acosh": (sympy.acosh, 1), "atanh": (sympy.atanh, 1), "atan2": (sympy.atan2, 2),
    "erf": (sympy.erf, 1),
}
for _name in ("asin", "acos", "atan", "asinh", "acosh", "atanh", "atan2"):
    FUNCTIONS["arc" + _name[1:]] = FUNCTIONS[_name]
CONSTANTS = {"pi": sympy.pi, "E": sympy.E}

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


def short(value, width: int = 60) -> str:
    """`repr(value)`, cut to `width` characters with '...' (one line, for messages)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def excerpt(text: str, position: int = 0) -> str:
    """At most ~90 characters: `text` around `position`, quoted, with '...' where cut."""
    width = _EXCERPT - 4  # the quotes and some room: cut only where repr escapes
    start = min(max(0, position - width // 2), max(0, len(text) - width))
    end = start + width
    before, after = ("..." if start else ""), ("..." if end < len(text) else "")
    return before + short(text[start:end], _EXCERPT) + after


class FormulaError(ValueError):
    """A rejected formula; `token` and `position` (0-based) locate the problem (`token`
    is None when it is the formula as a whole, e.g. its length)."""

    def __init__(self, message: str, text: str, token: str | None = None, position: int = 0):
        where = "" if token is None else f": {short(token, 24)} at position {position}"
        super().__init__(f"{message}{where} in formula {excerpt(text, position)}")
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
        raise ValueError(
            f"{what} name {short(name)} is not an ASCII identifier without leading '_'"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _BUILTIN_NAMES:
        raise ValueError(f"{what} name {short(name)} is a Python keyword or built-in")
    if name in FUNCTIONS or name in CONSTANTS:
        raise ValueError(f"{what} name {short(name)} is reserved for a function or constant")
    return name
