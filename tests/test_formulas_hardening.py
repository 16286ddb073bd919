"""Formula priors under hostile and extreme input (issue 19): the whole input is bounded,
constants are exact or clearly refused, every error is one short line; and a
property-based suite: any string builds a decoder or raises such a ValueError, and a
formula that builds computes what an independent float64 evaluation of the same
expression tree computes."""

import builtins
import contextlib
import math
import operator
import time
from fractions import Fraction
from unittest import mock

import jax.numpy as jnp
import numpy as np
import pytest
import sympy
import sympy.parsing.sympy_parser as sympy_parser
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from warp_phys.decoders import decoder_from_sympy, parse_decoder_spec, parse_formula

MAX_MESSAGE = 400  # characters of any error message about a formula


def one_short_line(err: ValueError) -> str:
    message = str(err)
    assert "\n" not in message and len(message) <= MAX_MESSAGE, message[:1000]
    return message


def error_of(build) -> str:
    """The message of the ValueError that `build()` raises, checked to be one short line."""
    with pytest.raises(ValueError) as info:
        build()
    return one_short_line(info.value)


def evaluate(decoder, a=1.0, b=0.5, t=0.25, x0=0.75):
    """The formula at the parameter values `a`, `b`: theta_t holds them (readout "direct")."""
    decoder = decoder.rebuild(readout="direct")
    params = {n: jnp.float32(v) for n, v in (("a", a), ("b", b)) if n in dict(decoder.params_spec)}
    return np.asarray(decoder(params, jnp.float32(t), jnp.full(decoder.data_size, x0, jnp.float32)))


# --------------------------------------------------------------------------- regressions


def test_errors_quote_a_bounded_excerpt_and_name_the_problem():
    nested = "(" * 1000 + "a" + ")" * 1000
    message = error_of(lambda: parse_decoder_spec("sympy:" + nested, data_size=1))
    assert "parentheses nested 1000 deep, the limit is 64" in message
    deeper = "(" * 10_000 + "a" + ")" * 10_000
    message = error_of(lambda: decoder_from_sympy(deeper))
    assert "20001 characters long, the limit is 4096" in message
    # long tokens, names and lists are cut, not quoted in full
    error_of(lambda: parse_formula("1 + _" + "x" * 3000))
    error_of(lambda: parse_formula("a + c", ["b" * 3000]))
    error_of(lambda: decoder_from_sympy("a", params=["b" * 3000]))
    error_of(lambda: decoder_from_sympy("a*t", params=["a", "a" * 3000, "a" * 3000]))
    error_of(lambda: decoder_from_sympy("1" * 4000 + "*a"))


def test_constants_fold_exactly():
    # (10**18)**20 overflows float64; folded exactly, the quotient is exactly 1
    for text in ("a*(10**18)**20/(10**18)**20", "1e-400*10**400*a", "a*exp(-1000)*exp(1000)"):
        assert evaluate(decoder_from_sympy(text), a=1.5) == pytest.approx([1.5], rel=1e-6), text


@pytest.mark.parametrize("literal", [2**31, 2**63 + 1, 10**30, 12345678901234567890123, 3 * 10**38])
def test_large_integer_literals_are_floats(literal):
    got = evaluate(decoder_from_sympy(f"a*{literal}"), a=1.0)
    assert got[0] == np.float32(literal)


@pytest.mark.parametrize("text", ["a*10**39", "a*4e38", "a*(10**18)**40", "exp(100)*a", "a/1e-39"])
def test_constants_beyond_float32_are_refused(text):
    message = error_of(lambda: decoder_from_sympy(text))  # float32, or even float64
    assert "range of float" in message and "Overflow" not in message


def test_the_whole_input_is_bounded():
    start = time.perf_counter()
    forty_kb = ";".join(["a"] * 20_000)
    assert "characters long, the limit is 4096" in error_of(lambda: decoder_from_sympy(forty_kb))
    channels = ";".join(["a"] * 2000)  # under 4096 characters
    assert "2000 formulas (channels), the limit is 256" in error_of(
        lambda: parse_decoder_spec("sympy:" + channels, data_size=2000)
    )
    error_of(lambda: decoder_from_sympy(["a" * 3000, "b" * 3000]))
    assert time.perf_counter() - start < 5.0


