"""The sandbox's pure parts, with literal inputs: the wire codec, the judges, test plans, the probe's checks."""

from __future__ import annotations

import json
import math

import pytest

from giftgen.errors import InputError
from giftgen.sandbox.codec import Opaque, WireError, from_wire, to_wire, values_match
from giftgen.sandbox.judge import check_value, stdio_match
from giftgen.sandbox.plan import FROM_REFERENCE, make_plan
from giftgen.sandbox.probe import check_report
from giftgen.sandbox.verdict import STATUSES, Limits, Verdict

# ------------------------------------------------------------------------------------------------ codec


@pytest.mark.parametrize("value", [
    None, True, 0, -7, 10**5000, 1.5, float("inf"), "héllo\ud800", b"\x00\xff", 3 + 4j,
    [1, [2, (3, 4)]], (1,), (), {1: "a", (2, 3): [4]}, {1, 2}, frozenset({(1, 2)}), {"k": {"s": [1]}},
], ids=lambda v: type(v).__name__)
def test_plain_values_survive_the_wire(value):
    wire = json.loads(json.dumps(to_wire(value)))
    back = from_wire(wire)
    assert back == value and type(back) is type(value)


def test_exact_numbers_dict_views_deques_and_arrays_survive_the_wire():
    from array import array
    from collections import deque
    from decimal import Decimal
    from fractions import Fraction

    for value in [Decimal("-1.50"), Fraction(-3, 7), {1: "a", 2: "b"}.keys(), {1: (2,)}.items(), deque([1, 2], 3),
                  array("q", [1, -2]), array("d", [0.5]), array("u", "hé")]:
        back = from_wire(json.loads(json.dumps(to_wire(value))))
        assert type(back) is type(value) and back == value and str(back) == str(value), value
    values = from_wire(to_wire({"a": [1], "b": 2}.values()))
    assert type(values) is type({}.values()) and list(values) == [[1], 2]
    assert from_wire(to_wire({1: 2}.keys())) == {1} and from_wire(to_wire(Decimal(4))) == 4
    for wire in [{"dec": "x"}, {"dec": "1" * 5000}, {"fr": [1, 0]}, {"fr": [1.5, 2]}, {"dk": [[1]]}, {"dq": [[], -1]},
                 {"ar": ["b", [300]]}, {"ar": ["i", [1.5]]}, {"ar": ["O", []]}]:
        with pytest.raises(WireError):
            from_wire(wire)


def test_tuples_and_lists_stay_distinct():
    assert from_wire(to_wire((1, 2))) != [1, 2]
    assert from_wire(to_wire([1, 2])) == [1, 2]


def test_subclasses_become_their_base_values():
    from collections import Counter, OrderedDict, namedtuple

    point = namedtuple("point", "x y")
    assert from_wire(to_wire(point(1, 2))) == (1, 2)
    assert type(from_wire(to_wire(Counter("aab")))) is dict
    assert from_wire(to_wire(OrderedDict(a=1))) == {"a": 1}

    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    decoded = from_wire(to_wire(Liar(3)))
    assert type(decoded) is int and decoded == 3 and decoded != 4


def test_objects_that_are_not_plain_data_become_opaque():
    class Always:
        def __eq__(self, other):
            return True

    decoded = from_wire(to_wire(Always()))
    assert isinstance(decoded, Opaque)
    assert decoded != decoded.__class__("Always") and not values_match(decoded, 1)
    assert not check_value("eq", decoded, 1)


@pytest.mark.parametrize("wire", [{"t": 1}, {"q": []}, {"t": [], "s": []}, {"d": [[[1], 2]]}, {"c": ["a", 1]},
                                  {"i": "zz"}, object()])
def test_malformed_wire_is_rejected(wire):
    with pytest.raises(WireError):
        from_wire(wire)


# ------------------------------------------------------------------------------------------------ judges


def test_values_match_follows_evalplus():
    assert values_match(3, 3) and not values_match(3, 4)
    assert values_match(0.1 + 0.2, 0.3)  # float expected: atol 1e-6 by default
    assert not values_match(0.3001, 0.3)
    assert values_match(1.00001, 1.0, atol=1e-4) and not values_match(1.001, 1.0, atol=1e-4)
    assert values_match([1.0, 2.0000001], [1.0, 2.0])
    assert not values_match([1, 2], (1, 2))
    assert not values_match(float("nan"), float("nan"))


