"""From a seed row to a test plan: what to run in the sandbox and how the parent will judge it.

Contract. ``make_plan(problem, tests=, max_tests=)`` reads the row's ``tests`` (README, "Seed schema") and returns
a ``Plan`` in one of three modes, or raises ``InputError``:

- ``calls``: the parent calls functions of the loaded program with arguments and judges each returned value
  itself. ``call`` tests land here, and so do ``assert`` and ``check`` tests whose every assertion has a form the
  parent can read (``f(literals) == literal``, ``f(...)``, ``not f(...)``, ``f(...) is True``,
  ``math.isclose(f(...), literal, ...)``; literals include bounded arithmetic such as ``3 * 5 * 7``): the
  expected values stay in the parent. For an ``assert`` setup of imports only (MBPP's ``test_imports``), the
  setup also runs in the program's namespace, as in the original harness.
- ``oracle``: the other assert and check tests run in a separate sandboxed process, with the program's functions
  replaced by proxies (see ``child``).
- ``stdio``: one fresh process per standard-input case; the parent compares the output (``judge.stdio_match``).

``script`` tests (unit-test files, CodeInsight) always take the oracle: one test per script.

Selection: ``tests`` is ``base`` (the problem's own tests), ``plus`` (only ``plus_inputs``) or ``all``;
``max_tests`` keeps the first N of them (APPS "first 10"). ``call`` tests read their arguments from ``inputs_py``/``plus_inputs_py`` (one Python literal) when present, else from the JSON lists;
``output_not_none`` and ``wrapped_outputs`` pick the comparison (see ``judge.check_value``); ``setup`` (call and
stdio tests) runs in the program's namespace before the program.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from giftgen.errors import InputError
from giftgen.sandbox.codec import clip, to_wire

SELECTIONS = ("base", "plus", "all")
STDIO_COMPARE = ("tokens", "release")  # how stdio outputs are judged (judge.stdio_match, judge.release_stdio_match)
FROM_REFERENCE = object()  # expected output still to be computed by running the reference


@dataclass(frozen=True)
class Call:
    """One call of the program's function, and how the parent judges its result."""

    fn: str
    args: tuple
    kwargs: Mapping[str, Any]
    label: str
    rule: str = "value"  # see judge.check_value
    expected: Any = FROM_REFERENCE
    atol: float = 0.0
    rel_tol: float = 1e-9
    abs_tol: float = 0.0

    @functools.cached_property
    def wire(self) -> dict[str, Any]:
        """The call as a child receives it (encoded once: plans are cached and reused)."""
        return {"fn": self.fn, "args": to_wire(list(self.args)), "kwargs": to_wire(dict(self.kwargs))}


@dataclass(frozen=True)
class Plan:
    mode: str  # calls | oracle | stdio
    calls: tuple[Call, ...] = ()
    setup: str = ""  # imports run in the program's namespace first (MBPP's test_imports)
    oracle: dict[str, Any] | None = None
    stdio: tuple[tuple[str, str], ...] = ()
    reference: str | None = None
    reference_key: str = ""
    labels: tuple[str, ...] = field(default=())
    compare: str = "tokens"  # stdio: judge.stdio_match (tokens) or judge.release_stdio_match (release)

    @property
    def needs_reference(self) -> bool:
        return any(c.expected is FROM_REFERENCE for c in self.calls)

    @property
    def size(self) -> int:
        return len(self.labels)


def make_plan(problem: Mapping[str, Any], tests: str = "all", max_tests: int | None = None) -> Plan:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test code with old escape sequences: not the user's concern here
        return _make_plan(problem, tests, max_tests)


def _make_plan(problem: Mapping[str, Any], tests: str, max_tests: int | None) -> Plan:
    if tests not in SELECTIONS:
        raise InputError(f"tests must be one of {', '.join(SELECTIONS)}; got {tests!r}")
    spec = problem.get("tests")
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as e:  # also an integer of more than 4,300 digits, which int() refuses
            raise InputError(f"problem {_pid(problem)}: `tests` is not valid JSON ({e})") from None
        except RecursionError:
            raise InputError(f"problem {_pid(problem)}: `tests` is nested too deeply") from None
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise InputError(f"problem {_pid(problem)}: `tests` must be an object with a `kind`")
    kind = spec["kind"]
    entry = problem.get("entry_point") or spec.get("entry_point") or spec.get("fn_name")
    if kind == "assert":
        plan = _assert_plan(problem, spec, entry, tests, max_tests)
    elif kind == "check":
        plan = _check_plan(problem, spec, entry, tests)
    elif kind == "call":
        plan = _call_plan(problem, spec, entry, tests, max_tests)
    elif kind == "stdio":
        plan = _stdio_plan(problem, spec, tests, max_tests)
    elif kind == "script":
        plan = _script_plan(problem, spec, entry, tests, max_tests)
    else:
        raise InputError(f"problem {_pid(problem)}: unknown test kind {kind!r} (assert, check, call, stdio or "
                         "script)")
    if plan.size == 0:
        raise InputError(f"problem {_pid(problem)}: no tests to run (selection {tests!r})")
    return plan


