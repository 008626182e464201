"""Judging, in the trusted parent: returned values against expected ones, program output against expected output.

Contract. Pure functions over plain values (see ``codec``); no process, no I/O. ``check_value`` applies one
test's comparison rule; ``stdio_match`` compares standard output the way competitive-programming judges do:
line by line, tokens split on whitespace (so spacing, trailing spaces and a missing or extra final newline do not
matter), numbers (ASCII digits) with a decimal point or exponent within 1e-6 absolute error, or relative error
where the expected number has a point or an exponent itself, trailing blank lines ignored. Missing lines or
tokens always fail: truncated output is never accepted.
"""

from __future__ import annotations

import decimal
import fractions
import itertools
import math
import re
from collections.abc import Iterator
from typing import Any

from giftgen.sandbox.codec import Opaque, json_like, short, values_match

FLOAT_TOLERANCE = 1e-6


def check_value(rule: str, actual: Any, expected: Any, *, atol: float = 0.0, rel_tol: float = 1e-9,
                abs_tol: float = 0.0, truth: bool | None = None, singleton: bool | None = None) -> bool:
    """Whether ``actual`` passes one test. Rules:

    ``value``: EvalPlus's comparison (exact, or ``atol``/float tolerance), for outputs computed by a reference run.
    ``json``: the same after turning tuples into lists, for expected outputs stored as JSON. ``json_wrapped``: also
    accept the result inside a one-element list (APPS outputs whose wrapping list the seed loader removed).
    ``not_none``: None exactly when the expected value is None (EvalPlus's rule for functions returning a match).
    ``eq``: exact ``==`` (an ``assert f(x) == y`` read by the parent). ``truthy`` / ``falsy``: ``assert f(x)`` and
    ``assert not f(x)``; for a value that is not plain data, ``truth`` is its ``bool()`` in the program's process
    (None: bool() raised, and both fail). ``is``: ``assert f(x) is True`` (or False, None); ``singleton`` False
    says the program's value was not the object itself (numpy's ``True_`` arrives as ``True``). ``isclose``:
    ``math.isclose``.

    Anything that goes wrong while comparing (an integer too large for a float in ``math.isclose`` or a
    tolerance, a recursion too deep) is the value's failure: False, never an error of the judge.
    """
    if rule not in RULES:
        raise ValueError(f"unknown comparison rule {rule!r}")
    try:
        return _check(rule, actual, expected, atol, rel_tol, abs_tol, truth, singleton)
    except Exception:
        return False


RULES = ("not_none", "value", "json", "json_wrapped", "eq", "truthy", "falsy", "is", "isclose")


def _check(rule: str, actual: Any, expected: Any, atol: float, rel_tol: float, abs_tol: float,
           truth: bool | None, singleton: bool | None) -> bool:
    if rule == "not_none":
        return (actual is not None) == (expected is not None)
    if isinstance(actual, Opaque):
        # For `assert f(x)` on a result that is not plain data (a re.Match), use the program's own bool(): it
        # could return True just as well, so believing it grants nothing the test did not already.
        if rule in ("truthy", "falsy") and isinstance(truth, bool):
            return truth if rule == "truthy" else not truth
        return False
    if rule == "value":
        return values_match(actual, expected, atol)
    if rule == "json":
        return values_match(json_like(actual), json_like(expected), atol)
    if rule == "json_wrapped":  # APPS: the stored output lost its wrapping list; accept both forms, as APPS does
        plain = json_like(actual)
        return values_match(plain, json_like(expected), atol) or values_match(plain, [json_like(expected)], atol)
    if rule == "eq":
        return actual == expected
    if rule == "truthy":
        return _truth(actual)
    if rule == "falsy":
        return not _truth(actual)
    if rule == "is":
        return actual is expected and singleton is not False
    if rule == "isclose":
        if type(actual) in (decimal.Decimal, fractions.Fraction):  # math.isclose takes what float() takes
            actual = float(actual)
        if type(actual) not in (int, float, bool) or type(expected) not in (int, float, bool):
            return False
        return math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    raise AssertionError(rule)  # not reached: check_value checked the rule


