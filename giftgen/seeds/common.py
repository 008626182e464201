"""What every seed source shares: reading published files, choosing splits, reading a reference, the tests object.

Sources build rows with ``seed_row``; the result always has the seed columns of README "Seed schema", in order.
The ``tests`` column is a JSON string; ``parse_tests`` decodes and checks it (one of the kinds ``assert``,
``check``, ``call``, ``stdio``, ``script``) and is what later stages should use to read it.

Reference analysis (``entry_def``, ``head_of``, ``doctest_from_assert``) works on the source text with ``ast`` and
``tokenize``; it never runs code.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from giftgen.errors import InputError
from giftgen.records import JSON_FILES, read_numbered

SEED_COLUMNS = (
    "problem_id",
    "source",
    "split",
    "description",
    "reference",
    "entry_point",
    "prompt_head",
    "doctest",
    "tests",
)
# Optional columns a source adds for the release profile (``load_seeds(..., raw_columns=True)``): the bytes the GiFT
# release itself reads, where the seed columns normalise them. ``raw_reference``: the reference exactly as the
# benchmark's file has it (the release's summary exemplars and its reference fallback show it so; ``reference`` is
# normalised to end with one newline). ``raw_first_test``: the first assert as the benchmark writes it, for rows
# whose tests keep no assert (MBPP+: the release's evaluation prompt splits it at ``==``).
RAW_COLUMNS = ("raw_reference", "raw_first_test")

# The fields each kind of tests object must have, with their types. Optional fields are checked when present.
TEST_KINDS: dict[str, dict[str, tuple[type, ...]]] = {
    "assert": {"setup": (str,), "asserts": (list,)},
    "check": {"code": (str,), "entry_point": (str,)},
    "call": {"fn_name": (str,), "inputs": (list,), "outputs": (list, type(None))},
    "stdio": {"inputs": (list,), "outputs": (list,)},
    "script": {"setup": (str,), "scripts": (list,)},
}
OPTIONAL_TEST_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "assert": {},
    "check": {},
    "call": {
        "plus_inputs": (list,),
        "atol": (int, float),
        "setup": (str,),
        "inputs_py": (str,),
        "plus_inputs_py": (str,),
        "output_not_none": (bool,),
        "wrapped_outputs": (bool,),
    },
    "stdio": {"setup": (str,), "compare": (str,)},
    "script": {"names": (list,)},
}


# --------------------------------------------------------------------------------------------------- rows


def seed_row(
    *,
    problem_id: str,
    source: str,
    split: str,
    description: str,
    reference: str | None,
    entry_point: str | None,
    prompt_head: str,
    doctest: str | None,
    tests: Mapping[str, Any],
    raw_reference: str | None = None,
    raw_first_test: str | None = None,
) -> dict[str, Any]:
    """A row in the seed schema; ``tests`` is JSON-encoded here so every source has one column type. The raw
    columns (``RAW_COLUMNS``) follow when given; ``giftgen.seeds.load_seeds`` keeps them only when asked."""
    row = {
        "problem_id": problem_id,
        "source": source,
        "split": split,
        "description": description,
        "reference": reference,
        "entry_point": entry_point,
        "prompt_head": prompt_head,
        "doctest": doctest,
        "tests": json.dumps(tests, ensure_ascii=False),
    }
    for name, value in (("raw_reference", raw_reference), ("raw_first_test", raw_first_test)):
        if value is not None:
            row[name] = value
    return row


def parse_tests(value: str | Mapping[str, Any], where: str = "tests") -> dict[str, Any]:
    """Decode and check a ``tests`` value (a JSON string or an object). Raises ``InputError`` naming ``where``."""
    if isinstance(value, str):
        try:
            tests = json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: not valid JSON ({e})") from None
    else:
        tests = value
    if not isinstance(tests, Mapping):
        raise InputError(f"{where}: expected an object with a 'kind', got {type(tests).__name__}")
    kind = tests.get("kind")
    if kind not in TEST_KINDS:
        raise InputError(f"{where}: unknown kind {kind!r}; valid kinds: {', '.join(TEST_KINDS)}")
    for field, types in TEST_KINDS[kind].items():
        if field not in tests:
            raise InputError(f"{where}: kind {kind!r} needs the field {field!r}")
        if not isinstance(tests[field], types) or isinstance(tests[field], bool) and bool not in types:
            raise InputError(f"{where}: field {field!r} has the wrong type ({type(tests[field]).__name__})")
    for field, types in OPTIONAL_TEST_FIELDS[kind].items():
        if field in tests and tests[field] is not None and not isinstance(tests[field], types):
            raise InputError(f"{where}: field {field!r} has the wrong type ({type(tests[field]).__name__})")
    if kind == "assert" and not all(isinstance(a, str) for a in tests["asserts"]):
        raise InputError(f"{where}: 'asserts' must be a list of strings")
    if kind == "script" and not (tests["scripts"] and all(isinstance(s, str) for s in tests["scripts"])):
        raise InputError(f"{where}: 'scripts' must be a non-empty list of strings")
    if kind == "stdio":
        if len(tests["inputs"]) != len(tests["outputs"]):
            raise InputError(f"{where}: {len(tests['inputs'])} inputs but {len(tests['outputs'])} outputs")
        if not all(isinstance(x, str) for x in [*tests["inputs"], *tests["outputs"]]):
            raise InputError(f"{where}: stdio inputs and outputs must be strings")
    if kind == "call":
        if not all(isinstance(args, list) for args in tests["inputs"]):
            raise InputError(f"{where}: 'inputs' must be a list of argument lists")
        if tests["outputs"] is not None and len(tests["outputs"]) != len(tests["inputs"]):
            raise InputError(f"{where}: {len(tests['inputs'])} inputs but {len(tests['outputs'])} outputs")
    return dict(tests)


# --------------------------------------------------------------------------------------------------- files


def require_file(path: str, source: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {path}", hint=f"`giftgen seeds {source} --path FILE` reads a local file")
    return p


def read_records(path: str, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line or item number, object) from a ``.jsonl``, ``.jsonl.gz``, ``.json`` or ``.json.gz`` (a list)
    file, read as every stage reads it (``giftgen.records.read_numbered``)."""
    p = require_file(path, source)
    if not p.name.lower().endswith(JSON_FILES):
        raise InputError(f"{path}: cannot tell the format", hint="use .jsonl, .jsonl.gz, .json or .json.gz")
    yield from read_numbered(p)