def _pid(problem: Mapping[str, Any]) -> str:
    return str(problem.get("problem_id") or "?")


def _base_only(problem: Mapping[str, Any], kind: str, tests: str) -> None:
    if tests == "plus":
        raise InputError(f"problem {_pid(problem)}: `{kind}` tests have no plus inputs (use --tests base or all)")


# ------------------------------------------------------------------------------------------------ assert/check


_SPECIAL_NAMES = {"inf": float("inf"), "nan": float("nan")}


class _Specials(ast.NodeTransformer):
    """``inf`` and ``nan`` (as ``repr`` writes them) and ``set()``/``frozenset()`` become constants."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _SPECIAL_NAMES:
            return ast.copy_location(ast.Constant(_SPECIAL_NAMES[node.id]), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if (isinstance(node.func, ast.Name) and node.func.id in ("set", "frozenset") and not node.args
                and not node.keywords):
            return ast.copy_location(ast.Constant(set() if node.func.id == "set" else frozenset()), node)
        return node


def _literal(node: ast.AST) -> tuple[bool, Any]:
    """(True, value) when ``node`` is a literal; also accepts ``inf``, ``nan``, ``set()``, ``frozenset()`` and
    arithmetic on literals (``3 * 5 * 7``, ``'a' * 100``, ``2 ** 10``), within size bounds."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        value = _fold(_Specials().visit(ast.parse(ast.unparse(node), mode="eval")).body)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError, ZeroDivisionError):
        return False, None
    # `[[0] * 10**6] * 1000` is small to build (shared lists) but not to send or compare: bound what it holds
    return (True, value) if _weight(value) <= LITERAL_BOUND else (False, None)


LITERAL_BOUND = 1_000_000  # elements (and characters) a literal with arithmetic may expand to


def _weight(value: Any, bound: int = LITERAL_BOUND) -> int:
    """Elements and characters in ``value``, counted through shared references, stopping past ``bound``."""
    total = 0
    stack = [value]
    while stack and total <= bound:
        v = stack.pop()
        total += 1
        if isinstance(v, (str, bytes)):
            total += len(v)
        elif isinstance(v, dict):
            stack += v.keys()
            stack += v.values()
        elif isinstance(v, (list, tuple, set, frozenset)):
            if total + len(v) > bound:
                return bound + 1
            stack += v
    return total


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
        ast.Pow: lambda a, b: a ** b}
_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def _fold(node: ast.AST) -> Any:
    """Evaluate a literal expression with arithmetic; anything else (names, calls, attributes) is refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (*_PLAIN, set, frozenset)):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = [_fold(e) for e in node.elts]
        return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_fold(k): _fold(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _fold(node.operand)
        if type(value) not in (int, float, complex):
            raise ValueError("not a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _fold(node.left), _fold(node.right)
        numbers = (int, float, complex)
        if isinstance(node.op, ast.Pow):
            if type(left) not in numbers or type(right) not in numbers or abs(right) > 4096 or (
                    type(left) is int and left.bit_length() * abs(right) > 65536):
                raise ValueError("power out of bounds")
        elif isinstance(node.op, ast.Mult) and (isinstance(left, (str, bytes, list, tuple))
                                                or isinstance(right, (str, bytes, list, tuple))):
            count, seq = (right, left) if isinstance(left, (str, bytes, list, tuple)) else (left, right)
            if type(count) is not int or count * _weight(seq) > LITERAL_BOUND:
                raise ValueError("repetition out of bounds")
        value = _OPS[type(node.op)](left, right)
        if type(value) is int and value.bit_length() > 65536:
            raise ValueError("integer out of bounds")
        return value
    raise ValueError(f"not a literal: {type(node).__name__}")


def _call_of(node: ast.AST, names: set[str]) -> tuple[str, tuple, dict] | None:
    """``name(literal, ..., key=literal)`` with ``name`` in ``names`` -> (name, args, kwargs)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
        return None
    args = []
    for a in node.args:
        ok, value = _literal(a)
        if not ok or isinstance(a, ast.Starred):
            return None
        args.append(value)
    kwargs = {}
    for k in node.keywords:
        ok, value = _literal(k.value)
        if not ok or k.arg is None:
            return None
        kwargs[k.arg] = value
    return node.func.id, tuple(args), kwargs


