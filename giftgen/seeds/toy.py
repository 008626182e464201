"""The toy programming domain of the miniature: "write ``f(x)``" for compositions of 1-3 integer operations.

Deterministic for a domain (``ToyDomain``, its ``seed`` included); nothing here imports anything heavy.

- **Intents.** An operation is one of add/subtract a constant, multiply by a constant, square, negate, absolute
  value, floor-divide, modulo, max or min with a constant (``OPS``); an intent is a tuple of 1 to 3 operations
  applied to ``x`` in order. Every problem is tested on the same ``TEST_INPUTS`` (wide, both signs), and an
  intent's *signature* is its outputs on them. An intent whose signature equals the identity's, a shorter
  intent's, or a constant's is dropped (it *collapses*: ``mod 3`` then ``mod 5`` is ``mod 3``, ``max 5`` then
  ``min 3`` is the constant 3), since wrong, shorter code would pass its tests.
- **Variety.** ``describe`` writes one of several sentence shapes with one of several paraphrases per operation;
  ``write_code`` writes one of several code styles (``CODE_STYLES``: in-place updates, fresh variables, one nested
  expression, a mix), with per-operation variants (``x * x`` / ``x ** 2`` / ``pow(x, 2)``, ``x += 3`` /
  ``x = 3 + x``, ``if x < 0: x = -x`` / ``abs(x)``, ...). All styles of an intent compute the same function.
- **Splits** (``make_splits``), disjoint by signature, so that no test function is ever seen in pretraining:
  ``pretrain`` (every 1-op intent, all 2-op intents but a held-out share, and ``pretrain_three_op`` 3-op ones),
  ``seed`` (unseen 3-op problems: the Gibbs chain runs on them), ``test3`` (other unseen 3-op problems) and
  ``test2`` (held-out 2-op problems, to watch forgetting).
- **Rows.** ``seed``, ``test3`` and ``test2`` are seed rows in the schema of README "Seed schema" (problem id
  ``toy/<ops>``, entry point ``f``, prompt head ``def f(x):``, ``call`` tests with outputs, doctest null), so
  every stage reads them like MBPP. ``pretrain`` is a corpus of TRL prompt-completion rows in both directions, in
  exactly the prompt formats the stages use: ``prompts.code_prompt(row)`` -> the code's body (the trainer adds
  EOS), and ``prompts.summary_prompt(code, exemplar)`` -> the description, the exemplar being another
  pretraining intent's (code, description), as the chain draws one from another problem.

``giftgen seeds toy --split seed|test3|test2|pretrain|all`` (``all``: the three seed-schema splits; names join
with ``+``, except ``pretrain``, whose rows have another schema). ``--path FILE`` is an optional YAML or JSON
mapping of ``ToyDomain`` settings; ``giftgen pretrain --domain FILE`` reads the same file.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from giftgen.errors import InputError
from giftgen.seeds.common import parse_split, seed_row

SOURCE = "toy"
SEED_SPLITS = ("seed", "test3", "test2")
SPLITS = ("pretrain", *SEED_SPLITS)
DEFAULT_SPLIT = "seed"
PROMPT_HEAD = "def f(x):\n"
# Wide and two-sided, so that abs, max/min, floor division and modulo show their effect; the same for every
# problem, so that "collapses to a shorter intent" is an exact check on the tests themselves.
TEST_INPUTS = (-90, -37, -16, -9, -4, -1, 0, 1, 3, 5, 8, 12, 23, 48, 77)


# --------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ToyDomain:
    """Everything that decides the toy domain's problems and corpus. Equal settings give equal rows."""

    seed: int = 0  # chooses the held-out intents, the 3-op samples, the wording and the code styles
    pretrain_three_op: int = 80  # 3-op intents in pretraining: tens (none: no 3-op skill; hundreds: at ceiling)
    two_op_holdout: float = 0.15  # share of the 2-op functions kept out of pretraining (test2 comes from them)
    n_seed: int = 128
    n_test3: int = 200
    n_test2: int = 200
    corpus_size: int = 40000  # prompt-completion rows in the pretraining corpus
    code_share: float = 0.75  # share of the corpus that is description -> code (the rest: code -> description)
    one_op_share: float = 0.05  # share of the corpus on 1-op intents
    three_op_share: float = 0.2  # share of the corpus on the pretraining 3-op intents (the rest: 2-op)
    nested_share: float = 0.3  # share of codes in the styles that nest operations (nested, mixed), not sequential
    # Knobs of the laboratory (README "The miniature as a laboratory"); 0 keeps the calibrated domain's rows.
    style_coupling: float = 0.0  # (a) chance that a code's style is the one its description's sentence shape implies
    register_gap: float = 0.0  # (b) share of seed and test3 descriptions in registers absent from pretraining
    summary_noise: float = 0.0  # (c) share of code -> description pretraining pairs describing a corrupted intent

    def __post_init__(self) -> None:
        for name in ("pretrain_three_op", "n_seed", "n_test3", "n_test2", "corpus_size"):
            if getattr(self, name) < 0:
                raise InputError(f"toy domain: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("two_op_holdout", "code_share", "one_op_share", "three_op_share", "nested_share",
                     "style_coupling", "register_gap", "summary_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"toy domain: {name} must be between 0 and 1, got {getattr(self, name)}")
        if self.one_op_share + self.three_op_share > 1.0:
            raise InputError("toy domain: one_op_share + three_op_share must be at most 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_domain(path: str | None) -> ToyDomain:
    """The domain settings in a YAML or JSON mapping file (``None``: the defaults); unknown keys are errors."""
    if path is None:
        return ToyDomain()
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such toy-domain file: {path}", hint="give a YAML or JSON mapping of toy settings")
    try:
        data = yaml.safe_load(p.read_text()) or {}  # JSON is YAML
    except yaml.YAMLError as e:
        raise InputError(f"{path}: invalid YAML/JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of toy-domain settings")
    defaults = ToyDomain()
    valid = [f.name for f in fields(ToyDomain)]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in valid:
            raise InputError(f"{path}: unknown toy-domain setting {key!r}; valid: {', '.join(valid)}")
        kind = type(getattr(defaults, key))
        ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
        if isinstance(value, bool) or not ok:
            raise InputError(f"{path}: {key} must be {kind.__name__}, got {value!r}")
        values[key] = kind(value)
    return replace(defaults, **values)


# --------------------------------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    kind: str
    c: int | None = None

    def apply(self, x: int) -> int:
        return _APPLY[self.kind](x, self.c)

    @property
    def tag(self) -> str:
        return self.kind if self.c is None else f"{self.kind}{self.c}"


_APPLY: dict[str, Callable[[int, Any], int]] = {
    "add": lambda x, c: x + c,
    "sub": lambda x, c: x - c,
    "mul": lambda x, c: x * c,
    "square": lambda x, c: x * x,
    "neg": lambda x, c: -x,
    "abs": lambda x, c: abs(x),
    "div": lambda x, c: x // c,
    "mod": lambda x, c: x % c,
    "max": lambda x, c: max(x, c),
    "min": lambda x, c: min(x, c),
}
_CONSTANTS: dict[str, Sequence[int | None]] = {
    "add": range(1, 10),
    "sub": range(1, 10),
    "mul": range(2, 10),
    "square": [None],
    "neg": [None],
    "abs": [None],
    "div": range(2, 10),
    "mod": range(2, 10),
    "max": range(-5, 6),
    "min": range(-5, 6),
}
OPS: tuple[Op, ...] = tuple(Op(kind, c) for kind, cs in _CONSTANTS.items() for c in cs)

Intent = tuple[Op, ...]


def run(intent: Intent, x: int) -> int:
    for op in intent:
        x = op.apply(x)
    return x


def signature(intent: Intent) -> tuple[int, ...]:
    """The intent's outputs on ``TEST_INPUTS``: what its tests can tell apart."""
    return tuple(run(intent, x) for x in TEST_INPUTS)


def intent_id(intent: Intent) -> str:
    return f"{SOURCE}/" + ".".join(op.tag for op in intent)


# --------------------------------------------------------------------------------------------------- descriptions

_PHRASES: dict[str, list[str]] = {
    "add": ["add {c}", "add {c} to it", "increase it by {c}", "increment it by {c}"],
    "sub": ["subtract {c}", "subtract {c} from it", "decrease it by {c}", "reduce it by {c}"],
    "mul": ["multiply it by {c}", "multiply by {c}", "scale it by {c}", "take {c} times it"],
    "square": ["square it", "multiply it by itself", "raise it to the power of 2"],
    "neg": ["negate it", "flip its sign", "change its sign", "multiply it by -1"],
    "abs": ["take its absolute value", "take the absolute value", "replace it by its absolute value"],
    "div": ["floor-divide it by {c}", "divide it by {c}, rounding down", "integer-divide it by {c}"],
    "mod": ["take it modulo {c}", "take the remainder after dividing by {c}", "reduce it modulo {c}"],
    "max": ["take the maximum of it and {c}", "make it at least {c}", "clamp it from below at {c}"],
    "min": ["take the minimum of it and {c}", "make it at most {c}", "cap it at {c}"],
}
_SPECIAL_PHRASES: dict[Op, list[str]] = {Op("mul", 2): ["double it"], Op("mul", 3): ["triple it"]}


def _shape_then(ps: list[str]) -> str:
    return f"Given an integer x, {', then '.join(ps)}, and return the result."


def _shape_list(ps: list[str]) -> str:
    listed = ps[0] if len(ps) == 1 else ", ".join(ps[:-1]) + " and " + ps[-1]
    return f"Take an integer x, {listed}. Return the final value."


def _shape_steps(ps: list[str]) -> str:
    if len(ps) == 1:
        return f"Start from x, {ps[0]} and return it."
    words = ["First", "Then", "Next"][: len(ps) - 1] + ["Finally"]
    return "Start from x. " + " ".join(f"{w} {p}." for w, p in zip(words, ps, strict=True)) + " Return the value."


def _shape_terse(ps: list[str]) -> str:
    return "f(x): " + "; ".join(ps) + "; return the result."


def _shape_compute(ps: list[str]) -> str:
    return f"Compute the following from the integer x: {', then '.join(ps)}. Return the outcome."


def _shape_after(ps: list[str]) -> str:
    listed = ps[0] if len(ps) == 1 else ", ".join(ps[:-1]) + " and then " + ps[-1]
    return f"Write a function that returns x after you {listed}."


SHAPES: tuple[Callable[[list[str]], str], ...] = (
    _shape_then, _shape_list, _shape_steps, _shape_terse, _shape_compute, _shape_after,
)


def phrase(op: Op, rng: random.Random) -> str:
    choices = _PHRASES[op.kind] + _SPECIAL_PHRASES.get(op, [])
    return rng.choice(choices).format(c=op.c)


def describe(intent: Intent, rng: random.Random) -> str:
    """One English description of ``intent``: a random sentence shape, a random paraphrase per operation."""
    return describe_shaped(intent, rng)[0]


def describe_shaped(intent: Intent, rng: random.Random) -> tuple[str, int]:
    """``describe``, with the index of its sentence shape in ``SHAPES`` (the same draws from ``rng``)."""
    shape = rng.choice(SHAPES)
    return shape([phrase(op, rng) for op in intent]), SHAPES.index(shape)


# Registers the pretraining corpus never uses: the operations listed last to first. A base model implements them
# less reliably than the registers of its own summaries (knob b, ``register_gap``).
def _shape_backwards(ps: list[str]) -> str:
    if len(ps) == 1:
        return f"Return x once you {ps[0]}."
    return f"Return what you get if you {'; before that, '.join(reversed(ps))}; starting from x."


def _shape_last_first(ps: list[str]) -> str:
    order = ["the last step is to", "the step before is to", "the first step is to"][: len(ps)]
    if len(ps) > 1:
        order[-1] = "the first step is to"
    return "Working back from the result: " + "; ".join(f"{w} {p}" for w, p in zip(order, reversed(ps), strict=True)) \
        + ". Apply them to x."


GAP_SHAPES: tuple[Callable[[list[str]], str], ...] = (_shape_backwards, _shape_last_first)


def describe_in_gap_register(intent: Intent, rng: random.Random) -> str:
    return rng.choice(GAP_SHAPES)([phrase(op, rng) for op in intent])


def coupled_style(shape: int) -> str:
    """The code style a description's sentence shape implies under ``style_coupling`` (knob a)."""
    return CODE_STYLES[shape % len(CODE_STYLES)]


def corrupt(intent: Intent, rng: random.Random) -> Intent:
    """``intent`` with one operation dropped, two adjacent ones swapped, or one replaced (knob c)."""
    kind = rng.choice(["drop", "swap", "replace"] if len(intent) > 1 else ["replace"])
    ops = list(intent)
    i = rng.randrange(len(ops))
    if kind == "drop":
        del ops[i]
    elif kind == "swap":
        i = min(i, len(ops) - 2)
        ops[i], ops[i + 1] = ops[i + 1], ops[i]
    else:
        ops[i] = rng.choice([op for op in OPS if op != ops[i]])
    return tuple(ops)


# --------------------------------------------------------------------------------------------------- code

# Operator precedence, for parenthesising nested expressions exactly where Python needs it.
ATOM, POW, UNARY, MUL, ADD, COND = 100, 90, 80, 70, 60, 10
Expr = tuple[str, int]  # (source, precedence)
CODE_STYLES = ("inplace", "fresh", "nested", "mixed")


def _at(e: Expr, need: int) -> str:
    """``e``'s source, parenthesised unless it binds at least as tightly as ``need``."""
    return e[0] if e[1] >= need else f"({e[0]})"


def expression(op: Op, e: Expr, rng: random.Random) -> Expr:
    """``op`` applied to the expression ``e``, in one of its equivalent spellings."""
    c = op.c
    name = e[1] == ATOM and e[0].isidentifier()  # a plain variable may be repeated in a conditional
    forms: list[Expr]
    if op.kind == "add":
        forms = [(f"{_at(e, ADD)} + {c}", ADD), (f"{c} + {_at(e, MUL)}", ADD)]
    elif op.kind == "sub":
        forms = [(f"{_at(e, ADD)} - {c}", ADD)]
    elif op.kind == "mul":
        forms = [(f"{_at(e, MUL)} * {c}", MUL), (f"{c} * {_at(e, UNARY)}", MUL)]
    elif op.kind == "square":
        forms = [(f"{_at(e, UNARY)} * {_at(e, UNARY)}", MUL), (f"{_at(e, ATOM)} ** 2", POW), (f"pow({e[0]}, 2)", ATOM)]
    elif op.kind == "neg":
        forms = [(f"-{_at(e, POW)}", UNARY), (f"0 - {_at(e, MUL)}", ADD)]
    elif op.kind == "abs":
        forms = [(f"abs({e[0]})", ATOM)] + ([(f"{e[0]} if {e[0]} >= 0 else -{e[0]}", COND)] if name else [])
    elif op.kind == "div":
        forms = [(f"{_at(e, MUL)} // {c}", MUL)]
    elif op.kind == "mod":
        forms = [(f"{_at(e, MUL)} % {c}", MUL)]
    else:  # max, min
        forms = [(f"{op.kind}({e[0]}, {c})", ATOM), (f"{op.kind}({c}, {e[0]})", ATOM)]
        if name:
            cmp = ">" if op.kind == "max" else "<"
            forms.append((f"{e[0]} if {e[0]} {cmp} {c} else {c}", COND))
    return rng.choice(forms)


_AUGMENTED = {"add": "+=", "sub": "-=", "mul": "*=", "div": "//=", "mod": "%="}


def update(op: Op, var: str, rng: random.Random) -> list[str]:
    """Statements that apply ``op`` to ``var`` in place: an assignment, an augmented one, or an ``if``."""
    forms = [[f"{var} = {expression(op, (var, ATOM), rng)[0]}"]]
    if op.kind in _AUGMENTED:
        forms.append([f"{var} {_AUGMENTED[op.kind]} {op.c}"])
    elif op.kind == "square":
        forms += [[f"{var} *= {var}"], [f"{var} **= 2"]]
    elif op.kind == "abs":
        forms.append([f"if {var} < 0:", f"    {var} = -{var}"])
    elif op.kind in ("max", "min"):
        cmp = "<" if op.kind == "max" else ">"
        forms.append([f"if {var} {cmp} {op.c}:", f"    {var} = {op.c}"])
    return rng.choice(forms)


_FRESH_NAMES = (("y", "z", "w"), ("a", "b", "c"), ("t", "u", "v"), ("y1", "y2", "y3"), ("step1", "step2", "step3"))


def nested(intent: Intent, start: Expr, rng: random.Random) -> Expr:
    e = start
    for op in intent:
        e = expression(op, e, rng)
    return e


def write_code(intent: Intent, rng: random.Random, style: str | None = None, nested_share: float = 0.5) -> str:
    """A program ``def f(x): ...`` computing ``intent``, in ``style``; default: a random style, nested or mixed
    with probability ``nested_share``, else in-place or fresh (sequential styles)."""
    if style is None:
        style = rng.choice(CODE_STYLES[2:] if rng.random() < nested_share else CODE_STYLES[:2])
    if style not in CODE_STYLES:
        raise ValueError(f"unknown code style {style!r}; valid: {', '.join(CODE_STYLES)}")
    lines: list[str] = []
    if style == "inplace":
        var = rng.choice(["x", "x", "result", "value"])
        if var != "x":
            lines.append(f"{var} = x")
        for op in intent:
            lines += update(op, var, rng)
        lines.append(f"return {var}")
    elif style == "fresh":
        names = rng.choice(_FRESH_NAMES)
        e: Expr = ("x", ATOM)
        direct = rng.random() < 0.5  # the last operation in the return statement, or in a variable of its own
        for i, op in enumerate(intent):
            value = expression(op, e, rng)
            if direct and i == len(intent) - 1:
                lines.append(f"return {value[0]}")
                break
            lines.append(f"{names[i]} = {value[0]}")
            e = (names[i], ATOM)
        else:
            lines.append(f"return {e[0]}")
    elif style == "nested" or len(intent) == 1:
        lines.append(f"return {nested(intent, ('x', ATOM), rng)[0]}")
    else:  # mixed: the first operations nested into one variable, the last one returned
        var = rng.choice(["y", "t", "tmp", "value"])
        lines.append(f"{var} = {nested(intent[:-1], ('x', ATOM), rng)[0]}")
        lines.append(f"return {expression(intent[-1], (var, ATOM), rng)[0]}")
    return PROMPT_HEAD + "".join(f"    {line}\n" for line in lines)


def code_style(code: str) -> str | None:
    """The style (``CODE_STYLES``) a multi-operation toy program is written in, read from its statements; None
    for a program that is not a toy ``def f(x):`` body. The laboratory compares the styles of kept codes with
    those of all correct codes. Exact on three-operation programs (the seed and test3 problems); shorter ones are
    ambiguous (one operation: every style writes one line, read as nested; two: fresh with a direct return reads
    as mixed)."""
    lines = code.splitlines()
    if not lines or not lines[0].startswith("def f("):
        return None
    body = [line.strip() for line in lines[1:] if line.strip() and not line.strip().startswith("#")]
    if not body:
        return None
    if len(body) == 1:
        return "nested"
    statements = [line for line in body if not line.startswith(("if ", "return"))]
    targets = {line.split()[0] for line in statements if line.split() and not line.startswith(" ")}
    if len(body) == 2 and len(targets) == 1 and targets != {"x"}:
        return "mixed"
    fresh = targets - {"x", "result", "value"}
    return "fresh" if fresh else "inplace"


# --------------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Splits:
    one_op: tuple[Intent, ...]
    two_op: tuple[Intent, ...]  # in pretraining
    three_op: tuple[Intent, ...]  # in pretraining
    seed: tuple[Intent, ...]
    test3: tuple[Intent, ...]
    test2: tuple[Intent, ...]

    @property
    def pretrain(self) -> tuple[Intent, ...]:
        return self.one_op + self.two_op + self.three_op


def _collapses(sig: tuple[int, ...], shorter: set[tuple[int, ...]]) -> bool:
    return sig in shorter or len(set(sig)) == 1


@functools.lru_cache(maxsize=8)
def make_splits(domain: ToyDomain) -> Splits:
    """The intents of each split (see the module docstring); deterministic for ``domain``."""
    rng = random.Random(f"giftgen-toy-splits-{domain.seed}")
    shorter = {tuple(TEST_INPUTS)}  # the identity: the empty composition
    one_op = []
    for op in OPS:
        sig = signature((op,))
        if not _collapses(sig, shorter):
            one_op.append((op,))
    shorter |= {signature(i) for i in one_op}

    classes: dict[tuple[int, ...], list[Intent]] = {}
    for a, b in itertools.product(OPS, repeat=2):
        sig = signature((a, b))
        if not _collapses(sig, shorter):
            classes.setdefault(sig, []).append((a, b))
    # hold out whole functions, so that no held-out function is in pretraining under another spelling
    order = sorted(classes)
    rng.shuffle(order)
    held = order[: round(domain.two_op_holdout * len(order))]
    if len(held) < domain.n_test2:
        raise InputError(f"toy domain: {len(held)} held-out 2-op functions, fewer than n_test2={domain.n_test2}",
                         hint="raise two_op_holdout or lower n_test2")
    held_set = set(held)
    two_op = tuple(i for sig in sorted(classes) if sig not in held_set for i in classes[sig])
    test2 = tuple(rng.choice(classes[sig]) for sig in held[: domain.n_test2])
    shorter |= set(classes)

    wanted = domain.pretrain_three_op + domain.n_seed + domain.n_test3
    three: list[Intent] = []
    seen: set[tuple[int, ...]] = set()
    attempts = 0
    while len(three) < wanted:
        attempts += 1
        if attempts > 100 * wanted + 1000:
            raise InputError(f"toy domain: could not find {wanted} distinct 3-op functions")
        intent = tuple(rng.choice(OPS) for _ in range(3))
        sig = signature(intent)
        if _collapses(sig, shorter) or sig in seen:
            continue
        seen.add(sig)
        three.append(intent)
    k, s = domain.pretrain_three_op, domain.n_seed
    return Splits(
        one_op=tuple(one_op), two_op=two_op, three_op=tuple(three[:k]),
        seed=tuple(three[k : k + s]), test3=tuple(three[k + s :]), test2=test2,
    )


# --------------------------------------------------------------------------------------------------- rows


def problem_row(intent: Intent, split: str, description: str, reference: str) -> dict[str, Any]:
    """A seed row for ``intent`` (README "Seed schema")."""
    return seed_row(
        problem_id=intent_id(intent),
        source=SOURCE,
        split=split,
        description=description,
        reference=reference,
        entry_point="f",
        prompt_head=PROMPT_HEAD,
        doctest=None,
        tests={
            "kind": "call",
            "fn_name": "f",
            "inputs": [[x] for x in TEST_INPUTS],
            "outputs": list(signature(intent)),
            "atol": 0,
        },
    )


def seed_rows(domain: ToyDomain, split: str) -> Iterator[dict[str, Any]]:
    """The seed rows of one of ``SEED_SPLITS``: one description and one reference per problem, fixed by the seed.

    The knobs draw from streams of their own, so at 0 they leave every row as it was."""
    intents = getattr(make_splits(domain), split)
    for intent in intents:
        rng = random.Random(f"giftgen-toy-row-{domain.seed}-{intent_id(intent)}")
        description, shape = describe_shaped(intent, rng)
        code = write_code(intent, rng, style=_style(domain, shape, f"row-{intent_id(intent)}"),
                          nested_share=domain.nested_share)
        if domain.register_gap and split in ("seed", "test3"):
            gap = random.Random(f"giftgen-toy-register-{domain.seed}-{intent_id(intent)}")
            if gap.random() < domain.register_gap:
                description = describe_in_gap_register(intent, gap)
        yield problem_row(intent, split, description, code)


def _style(domain: ToyDomain, shape: int, key: str, draw: random.Random | None = None) -> str | None:
    """The coupled style with probability ``style_coupling`` (from its own stream), else None (a free draw)."""
    if not domain.style_coupling:
        return None
    draw = draw or random.Random(f"giftgen-toy-coupling-{domain.seed}-{key}")
    return coupled_style(shape) if draw.random() < domain.style_coupling else None


def corpus(domain: ToyDomain) -> Iterator[dict[str, Any]]:
    """The pretraining corpus: ``corpus_size`` prompt-completion rows in both directions (module docstring)."""
    from giftgen.prompts import code_prompt, program_body, summary_prompt

    splits = make_splits(domain)
    pools = [(splits.one_op, domain.one_op_share), (splits.three_op, domain.three_op_share),
             (splits.two_op, 1.0 - domain.one_op_share - domain.three_op_share)]
    pools = [(p, w) for p, w in pools if p and w > 0]
    everything = splits.pretrain
    rng = random.Random(f"giftgen-toy-corpus-{domain.seed}")
    coupling = random.Random(f"giftgen-toy-corpus-coupling-{domain.seed}")
    noise = random.Random(f"giftgen-toy-corpus-noise-{domain.seed}")
    for _ in range(domain.corpus_size):
        pool = rng.choices([p for p, _ in pools], weights=[w for _, w in pools])[0]
        intent = rng.choice(pool)
        description, shape = describe_shaped(intent, rng)
        code = write_code(intent, rng, style=_style(domain, shape, "", coupling), nested_share=domain.nested_share)
        row = problem_row(intent, "pretrain", description, code)
        if rng.random() < domain.code_share:
            direction, prompt, completion = "code", code_prompt(row), program_body(row, code)
        else:
            if domain.summary_noise and noise.random() < domain.summary_noise:
                description = describe(corrupt(intent, noise), noise)  # an unfaithful summary of ``code``
            other = rng.choice(everything)
            while other == intent:
                other = rng.choice(everything)
            exemplar = (write_code(other, rng, nested_share=domain.nested_share), describe(other, rng))
            direction, prompt, completion = "description", summary_prompt(code, exemplar), description
        yield {"problem_id": row["problem_id"], "source": SOURCE, "split": "pretrain", "direction": direction,
               "prompt": prompt, "completion": completion}


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    """The ``giftgen seeds toy`` source: ``path`` is an optional toy-domain settings file (see ``load_domain``)."""
    domain = load_domain(path)
    text = DEFAULT_SPLIT if split is None else split.strip()
    if text == "all":
        names = list(SEED_SPLITS)
    else:
        names = parse_split(text, SPLITS, DEFAULT_SPLIT, SOURCE)
    if "pretrain" in names:
        if len(names) > 1:
            raise InputError("toy: the pretrain split is a prompt-completion corpus; ask for it on its own")
        yield from corpus(domain)
        return
    for name in names:
        yield from seed_rows(domain, name)


def domain_json(domain: ToyDomain) -> str:
    return json.dumps(domain.as_dict(), sort_keys=True)