def require_fields(item: Mapping[str, Any], fields: Iterable[str], where: str, fmt: str) -> None:
    for field in fields:
        if field not in item:
            raise InputError(f"{where}: no field {field!r}; is this a {fmt} file?")


def hub_error(dataset: str, error: Exception) -> InputError:
    """The one message for every way loading from the Hub fails (offline, no such repo, no such split)."""
    first = str(error).splitlines()[0] if str(error) else ""
    return InputError(
        f"could not load the Hub dataset {dataset!r} ({type(error).__name__}: {first})",
        hint="check the network, or give a local file with --path",
    )


# --------------------------------------------------------------------------------------------------- splits


def parse_split(split: str | None, valid: Sequence[str], default: str, source: str) -> list[str]:
    """Turn ``--split`` (a name, ``a+b``, or ``all``) into a list of valid split names, in the order of ``valid``."""
    text = default if split is None else split.strip()
    if text == "all":
        return list(valid)
    wanted = [part.strip() for part in text.split("+") if part.strip()]
    unknown = [w for w in wanted if w not in valid]
    if unknown or not wanted:
        raise InputError(
            f"{source} has no split {text!r}; valid: {', '.join(valid)}, all, or names joined with '+' "
            f"(default: {default})"
        )
    return [v for v in valid if v in wanted]


# --------------------------------------------------------------------------------------------------- references


def normalize_code(code: str) -> str:
    """Unix newlines and exactly one final newline; nothing else changes (tabs are kept: they may be in strings)."""
    return code.replace("\r\n", "\n").replace("\r", "\n").rstrip() + "\n"


def parse(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            # old references write regexes like "\w" in plain strings: fine to parse, noisy to warn about
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def top_level_functions(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def entry_def(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The definition of ``name``: a top-level function first, else a method of a top-level class."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == name:
                    return item
    return None


def header_end_line(code: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The 1-based line holding the colon that ends the ``def`` header (signatures may span lines)."""
    lines = code.splitlines(keepends=True)
    text = "".join(lines[node.lineno - 1 :])
    depth = 0
    seen_def = False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME and tok.string == "def":
                seen_def = True
            elif tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif seen_def and depth == 0 and tok.type == tokenize.OP and tok.string == ":":
                return node.lineno + tok.start[0] - 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return node.lineno


def head_of(reference: str, entry_point: str) -> str:
    """Everything in ``reference`` up to and including the ``def`` line of ``entry_point`` (docs/method.md, "Prompts").

    This keeps the imports and any helper defined before the entry point, so the prompt is always a prefix of
    the reference. Raises ``ValueError`` when the reference does not parse or does not define the entry point.
    """
    tree = parse(reference)
    if tree is None:
        raise ValueError("the reference does not parse")
    node = entry_def(tree, entry_point)
    if node is None:
        raise ValueError(f"the reference does not define {entry_point!r}")
    end = header_end_line(reference, node)
    lines = reference.splitlines(keepends=True)
    head = "".join(lines[:end])
    return head if head.endswith("\n") else head + "\n"


def first_called_function(test: str, defined: Iterable[str]) -> str | None:
    """The first function from ``defined`` that ``test`` (an assert statement) calls, in source order."""
    tree = parse(test)
    if tree is None:
        return None
    names = set(defined)
    calls = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
    ]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return calls[0].func.id if calls else None  # type: ignore[union-attr]


def doctest_from_assert(test: str) -> str | None:
    """An assert statement as a doctest: ``>>> call`` on one line, the expected value on the next.

    ``assert A == B`` gives ``>>> A`` / ``B`` (the release splits at ``==``; parsing instead of splitting keeps an
    ``==`` inside a string argument intact). ``assert math.isclose(A, B, ...)`` gives ``>>> A`` / ``B``, so the
    model sees the value rather than the tolerance check; ``assert not A`` gives ``False``, any other ``assert A``
    gives ``True`` (as the release does when there is no ``==``).
    """
    text = test.strip()
    tree = parse(text)
    if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    expr = tree.body[0].test

    def src(node: ast.AST) -> str:
        segment = ast.get_source_segment(text, node) or ast.unparse(node)
        return " ".join(segment.split("\n")).strip()

    if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq):
        return f">>> {src(expr.left)}\n{src(expr.comparators[0])}"
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "isclose"
        and len(expr.args) >= 2
    ):
        return f">>> {src(expr.args[0])}\n{src(expr.args[1])}"
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return f">>> {src(expr.operand)}\nFalse"
    return f">>> {src(expr)}\nTrue"


def check_reference(reference: str, entry_point: str | None) -> str | None:
    """Why ``reference`` is unusable (does not compile, or lacks its entry point), or None when it is fine."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(reference, "<reference>", "exec")
    except (SyntaxError, ValueError) as e:
        return f"does not compile ({e.__class__.__name__}: {e})"
    if entry_point is not None:
        tree = parse(reference)
        if tree is None or entry_def(tree, entry_point) is None:
            return f"does not define {entry_point!r}"
    return None