def test_check_value_rules():
    assert check_value("json", (1, [2, 3]), [1, [2, 3]])
    assert not check_value("eq", (1, 2), [1, 2])
    assert check_value("json_wrapped", 3, 3) and check_value("json_wrapped", [3], 3)
    assert not check_value("json_wrapped", [[3]], 3) and not check_value("json", [3], 3)
    assert check_value("truthy", [0], None) and check_value("falsy", "", None)
    assert check_value("truthy", Opaque("re.Match"), None, truth=True)
    assert not check_value("falsy", Opaque("re.Match"), None, truth=True)
    assert check_value("is", True, True) and not check_value("is", 1, True)
    assert not check_value("is", True, True, singleton=False)  # numpy's True_ arrives as True, and is not True
    assert not check_value("falsy", Opaque("numpy.ndarray"), None) and not check_value("truthy", Opaque("T"), None)
    assert check_value("isclose", 4188.79, 4188.790204786391, rel_tol=0.001)
    from decimal import Decimal
    from fractions import Fraction

    # math.isclose takes what float() takes: the exact numbers too (a NaN, or too large a one, fails)
    assert check_value("isclose", Decimal("0.5"), 0.5) and check_value("isclose", Fraction(1, 3), 1 / 3)
    assert not check_value("isclose", Decimal("sNaN"), 0.5) and not check_value("isclose", Fraction(10**400), 1.0)
    assert not check_value("isclose", Fraction(1, 2), 0.6) and not check_value("isclose", "0.5", 0.5)
    assert check_value("not_none", Opaque("re.Match"), Opaque("re.Match"))
    assert not check_value("not_none", None, Opaque("re.Match"))


@pytest.mark.parametrize("actual", ["1 2\n3\n", "1   2\n3", "1 2  \n3\n\n", " 1 2\n3\n"])
def test_stdio_accepts_presentation_variants(actual):
    assert stdio_match(actual, "1 2\n3\n")[0]


@pytest.mark.parametrize("actual", ["1 2\n", "1 2 3\n", "1\n2 3\n", "1 2\n4\n", "1 2\n3\n5\n", "", "12\n3\n"])
def test_stdio_rejects_wrong_and_truncated_output(actual):
    ok, detail = stdio_match(actual, "1 2\n3\n")
    assert not ok and detail


def test_stdio_floats_with_tolerance_only():
    assert stdio_match("0.3333333\n", "0.333333333\n")[0]
    assert not stdio_match("0.3334\n", "0.3333\n")[0]
    assert not stdio_match("10\n", "11\n")[0]  # integers exactly
    assert stdio_match("3.0\n", "3\n")[0] and stdio_match("2.9999999\n", "3\n")[0]


@pytest.mark.parametrize("actual", ["1000000008.0", "1000000006.5", "1.000000008e9", "３.0", "3_0.0", "٣.0", "+3_0.0"])
def test_stdio_numbers_are_ascii_and_integers_get_no_relative_tolerance(actual):
    # The relative tolerance is for real-valued answers: an integer answer printed as a float (a large one) once
    # passed when off by one; and float() reads underscores and non-ASCII digits, which no judge takes as numbers.
    expected = "1000000007\n" if actual[0] in "1" else "30\n" if "_" in actual else "3\n"
    assert not stdio_match(actual + "\n", expected)[0], (actual, expected)


# ------------------------------------------------------------------------------------------------ plans


def _problem(tests, **extra):
    return {"problem_id": "t/1", "entry_point": "f", "tests": json.dumps(tests), **extra}


def test_readable_asserts_become_calls_judged_by_the_parent():
    plan = make_plan(_problem({"kind": "assert", "setup": "import math", "asserts": [
        "assert f(1, [2]) == (3,)", "assert not f(0)", "assert f(x=2)", "assert f(1) is None",
        "assert math.isclose(f(2), 3.14, rel_tol=0.001)", "assert (1, 2) == f(-1, inf)"]}))
    assert plan.mode == "calls" and plan.setup == "import math"
    rules = [(c.rule, c.args, dict(c.kwargs), c.expected) for c in plan.calls]
    assert rules[0] == ("eq", (1, [2]), {}, (3,))
    assert rules[1][0] == "falsy" and rules[2][:3] == ("truthy", (), {"x": 2}) and rules[3][0] == "is"
    assert plan.calls[4].rule == "isclose" and plan.calls[4].rel_tol == 0.001
    assert plan.calls[5].args == (-1, math.inf) and plan.calls[5].expected == (1, 2)