def _read_assert(test: ast.AST, names: set[str], fn: str | None) -> Call | None:
    """An assertion the parent can judge by itself, as a Call; None for anything else."""

    def make(found: tuple[str, tuple, dict], rule: str, expected: Any = None, **extra: Any) -> Call:
        name, args, kwargs = found
        target = fn or name
        label = clip(f"{target}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})", 160)
        return Call(target, args, kwargs, label, rule, expected, **extra)

    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        op = test.ops[0]
        for call_side, other in ((left, right), (right, left)):
            found = _call_of(call_side, names)
            if found is None:
                continue
            ok, value = _literal(other)
            if not ok:
                return None
            if isinstance(op, ast.Eq):
                return make(found, "eq", value)
            if isinstance(op, ast.Is) and call_side is left and value in (True, False, None) and type(value) in (
                    bool, type(None)):
                return make(found, "is", value)
            return None
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        found = _call_of(test.operand, names)
        return make(found, "falsy") if found else None
    found = _call_of(test, names)
    if found:
        return make(found, "truthy")
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute) and test.func.attr == "isclose"
            and isinstance(test.func.value, ast.Name) and test.func.value.id == "math" and len(test.args) == 2):
        found = _call_of(test.args[0], names)
        ok, value = _literal(test.args[1])
        extra = {}
        for k in test.keywords:
            okk, v = _literal(k.value)
            if not okk or k.arg not in ("rel_tol", "abs_tol") or type(v) not in (int, float):
                return None
            extra[k.arg] = float(v)
        if found and ok and type(value) in (int, float):
            return make(found, "isclose", value, **extra)
    return None


def _imports_only(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body)


def _function_names(entry: str | None) -> set[str]:
    return {entry} if entry else set()


def _assert_plan(problem: Mapping[str, Any], spec: Mapping[str, Any], entry: str | None, tests: str,
                 max_tests: int | None) -> Plan:
    _base_only(problem, "assert", tests)
    setup = spec.get("setup") or ""
    asserts = spec.get("asserts")
    if not isinstance(asserts, list) or not all(isinstance(a, str) for a in asserts) or not isinstance(setup, str):
        raise InputError(f"problem {_pid(problem)}: assert tests need `asserts` (a list of strings)")
    _check_setup(problem, setup)
    if max_tests is not None:
        asserts = asserts[:max_tests]
    calls = []
    for source in asserts:
        try:
            body = ast.parse(source).body
        except SyntaxError as e:
            raise InputError(f"problem {_pid(problem)}: an assert does not parse ({e.msg})") from None
        except (RecursionError, MemoryError, ValueError) as e:
            raise InputError(f"problem {_pid(problem)}: an assert is too deeply nested to parse "
                             f"({type(e).__name__})") from None
        names = _function_names(entry) or _callee_names(body)
        call = None
        if len(body) == 1 and isinstance(body[0], ast.Assert):
            call = _read_assert(body[0].test, names, entry)
        calls.append(call)
    safe_setup = setup if _imports_only(setup) else ""
    labels = tuple(clip(a.strip(), 160) for a in asserts)
    if all(calls):
        return Plan("calls", calls=tuple(calls), setup=safe_setup, labels=labels)
    oracle = {"kind": "assert", "setup": setup, "asserts": asserts, "entry_point": entry,
              "helpers": _prompt_helpers(problem, entry)}
    return Plan("oracle", setup=safe_setup, oracle=oracle, labels=labels)


def _callee_names(body: list[ast.stmt]) -> set[str]:
    """Without an entry point: the called names that are not builtins."""
    return {n.func.id for s in body for n in ast.walk(s)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and not hasattr(builtins, n.func.id)}


def _check_plan(problem: Mapping[str, Any], spec: Mapping[str, Any], entry: str | None, tests: str) -> Plan:
    _base_only(problem, "check", tests)
    code = spec.get("code")
    entry = spec.get("entry_point") or entry
    if not isinstance(code, str) or not entry:
        raise InputError(f"problem {_pid(problem)}: check tests need `code` and an `entry_point`")
    try:
        module = ast.parse(code)
    except SyntaxError as e:
        raise InputError(f"problem {_pid(problem)}: the check code does not parse ({e.msg})") from None
    if not any(isinstance(node, ast.FunctionDef) and node.name == "check" for node in module.body):
        raise InputError(f"problem {_pid(problem)}: the check code defines no `check(candidate)` function")
    calls = _read_check(module, entry)
    if calls:
        return Plan("calls", calls=tuple(calls), labels=tuple(c.label for c in calls))
    oracle = {"kind": "check", "code": code, "entry_point": entry, "helpers": _prompt_helpers(problem, entry)}
    return Plan("oracle", oracle=oracle, labels=(f"check({entry})",))