def _truth(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:
        return False


def describe_mismatch(rule: str, actual: Any, expected: Any) -> str:
    if rule in ("truthy", "falsy"):
        return f"returned {short(actual)}, expected a {'true' if rule == 'truthy' else 'false'} value"
    if isinstance(actual, Opaque):
        return f"returned {actual!r}, which is not plain data"
    return f"returned {short(actual)}, expected {short(expected)}"


# ------------------------------------------------------------------------------------------------ stdio


# The line boundaries of str.splitlines, for a lazy split: an output of millions of blank lines is compared without
# building a list per line.
_LINE = re.compile(r"([^\n\r\v\f\x1c-\x1e\x85\u2028\u2029]*)(?:\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]|\Z)")


_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_NONSPACE = re.compile(r"\S")


def _line_count(text: str) -> int:
    """The number of lines up to the last one that is not blank (what ``_lines`` yields), counted in C."""
    end = len(text.rstrip())
    if end == 0:
        return 0
    return sum(text.count(c, 0, end) for c in _BREAKS) - text.count("\r\n", 0, end) + 1


def _lines(text: str, split: bool = True) -> Iterator[Any]:
    """The tokens of each line (with ``split=False``: the line itself, or ``[]`` for a blank one), trailing blank
    lines left out, one line at a time. Blank lines are skipped a run at a time, in C (millions of them once cost a
    match object each: a CPU second per 4 MiB)."""
    blank, pos = 0, 0
    while True:
        nonspace = _NONSPACE.search(text, pos)
        if nonspace is None:
            return
        start = nonspace.start()
        if start > pos:  # whitespace only up to ``start``: the lines it ends are blank
            breaks = sum(text.count(c, pos, start) for c in _BREAKS) - text.count("\r\n", pos, start)
            if breaks:
                blank += breaks
                pos = max(text.rfind(c, pos, start) for c in _BREAKS) + 1
        match = _LINE.match(text, pos)
        assert match is not None  # it matches any line, up to the end of the text
        for _ in range(blank):
            yield []
        blank = 0
        yield match.group(1).split() if split else match.group(1)
        pos = match.end()


# A decimal number as judges read one: ASCII digits only (float() also takes underscores, non-ASCII digits,
# "inf" and "nan", which no judge prints or accepts as numbers)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _is_float_token(token: str) -> bool:
    return any(c in token for c in ".eE") and _number(token) is not None


def _number(token: str) -> float | None:
    if _NUMBER.fullmatch(token) is None:
        return None
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _token_match(got: str, want: str) -> bool:
    """Equal tokens; or numbers within ``FLOAT_TOLERANCE`` when either is written with a point or an exponent:
    absolute, or relative to the expected number when that one is a real (an integer answer printed as a float
    gets no relative slack: 1000000008.0 is not 1000000007)."""
    if got == want:
        return True
    want_real = _is_float_token(want)
    if not (want_real or _is_float_token(got)):
        return False
    a, b = _number(got), _number(want)
    if a is None or b is None:
        return False
    return abs(a - b) <= FLOAT_TOLERANCE or (want_real and abs(a - b) <= FLOAT_TOLERANCE * abs(b))


RELEASE_BOUND, RELEASE_SLACK = 4, 1 << 16


def release_stdio_match(actual: str, expected: str) -> tuple[bool, str]:
    """The GiFT release's comparison of standard output (APPS's ``run_test``, stdin branch), for numbers that
    compare with the paper's: the output's lines stripped and joined equal the expected text stripped; or its
    non-empty lines equal the expected non-empty lines stripped; or both are one float per line, close (numpy's
    allclose); or, last, the sets of each non-empty line's token set are equal (lines and tokens in any order,
    repeats ignored), also with numbers rounded to 3 decimals. More lenient than ``stdio_match``, by design.

    An output more than 4 times as long as the expected one (and 64 KiB) is judged by ``stdio_match`` instead: the
    release's comparison builds objects for every line and token (600,000 distinct lines once took the parent
    3.7 s and 393 MiB), and such an output could pass it only by repeating, reordering or padding lines.
    """
    if len(actual) > RELEASE_BOUND * len(expected) + RELEASE_SLACK:
        return stdio_match(actual, expected)
    lines = actual.splitlines()
    want = expected.strip()
    if "\n".join(lines).strip() == want or "\n".join(line.strip() for line in lines).strip() == want:
        return True, ""
    if lines == [expected]:
        return True, ""
    want_lines = [line.strip() for line in expected.split("\n") if line]
    kept = [line for line in lines if line]
    if lines == want_lines or kept == want_lines:
        return True, ""
    try:
        got_f, want_f = [float(x) for x in kept], [float(x) for x in want_lines]
        if len(got_f) == len(want_f) and all(math.isclose(a, b, rel_tol=0, abs_tol=1e-8 + 1e-5 * abs(b))
                                             for a, b in zip(got_f, want_f, strict=True)):
            return True, ""
    except (ValueError, OverflowError):
        pass
    got_sets = {frozenset(line.split()) for line in kept if line.split()}
    want_sets = {frozenset(line.split()) for line in want_lines}
    if got_sets == want_sets:
        return True, ""
    try:
        if {frozenset(round(float(t), 3) for t in s) for s in got_sets} == \
                {frozenset(round(float(t), 3) for t in s) for s in want_sets}:
            return True, ""
    except (ValueError, OverflowError):
        pass
    ok, detail = stdio_match(actual, expected)
    return False, detail or "output differs (the release's comparison)"


def stdio_match(actual: str, expected: str) -> tuple[bool, str]:
    """(passed, detail): detail names the first difference. The program's lines are split only as far as the
    expected line's tokens and one more (a line of millions of tokens, split whole, once took the parent 27 times
    the output's size in memory)."""
    got, want = _lines(actual, split=False), _lines(expected)
    i = 0
    for i, (line, w) in enumerate(itertools.zip_longest(got, want), start=1):
        g = line if line is None or isinstance(line, list) else line.split(None, len(w or ()))
        if g is None or w is None:
            n_got, n_want = _line_count(actual), _line_count(expected)
            ends = " (output ends early)" if n_got < n_want else ""
            return False, f"output has {n_got} lines, expected {n_want}{ends}"
        if len(g) != len(w) or not all(_token_match(a, b) for a, b in zip(g, w, strict=True)):
            return False, f"line {i}: got {short(' '.join(g), 120)}, expected {short(' '.join(w), 120)}"
    return True, ""