def test_arithmetic_on_literals_is_read_too():
    plan = make_plan(_problem({"kind": "assert", "setup": "", "asserts": [
        "assert f(3 * 5 * 7) == True", "assert f('ab' * 3, [0] * 2 + [1]) == 2 ** 10", "assert f(-1.5) == -(2 // 3)"]}))
    assert plan.mode == "calls"
    assert [(c.args, c.expected) for c in plan.calls] == [((105,), True), (("ababab", [0, 0, 1]), 1024),
                                                          ((-1.5,), 0)]
    for unbounded in ("assert f(10 ** 100000) == 1", "assert f('a' * 10 ** 9) == 1", "assert f(1 / 0) == 1",
                      "assert f(len('a')) == 1"):
        assert make_plan(_problem({"kind": "assert", "setup": "", "asserts": [unbounded]})).mode == "oracle"


def test_other_asserts_go_to_the_oracle():
    plan = make_plan(_problem({"kind": "assert", "setup": "", "asserts": [
        "assert f(1) == 2", "assert set(f(2)) == set([1, 2])"]}))
    assert plan.mode == "oracle" and plan.oracle["asserts"][1].startswith("assert set(")
    assert plan.size == 2


def test_check_functions():
    simple = "def check(candidate):\n    assert True\n    assert candidate(2) == 4, 'msg'\n"
    plan = make_plan(_problem({"kind": "check", "code": simple, "entry_point": "f"}))
    assert plan.mode == "calls" and len(plan.calls) == 1 and plan.calls[0].expected == 4
    loop = "def check(candidate):\n    for i in range(3):\n        assert candidate(i) == 2 * i\n"
    plan = make_plan(_problem({"kind": "check", "code": loop, "entry_point": "f"}))
    assert plan.mode == "oracle" and plan.size == 1


def test_call_tests_select_base_plus_and_limit():
    tests = {"kind": "call", "fn_name": "f", "inputs": [[1], [[2, 3]]], "inputs_py": "[[1], [(2, 3)]]",
             "outputs": None, "plus_inputs": [[4], [5]], "atol": 0}
    problem = _problem(tests, reference="def f(x):\n    return x\n")
    assert [c.args for c in make_plan(problem, "all").calls] == [(1,), ((2, 3),), (4,), (5,)]
    assert [c.args for c in make_plan(problem, "base").calls] == [(1,), ((2, 3),)]
    assert [c.args for c in make_plan(problem, "plus").calls] == [(4,), (5,)]
    assert [c.args for c in make_plan(problem, "all", max_tests=3).calls] == [(1,), ((2, 3),), (4,)]
    plan = make_plan(problem)
    assert plan.needs_reference and plan.calls[0].expected is FROM_REFERENCE and plan.reference_key


def test_call_tests_with_outputs_compare_as_json():
    plan = make_plan(_problem({"kind": "call", "fn_name": "g", "inputs": [[1]], "outputs": [[1, 2]]}))
    assert not plan.needs_reference and plan.calls[0].rule == "json" and plan.calls[0].fn == "g"
    wrapped = make_plan(_problem({"kind": "call", "fn_name": "g", "inputs": [[1]], "outputs": [2],
                                  "wrapped_outputs": True, "setup": "import math"}))
    assert wrapped.calls[0].rule == "json_wrapped" and wrapped.setup == "import math"
    not_none = make_plan(_problem({"kind": "call", "fn_name": "g", "inputs": [[1]], "outputs": None,
                                   "output_not_none": True}, reference="def g(x):\n    return x\n"))
    assert not_none.calls[0].rule == "not_none"


def test_python_literal_inputs_keep_tuples_sets_and_special_floats():
    plan = make_plan(_problem({"kind": "call", "fn_name": "f", "inputs": [[0]], "outputs": [0],
                               "inputs_py": "[[(1, 2), {3}, set(), 1j, -inf]]"}))
    args = plan.calls[0].args
    assert args[:4] == ((1, 2), {3}, set(), 1j) and args[4] == -math.inf


@pytest.mark.parametrize("tests, extra, message", [
    ({"kind": "nope"}, {}, "unknown test kind"),
    ({"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": None}, {}, "reference"),
    ({"kind": "call", "fn_name": "f", "inputs": [[1]], "inputs_py": "[[x]]", "outputs": [1]}, {}, "literal"),
    ({"kind": "call", "fn_name": "f", "inputs": [1], "outputs": [1]}, {}, "argument lists"),
    ({"kind": "stdio", "inputs": ["1"], "outputs": []}, {}, "same length"),
    ({"kind": "assert", "setup": "", "asserts": []}, {}, "no tests"),
])
def test_bad_problems_are_input_errors(tests, extra, message):
    with pytest.raises(InputError, match=message):
        make_plan(_problem(tests, **extra))