def _prompt_helpers(problem: Mapping[str, Any], entry: str | None) -> str:
    """The code the prompt gives the program before its function (HumanEval/32's ``poly``, /38's
    ``encode_cyclic``): the top-level statements of the reference that lie wholly inside ``prompt_head``. The
    oracle runs them in the test's namespace, so the test calls the problem's own helpers, never a program's
    redefinition of them."""
    head, reference = problem.get("prompt_head"), problem.get("reference")
    if not isinstance(head, str) or not isinstance(reference, str) or not head:
        return ""
    try:
        body = ast.parse(reference).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ""
    if not reference.startswith(head.rstrip()):
        return ""
    inside = head.count("\n")
    end = 0
    for stmt in body:
        if (stmt.end_lineno or 0) > inside or (
                isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == entry):
            break
        end = stmt.end_lineno or 0
    return "".join(reference.splitlines(keepends=True)[:end])


def _read_check(module: ast.Module, entry: str) -> list[Call] | None:
    """A ``def check(candidate)`` made only of readable asserts -> its Calls; None otherwise."""
    check = None
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check" and check is None:
            check = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)) or (
                isinstance(node, ast.Assign) and _literal(node.value)[0]) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            continue
        else:
            return None
    if check is None or len(check.args.args) != 1 or check.decorator_list:
        return None
    param = check.args.args[0].arg
    calls = []
    for stmt in check.body:
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            continue
        if isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant) and stmt.test.value:
            continue  # `assert True, "..."`
        if not isinstance(stmt, ast.Assert):
            return None
        call = _read_assert(stmt.test, {param}, entry)
        if call is None:
            return None
        calls.append(call)
    return calls or None


def _script_plan(problem: Mapping[str, Any], spec: Mapping[str, Any], entry: str | None, tests: str,
                 max_tests: int | None) -> Plan:
    """Unit-test scripts (CodeInsight): always the oracle, one script per test, run in one namespace after
    ``setup`` and the prompt's own code; an imports-only ``setup`` also runs before the program (the release runs
    each script after its import preamble and the program, in one namespace)."""
    _base_only(problem, "script", tests)
    setup, scripts = spec.get("setup") or "", spec.get("scripts")
    if not isinstance(scripts, list) or not scripts or not all(isinstance(x, str) for x in scripts) or not isinstance(
            setup, str):
        raise InputError(f"problem {_pid(problem)}: script tests need `scripts` (a non-empty list of strings)")
    _check_setup(problem, setup)
    names = spec.get("names")
    if not isinstance(names, list) or len(names) != len(scripts) or not all(isinstance(n, str) for n in names):
        names = [f"script {i + 1}" for i in range(len(scripts))]
    if max_tests is not None:
        scripts, names = scripts[:max_tests], names[:max_tests]
    for source in scripts:
        _parsed(problem, source, "a test script")
    # the setup first, then the prompt's own code (its imports: `from datetime import datetime` after the
    # preamble's `import datetime`), as the release runs the preamble, then the program, then the test
    helpers = _prompt_helpers(problem, entry)
    oracle = {"kind": "assert", "setup": setup + "\n" + helpers, "asserts": scripts, "entry_point": entry,
              "helpers": ""}
    return Plan("oracle", setup=setup if _imports_only(setup) else "", oracle=oracle,
                labels=tuple(clip(n, 160) for n in names))


# ------------------------------------------------------------------------------------------------ call / stdio


def _argument_lists(problem: Mapping[str, Any], spec: Mapping[str, Any], field: str) -> list[tuple]:
    """The argument lists of ``field`` (``inputs`` or ``plus_inputs``): from ``<field>_py`` (one Python literal,
    for the tuples, sets and complex numbers JSON cannot hold) when present, else from the JSON lists."""
    literal = spec.get(f"{field}_py")
    if isinstance(literal, str):
        try:
            ok, value = _literal(ast.parse(literal, mode="eval").body)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            ok, value = False, None
        if not ok or not isinstance(value, (list, tuple)):
            raise InputError(f"problem {_pid(problem)}: `{field}_py` is not a Python literal list")
    else:
        value = spec.get(field) or []
    if not isinstance(value, (list, tuple)) or not all(isinstance(args, (list, tuple)) for args in value):
        raise InputError(f"problem {_pid(problem)}: `{field}` must be a list of argument lists")
    return [tuple(args) for args in value]


