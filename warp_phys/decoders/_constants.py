"""Constants in formulas: exact while small, 53-bit floats otherwise, never out of range.

The formula parser folds constant sub-expressions as it reads them. Literals, and +, -,
*, / and integer powers between them, are exact sympy Rationals, so
`(10**18)**20/(10**18)**20` is exactly 1. Functions of constants and the other powers
are evaluated by sympy's arbitrary-precision `evalf` to 53-bit Floats (the precision of
float64), whose exponent range is unbounded: no step overflows or underflows. To keep
every step cheap, each constant must lie within `2**-MAX_BITS .. 2**MAX_BITS` (or be 0)
and an exact one must have a numerator and denominator below `2**MAX_BITS`; a step
beyond that raises `ValueError`, and so does a constant that is not a finite real number
(`log(0)`, `sqrt(-1)`, `1/0`). Rounding to the float type of JAX happens once, when the
formula is compiled (see `symbolic.py`).
"""

import math

import sympy

MAX_BITS = 4096
# Decimal digits of a number of MAX_BITS bits.
MAX_DIGITS = int(MAX_BITS * math.log10(2))
_LARGEST = sympy.Integer(2) ** MAX_BITS
_PRECISION = 15  # decimal digits of an evaluated constant: 53 bits, as float64
# exp, sinh and cosh of a larger argument exceed 2**MAX_BITS; refused before evaluation,
# which would be slow.
_GROWING = (sympy.exp, sympy.sinh, sympy.cosh)
_MAX_GROWING_ARGUMENT = MAX_BITS * math.log(2)


def describe(number: sympy.Basic) -> str:
    """A short text for a number of any size (exact if short, else 3 digits)."""
    if number.is_Rational and max(number.p.bit_length(), number.q.bit_length()) <= 64:
        return str(number)
    if number.is_Number and number.is_finite:
        return str(sympy.Float(number, 3))
    return str(number)[:40]


def bounded(value: sympy.Basic) -> sympy.Number:
    """`value` if it is a finite real number of bounded size, else `ValueError`."""
    if value.is_Rational:
        if max(value.p.bit_length(), value.q.bit_length()) <= MAX_BITS:
            return value
        raise ValueError(f"the exact constant {describe(value)} needs more than {MAX_BITS} bits")
    if not (value.is_Float and value.is_finite):
        raise ValueError(f"the constant is {describe(value)}, not a finite real number")
    if value.is_zero or 1 / _LARGEST <= abs(value) <= _LARGEST:
        return value
    raise ValueError(f"the constant {describe(value)} is beyond 2**±{MAX_BITS}")


def literal(text: str) -> sympy.Rational:
    """The exact value of a decimal literal such as `2`, `1.5`, `.5` or `3e-4`."""
    mantissa, _, exponent = text.lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return sympy.Integer(0)
    # The size checks come first, so that no step handles a huge number.
    if len(digits) > MAX_DIGITS or len(exponent.lstrip("+-").lstrip("0")) > 5:
        raise ValueError(f"number beyond 1e±{MAX_DIGITS}")
    shift = int(exponent or "0") - len(fraction)
    if abs(shift) > 2 * MAX_DIGITS:
        raise ValueError(f"number beyond 1e±{MAX_DIGITS}")
    return bounded(sympy.Integer(int(digits)) * sympy.Integer(10) ** shift)


def add(x: sympy.Number, y: sympy.Number) -> sympy.Number:
    return bounded(x + y)


def multiply(x: sympy.Number, y: sympy.Number) -> sympy.Number:
    return bounded(x * y)


def divide(x: sympy.Number, y: sympy.Number) -> sympy.Number:
    if y.is_zero:
        raise ValueError("division by zero")
    return bounded(x / y)


def power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Number:
    """`base**exponent` of two constants: exact for a rational to an integer power while
    the result stays within MAX_BITS bits, else evaluated (if its size is bounded)."""
    if base.is_zero and exponent.is_negative:
        raise ValueError("division by zero")
    if base.is_Rational and exponent.is_Integer:
        if abs(base) == 1 or base.is_zero:
            return base**exponent
        if max(base.p.bit_length(), base.q.bit_length()) * abs(exponent) <= MAX_BITS:
            return bounded(base**exponent)
    if not base.is_zero:
        # log2 of the result's magnitude, from 8 digits: refuse before evaluating
        log_base = float(sympy.log(abs(base), evaluate=False).evalf(8)) / math.log(2)
        if not abs(float(exponent.evalf(8)) * log_base) <= MAX_BITS:
            raise ValueError(f"the constant power is beyond 2**±{MAX_BITS}")
    return evaluate(sympy.Pow(base, exponent, evaluate=False))


def apply(function: type, args: list[sympy.Expr]) -> sympy.Number:
    """A whitelisted sympy function of constant arguments, evaluated."""
    if function in _GROWING and not abs(float(args[0].evalf(8))) <= _MAX_GROWING_ARGUMENT:
        raise ValueError(f"{function.__name__} of a constant beyond ±{_MAX_GROWING_ARGUMENT:.0f}")
    return evaluate(function(*args, evaluate=False))


def evaluate(expr: sympy.Expr) -> sympy.Number:
    """A constant expression as a 53-bit Float (or exact 0); `ValueError` unless it is
    a finite real number of bounded size."""
    try:
        value = expr.evalf(_PRECISION)
    except (ArithmeticError, ValueError, TypeError) as err:
        raise ValueError(f"the constant cannot be evaluated ({type(err).__name__})") from None
    if value.is_zero:
        return sympy.Integer(0)
    return bounded(value)