def test_plus_selection_needs_plus_inputs():
    with pytest.raises(InputError, match="plus"):
        make_plan(_problem({"kind": "stdio", "inputs": ["1"], "outputs": ["1"]}), "plus")


# ------------------------------------------------------------------------------------------------ verdicts and probe


def test_verdict_columns_are_uniform():
    v = Verdict("wrong_answer", False, [{"status": "pass", "detail": ""}, {"status": "not_run", "detail": None}],
                None, 0.123456)
    cols = v.to_columns()
    assert cols == {"status": "wrong_answer", "passed": False, "error": "", "duration": 0.1235,
                    "test_results": [{"status": "pass", "detail": ""}, {"status": "not_run", "detail": ""}]}
    assert set(STATUSES) >= {"pass", "sandbox_error"} and len(STATUSES) == 8


def test_limits_are_validated():
    from giftgen.errors import ConfigError

    with pytest.raises(ConfigError):
        Limits(timeout=0).validate()
    with pytest.raises(ConfigError):
        Limits(memory_mb=16).validate()


def test_probe_report_names_every_missing_protection():
    info = {"uids": [2_000_000_002, 2_000_000_003]}
    good = {"uid": 2_000_000_002, "pid": 1, "ppid": 0, "interfaces": ["lo"], "inet": "EACCES",
            "kill_parent": "ESRCH", "read_outside": "EACCES", "write_outside": "EROFS", "read_python": "allowed",
            "write_scratch": "allowed", "memfd": "EPERM", "sysv_shm": "EPERM", "rlimit_as": 1, "rlimit_fsize": 2,
            "rlimit_cpu": 3, "environ": ["PATH", "HOME"],
            "status": {"CapEff": ["0000000000000000"], "NoNewPrivs": ["1"], "Seccomp": ["2"]}}
    rlimits = {"RLIMIT_AS": 1, "RLIMIT_FSIZE": 2, "RLIMIT_CPU": 3}
    assert check_report(good, info, rlimits) == []
    bad = dict(good, uid=0, ppid=7, interfaces=["eth0", "lo"], inet="allowed", read_outside="allowed",
               memfd="allowed", sysv_shm="allowed",
               environ=["PATH", "HF_TOKEN"], status={"CapEff": ["000001ffffffffff"], "NoNewPrivs": ["0"],
                                                     "Seccomp": ["0"]})
    problems = " | ".join(check_report(bad, info, rlimits))
    for needle in ("unprivileged uid", "capabilities", "no_new_privs", "seccomp", "pid namespace",
                   "network namespace", "network sockets", "Landlock", "HF_TOKEN", "memfds", "System V"):
        assert needle in problems


@pytest.mark.parametrize("error, hint", [
    ("OSError: the sandbox needs root: it drops each program to an unprivileged uid of its own", "run giftgen as root"),
    ("OSError: Landlock is not available", "CONFIG_SECURITY_LANDLOCK"),
    ("OSError: [Errno 1] unshare: Operation not permitted", "CAP_SYS_ADMIN"),
])
def test_refusals_say_what_is_missing_and_how_to_get_it(error, hint):
    from giftgen.sandbox.process import explain

    message = explain(error)
    assert message.startswith("the sandbox cannot start: ") and error in message and hint in message


def test_short_is_repr_cut_to_its_limit_without_writing_all_of_it():
    # Messages describe a reply by its repr, capped: written only as far as the cap (a reply of millions of items
    # once cost the parent its whole repr), and the same text as repr's wherever it is kept.
    from giftgen.sandbox.codec import short

    values = [None, True, -5, 1.5, float("nan"), "a'b", 'a"b', "x" * 300, b"\x00\xff", 1 + 2j, [], (), set(),
              frozenset(), {}, (1,), [1, (2,), {3: 4}], {1: [2, {3}]}, frozenset({1, 2}), {"k": "v" * 10}, [[[]]],
              ((),), list(range(10_000))]
    for value in values:
        for limit in (5, 20, 200):
            text = repr(value)
            assert short(value, limit) == (text if len(text) <= limit else text[: limit - 3] + "..."), (value, limit)
    assert short([10**5000]) == f"[<int of {(10**5000).bit_length()} bits>]"
    import time

    big = list(range(3_000_000))
    start = time.process_time()
    for _ in range(100):
        short(big)
    assert time.process_time() - start < 0.5  # repr(big) once each: some 10 s