def test_sympy_expressions_are_bounded_too():
    a = sympy.Symbol("a", real=True)
    deep = a
    for _ in range(1000):
        deep = sympy.sin(deep, evaluate=False)
    assert "nested 1001 deep, the limit is 64" in error_of(lambda: decoder_from_sympy(deep))
    wide = a  # 14 levels of sharing: a small graph, a tree of ~50,000 nodes
    for _ in range(14):
        wide = sympy.Add(sympy.sin(wide, evaluate=False), sympy.cos(wide, evaluate=False))
    assert "10000 nodes" in error_of(lambda: decoder_from_sympy(wide))
    for beyond in (sympy.Integer(10) ** 40, sympy.zoo, sympy.nan, sympy.oo):
        expr = sympy.Mul(a, beyond, evaluate=False)
        assert "float32" in error_of(lambda e=expr: decoder_from_sympy(e))
    assert evaluate(decoder_from_sympy(a * sympy.Integer(2**31)), a=0.5)[0] == 2.0**30


# --------------------------------------------------------------------------- any string


@contextlib.contextmanager
def no_code_execution():
    """Any call of eval/exec or of sympy's string parser fails loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"code execution attempted with {args!r}")

    with contextlib.ExitStack() as stack:
        for module, attr in ((builtins, "eval"), (builtins, "exec"),
                             (sympy_parser, "parse_expr"), (sympy_parser, "eval_expr")):
            stack.enter_context(mock.patch.object(module, attr, forbidden))
        yield


def builds_or_refuses(text: str) -> None:
    start = time.perf_counter()
    with no_code_execution():
        try:
            parse_formula(text)
        except ValueError as err:
            one_short_line(err)
    try:
        decoder_from_sympy(text)
    except ValueError as err:
        one_short_line(err)
    assert time.perf_counter() - start < 5.0


TOKENS = ["a", "b", "t", "x0", "x1", "1", "2.5", "1e3", "1e-45", "10**18", "2**31", "9", "+",
          "-", "*", "/", "**", "^", "(", ")", ",", ";", "exp", "log", "sin", "atan2", "sqrt",
          "abs", "pi", "E", ".", "'", "[", "_", "__class__", "lambda", "open", " ", "\n"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=50))
def test_random_text_builds_or_raises_one_short_line(text):
    builds_or_refuses(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soup=st.lists(st.sampled_from(TOKENS), max_size=20))
def test_token_soups_build_or_raise_one_short_line(soup):
    builds_or_refuses("".join(soup))


# --------------------------------------------------------------------------- numbers


@st.composite
def literals(draw) -> str:
    digits = draw(st.text("0123456789", min_size=1, max_size=45))
    point = draw(st.integers(0, len(digits)))
    exponent = draw(st.one_of(st.just(""), st.integers(-60, 60).map(lambda e: f"e{e}")))
    return f"{digits[:point]}.{digits[point:]}{exponent}" if point else digits + exponent


@settings(max_examples=60, deadline=None)
@given(literal=literals())
def test_literals_are_exact_or_refused(literal):
    value = Fraction(literal)
    if abs(value) > np.finfo(np.float32).max:
        assert "range of float" in error_of(lambda: decoder_from_sympy(f"a*{literal}"))
        return
    want = np.float32(float(value))
    subnormal = abs(want) < np.finfo(np.float32).tiny  # XLA may flush these to 0
    got = evaluate(decoder_from_sympy(f"a*{literal}"))[0]
    assert got == want or (subnormal and got == 0.0)
    if value:  # a literal divided by itself is exactly 1, however large
        got = evaluate(decoder_from_sympy(f"a*{literal}**3/({literal})**3"), a=1.25)
        assert got[0] == np.float32(1.25)


# --------------------------------------------------------------------------- well-formed formulas

# Trees are tuples: ("sym", name), ("num", text, value) or (op, *children). They are
# rendered with the fewest parentheses the grammar needs (sometimes more), so parsing
# exercises precedence and associativity; `reference` evaluates the tree itself.
SYMBOLS = ("a", "b", "t", "x0")
NUMBERS = [("0", 0.0), ("1", 1.0), ("2", 2.0), ("7", 7.0), ("0.5", 0.5), ("2.5e-1", 0.25),
           ("3e2", 300.0), ("pi", math.pi), ("E", math.e), ("((10**18)**20/(10**18)**20)", 1.0),
           ("(2**31/2**30)", 2.0)]
FUNCTIONS = {"exp": math.exp, "sin": math.sin, "cos": math.cos, "tanh": math.tanh,
             "atan": math.atan, "asinh": math.asinh, "sinh": math.sinh, "erf": math.erf,
             "abs": abs, "log": math.log, "sqrt": math.sqrt, "asin": math.asin,
             "acosh": math.acosh, "atanh": math.atanh, "atan2": math.atan2}
# functions outside their domain get a wrapper that keeps the argument inside it
DOMAIN = {"log": lambda e: ("+", ("num", "1", 1.0), ("call", "abs", e)),
          "sqrt": lambda e: ("call", "abs", e), "asin": lambda e: ("call", "tanh", e),
          "acosh": lambda e: ("+", ("num", "1", 1.0), ("pow", e, "2")),
          "atanh": lambda e: ("/", ("call", "tanh", e), ("num", "2", 2.0))}
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def extend(children):
    return st.one_of(
        st.tuples(st.sampled_from("+-*/"), children, children),
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("pow"), children, st.sampled_from(["0", "1", "2", "3"])),
        st.tuples(st.just("pow"), children.map(lambda e: ("call", "abs", e)),
                  st.sampled_from(["0.5", "1.5", "2.25"])),
        st.builds(lambda name, e: ("call", name, DOMAIN.get(name, lambda x: x)(e)),
                  st.sampled_from(sorted(set(FUNCTIONS) - {"atan2"})), children),
        # x > 0: away from the branch cut (where even a signed zero matters)
        st.tuples(st.just("call"), st.just("atan2"), children, children.map(DOMAIN["log"])),
    )


trees = st.recursive(
    st.one_of(st.sampled_from(SYMBOLS).map(lambda n: ("sym", n)),
              st.sampled_from(NUMBERS).map(lambda n: ("num", *n))),
    extend, max_leaves=10,
)


def render(tree, paren) -> tuple[str, int]:
    """(text, precedence) of `tree`; `paren()` says whether to add optional parentheses."""
    kind = tree[0]
    if kind in ("sym", "num"):
        text, prec = tree[1], 5
    elif kind == "call":
        text, prec = f"{tree[1]}({', '.join(render(arg, paren)[0] for arg in tree[2:])})", 5
    elif kind == "neg":
        text, prec = "-" + wrap(tree[1], 3, paren), 3
    elif kind == "pow":
        text, prec = f"{wrap(tree[1], 5, paren)}**{tree[2]}", 4
    else:  # binary, left-associative
        prec = PRECEDENCE[kind]
        text = f"{wrap(tree[1], prec, paren)} {kind} {wrap(tree[2], prec + 1, paren)}"
    return (f"({text})", 5) if paren() else (text, prec)


def wrap(tree, least, paren) -> str:
    text, prec = render(tree, paren)
    return text if prec >= least else f"({text})"


def reference(tree, env, rnd, sizes) -> float:
    """The value of `tree` in float64 with `rnd` applied after every operation;
    the magnitudes of the intermediate values go to `sizes`."""
    kind = tree[0]
    args = [reference(arg, env, rnd, sizes) for arg in tree[1:] if isinstance(arg, tuple)]
    if kind == "sym":
        value = env[tree[1]]
    elif kind == "num":
        value = tree[2]
    elif kind == "call":
        value = FUNCTIONS[tree[1]](*args)
    elif kind == "neg":
        value = -args[0]
    elif kind == "pow":
        value = args[0] ** float(tree[2])
    else:
        value = BINARY[kind](*args)
    value = rnd(float(value))
    sizes.append(abs(value))
    return value


def to_float32(value: float) -> float:
    with np.errstate(over="ignore"):  # beyond float32: inf, as float32 arithmetic gives
        return float(np.float32(value))


values = st.floats(-2, 2).map(to_float32)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(tree=trees, parens=st.randoms(use_true_random=False), a=values, b=values,
       t=st.floats(0, 1).map(to_float32), x0=values)
def test_formulas_match_an_independent_float64_evaluation(tree, parens, a, b, t, x0):
    text, _ = render(tree, lambda: parens.random() < 0.15)
    env = {"a": a, "b": b, "t": t, "x0": x0}
    sizes = []
    try:
        want = reference(tree, env, lambda v: v, sizes)
        want32 = reference(tree, env, to_float32, [])
    except (ArithmeticError, ValueError):  # 1/0, or out of a function's domain
        assume(False)
    assume(max(sizes) < 1e8 and math.isfinite(want32))
    decoder = decoder_from_sympy(text, params=["a", "b"], data_size=1)
    got = float(evaluate(decoder, a=a, b=b, t=t, x0=x0)[0])
    # float32 rounding of the intermediates, as the float32 reference shows it
    tolerance = 8 * abs(want32 - want) + 1e-5 * (1 + max(sizes))
    assert abs(got - want) <= tolerance, (text, env, got, want, want32)