def _call_plan(problem: Mapping[str, Any], spec: Mapping[str, Any], entry: str | None, tests: str,
               max_tests: int | None) -> Plan:
    fn = spec.get("fn_name") or entry
    if not fn:
        raise InputError(f"problem {_pid(problem)}: call tests need `fn_name` or an `entry_point`")
    inputs = _argument_lists(problem, spec, "inputs")
    plus = _argument_lists(problem, spec, "plus_inputs")
    outputs = spec.get("outputs")
    atol = spec.get("atol") or 0.0
    if type(atol) not in (int, float) or not 0 <= atol < math.inf:
        raise InputError(f"problem {_pid(problem)}: `atol` must be a finite number of 0 or more; got {atol!r:.50}")
    atol = float(atol)
    if outputs is not None and (not isinstance(outputs, list) or len(outputs) != len(inputs)):
        raise InputError(f"problem {_pid(problem)}: {len(inputs)} inputs but not as many outputs")
    chosen: list[tuple[tuple, Any, str]] = []
    if tests in ("base", "all"):
        chosen += [(x, FROM_REFERENCE if outputs is None else outputs[i], "") for i, x in enumerate(inputs)]
    if tests in ("plus", "all"):
        chosen += [(x, FROM_REFERENCE, "plus ") for x in plus]
    if max_tests is not None:
        chosen = chosen[:max_tests]
    calls = []
    for args, expected, tag in chosen:
        if spec.get("output_not_none"):
            rule = "not_none"
        elif expected is FROM_REFERENCE:
            rule = "value"
        else:
            rule = "json_wrapped" if spec.get("wrapped_outputs") else "json"
        label = tag + clip(f"{fn}({', '.join(repr(a) for a in args)})", 160)
        calls.append(Call(fn, args, {}, label, rule, expected, atol=atol))
    reference = problem.get("reference")
    if any(c.expected is FROM_REFERENCE for c in calls) and not isinstance(reference, str):
        raise InputError(f"problem {_pid(problem)}: call tests without outputs need a `reference` solution "
                         "to compute them", hint="it is produced by `giftgen seeds`")
    key = ""
    if isinstance(reference, str):
        raw_spec = problem["tests"] if isinstance(problem["tests"], str) else json.dumps(problem["tests"],
                                                                                           sort_keys=True)
        key = hashlib.sha256(f"{fn}\0{tests}\0{max_tests}\0{reference}\0{raw_spec}".encode()).hexdigest()
    return Plan("calls", calls=tuple(calls), setup=_setup(problem, spec), reference=reference, reference_key=key,
                labels=tuple(c.label for c in calls))


def _setup(problem: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    setup = spec.get("setup") or ""
    if not isinstance(setup, str):
        raise InputError(f"problem {_pid(problem)}: `setup` must be a string")
    return _check_setup(problem, setup)


def _check_setup(problem: Mapping[str, Any], setup: str) -> str:
    """``setup``, once it is clear it parses: a broken setup is the problem's fault, never a program's (it once
    failed every program's load with a runtime error, or was left out and let the asserts run without it)."""
    _parsed(problem, setup, "`setup`")
    return setup


def _parsed(problem: Mapping[str, Any], source: str, what: str) -> ast.Module:
    """``source`` parsed, or an ``InputError`` naming the problem and ``what`` did not parse."""
    try:
        return ast.parse(source)
    except SyntaxError as e:
        raise InputError(f"problem {_pid(problem)}: {what} does not parse ({e.msg})") from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise InputError(f"problem {_pid(problem)}: {what} cannot be parsed ({type(e).__name__})") from None


def _stdio_plan(problem: Mapping[str, Any], spec: Mapping[str, Any], tests: str, max_tests: int | None) -> Plan:
    _base_only(problem, "stdio", tests)
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise InputError(f"problem {_pid(problem)}: stdio tests need `inputs` and `outputs` of the same length")
    pairs = list(zip(inputs, outputs, strict=True))
    if not all(isinstance(i, str) and isinstance(o, str) for i, o in pairs):
        raise InputError(f"problem {_pid(problem)}: stdio inputs and outputs must be strings")
    if max_tests is not None:
        pairs = pairs[:max_tests]
    labels = tuple(f"stdin #{i + 1}" for i in range(len(pairs)))
    compare = spec.get("compare") or "tokens"
    if compare not in STDIO_COMPARE:
        raise InputError(f"problem {_pid(problem)}: stdio `compare` must be one of {', '.join(STDIO_COMPARE)}")
    return Plan("stdio", stdio=tuple(pairs), setup=_setup(problem, spec), labels=labels, compare=compare)
