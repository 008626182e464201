"""Prompts (base and chat) and the extraction of code and descriptions from what a model wrote.

Pure functions over seed rows (README, "Seed schema"); they read only the prompt columns (``prompt_head``,
``description``, ``doctest``, ``entry_point``, ``reference``), never ``tests``. Nothing heavy is imported.

Base style (docs/method.md, "Prompts"): the code prompt is ``prompt_head`` followed by a docstring holding the
description (``\"\"\"`` escaped) and, when the row has one, the doctest; the model writes the body. The docstring
is indented like the reference's body, so that prompt + body is valid Python even for references indented with
two spaces or tabs (the release always used four spaces). Problems without an entry point (stdin/stdout) get a
module docstring and the model writes a program. The summary prompt is the release's one-shot
"###Code: / ###Description of the given code:" block, with docstrings removed from the code.

Chat style: the same requests as user messages; the model answers with a ```python block.

Release style (``release``): the GiFT release's exact prompt bytes (section "release style" below): the code prompt
of its ``extract_code_head`` (MBPP, APPS+, CodeInsight), its summary prompt and cut (descriptions are not
stripped), its MBPP extraction (``release_keep_functions``); a program is the release head, a newline and the body.
Seed references are normalised to end with one newline; the release shows a reference (a summary exemplar's code,
the reference fallback) as the benchmark's file has it, so seed rows carry those bytes as ``raw_reference`` (``giftgen
seeds --raw-columns``; a run in the release profile adds it), which ``giftgen.chain.reference_code`` picks.

Invariants other stages rely on:
- base style: ``extract_code`` returns ``prompt_head`` + the body, so the program starts with ``prompt_head``;
- ``training_pair(row, program)["prompt"] + ...["completion"]`` is ``code_prompt(row)`` followed by exactly the
  body (no stray newline between them; the release's training target started with one);
- extracted programs end with exactly one newline.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from giftgen.errors import GiftgenError
from giftgen.seeds.common import entry_def as _find_def
from giftgen.seeds.common import header_end_line as _header_end
from giftgen.seeds.common import parse as _parse
from giftgen.seeds.common import parse_tests

Prompt = str | list[dict[str, str]]

STYLES = ("base", "chat", "release")
EXTRACTION_METHODS = ("stop", "ast")

# The release's module-level stop strings for code: a new top-level statement ends the function.
STOP_STRINGS = ["\nclass", "\nif", "\n#", "\nprint", "\ndef", "\nassert"]
# A stdin/stdout program is all top-level statements, so those would cut it at once; these end it instead
# (a new docstring, a markdown fence or a new "###" block is the model starting something else).
STDIO_STOP_STRINGS = ['\n"""', "\n'''", "\n```", "\n###"]
SUMMARY_STOP = ["\n###"]

CODE_HEADER = "###Code:\n"
DESCRIPTION_HEADER = "###Description of the given code:\n"


# The release's stop strings for MBPP codes (MBPP/seq_gibbs_sample.py): no "\ndef", see release_keep_functions.
RELEASE_MBPP_STOPS = ["\nclass", "\nif", "\n#", "\nprint", "\nassert"]
# The release's cut of a generated description (gen_sum in seq_gibbs_sample.py): the first of these, no strip.
RELEASE_SUMMARY_STOPS = ["\n###Code:", "\n###"]
# The docstrings the release removes from a code before summarising or training on it.
_RELEASE_DOCSTRING = re.compile('(    """.*?"""\n)', re.DOTALL | re.IGNORECASE)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; valid styles: {', '.join(STYLES)}")


def is_function_problem(row: Mapping[str, Any]) -> bool:
    """A problem with an entry point (call/assert/check tests), as opposed to a stdin/stdout program."""
    return bool(row.get("entry_point"))


def stop_strings(row: Mapping[str, Any], style: str = "base") -> list[str]:
    """The stop strings for sampling code for ``row`` in base (or release) style."""
    if style == "release" and release_head(row) is not None:
        # the release writes every problem as a function, stdin ones included; on MBPP it keeps later functions
        # up to the one the tests call (``release_keep_functions``), so "\ndef" does not stop it there
        return list(RELEASE_MBPP_STOPS if row.get("doctest") else STOP_STRINGS)
    return list(STOP_STRINGS if is_function_problem(row) else STDIO_STOP_STRINGS)


# --------------------------------------------------------------------------------------------------- code prompt


def escape_docstring(text: str) -> str:
    """Make ``text`` safe inside a ``\"\"\"`` docstring: no run of three double quotes can end it early."""
    return text.replace('"""', '\\"\\"\\"')


def code_prompt(row: Mapping[str, Any], description: str | None = None, style: str = "base") -> Prompt:
    """The prompt for sampling code for ``row`` from ``description`` (default: the row's seed description)."""
    _check_style(style)
    if style == "release" and release_head(row) is not None:
        return release_code_prompt(row, row["description"] if description is None else description)
    if style == "release":
        style = "base"  # a whole-program stdin problem: the release has no prompt of its own for it
    description = (row["description"] if description is None else description).strip()
    head = row.get("prompt_head") or ""
    doctest = row.get("doctest") or None
    if style == "chat":
        return [{"role": "user", "content": _chat_code_request(row, description, head, doctest)}]
    if not is_function_problem(row):
        return f'"""\n{escape_docstring(description)}\n"""\n{head}'
    indent = body_indent(head, row.get("reference"), row.get("entry_point"))
    lines = escape_docstring(description).split("\n")
    if doctest:
        lines += escape_docstring(doctest).split("\n")
    body = "\n".join(indent + line if line.strip() else "" for line in lines[1:])
    text = f'{head}{indent}""" {lines[0]}\n'
    if body:
        text += body + "\n"
    return text + f'{indent}"""\n'


def _chat_code_request(row: Mapping[str, Any], description: str, head: str, doctest: str | None) -> str:
    if not is_function_problem(row):
        text = (
            "Write a Python program for the task below. The program reads its input from standard input and "
            f"writes its answer to standard output.\n\n{description}\n"
        )
        if head:
            text += f"\nStart from this code:\n```python\n{head}```\n"
    else:
        text = (
            f"Write a Python function `{row['entry_point']}` for the task below.\n\n{description}\n\n"
            f"Complete this code, keeping the function's name and signature:\n```python\n{head}```\n"
        )
        if doctest:
            text += f"\nExample:\n```python\n{doctest}\n```\n"
    return text + "\nAnswer with the complete program in one ```python code block."


def body_indent(head: str, reference: str | None = None, entry_point: str | None = None) -> str:
    """The indentation of the entry point's body: the reference's own when it has one, else def line's + 4."""
    if reference and entry_point:
        found = _reference_indent(reference, entry_point)
        if found is not None:
            return found
    lines = [line for line in head.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if re.match(r"\s*(async\s+)?def\s", last):
        own = last[: len(last) - len(last.lstrip())]
        return own + ("\t" if "\t" in own else "    ")
    # the head ends inside the body already (HumanEval/115): keep that line's indentation
    return last[: len(last) - len(last.lstrip())] or "    "


@functools.lru_cache(maxsize=4096)
def _reference_indent(reference: str, entry_point: str) -> str | None:
    tree = _parse(reference)
    if tree is None:
        return None
    node = _find_def(tree, entry_point)
    if node is None or not node.body or node.body[0].lineno == node.lineno:
        return None
    line = reference.splitlines()[node.body[0].lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    return indent or None


# --------------------------------------------------------------------------------------------------- release style
#
# The GiFT release's prompt bytes (docs/method.md, "Exact prompt bytes of the release"; MBPP/_utils.py, APPS/_utils.py
# and CodeInsight/_utils.py of the release): the head is the reference's lines up to and including the first line
# holding "def " (tabs as 4 spaces, no "\r"); the docstring is always indented by 4 spaces and the description is
# inserted as it is. Rows with a doctest (MBPP, MBPP+) show their first test split at "==", as the release does.


def _release_code(code: str) -> str:
    return code.replace("\t", "    ").replace("\r", "")


def release_head(row: Mapping[str, Any]) -> str | None:
    """The release's head for ``row`` (no final newline), or None when the row has no head in the release's sense:
    a stdin/stdout problem whose reference is a whole program rather than a function the release calls, or a
    reference without a ``def`` line. Rows without an entry point whose tests are not stdin/stdout (CodeInsight's
    unit-test files) get the head of their reference's first function, as the release writes them."""
    reference = row.get("reference")
    if not reference:
        head = (row.get("prompt_head") or "").rstrip("\n")
        return head or None
    stdin = not is_function_problem(row) and '"stdio"' in str(row.get("tests") or "")
    if stdin and release_wrapped_name(reference) is None:
        return None
    lines = []
    for line in _release_code(reference).split("\n"):
        lines.append(line)
        if "def " in line:
            return "\n".join(lines)
    return None  # no def line: the head would be the whole reference


def release_wrapped_name(reference: str) -> str | None:
    """``fn`` when ``reference`` is the release's function-wrapped stdin program: ``def fn():`` ... then ``fn()``."""
    lines = [line for line in reference.strip().splitlines() if line.strip()]
    found = re.fullmatch(r"(\w+)\(\)", lines[-1].strip()) if lines else None
    if found is None or not re.search(rf"^def {re.escape(found.group(1))}\(\s*\):", reference, re.MULTILINE):
        return None
    return found.group(1)


def release_first_test(row: Mapping[str, Any]) -> str | None:
    """The row's first test as the release reads it: the raw first assert (``raw_first_test``: MBPP+; the first
    of ``asserts``: MBPP), else rebuilt from the doctest (``assert call == expected``, or ``assert call`` for
    ``True``), which differs from the written assert where that is no plain ``A == B`` (docs/commands.md)."""
    raw = row.get("raw_first_test")
    if isinstance(raw, str) and raw.strip():
        return raw
    tests = row.get("tests")
    if isinstance(tests, str) and '"assert"' in tests:
        try:
            spec = parse_tests(tests)
        except Exception:  # noqa: BLE001 (a row verification will reject anyway; the prompt falls back)
            spec = {}
        asserts = spec.get("asserts") or []
        if spec.get("kind") == "assert" and asserts and asserts[0].lstrip().startswith("assert"):
            return asserts[0]
    doctest = row.get("doctest")
    if not doctest:
        return None
    call, _, expected = doctest.removeprefix(">>> ").partition("\n")
    return f"assert {call} == {expected}" if expected != "True" else f"assert {call}"


def release_doctest(test: str) -> str:
    """The release's doctest lines for one assert: split at ``==``; without one, the expression and ``True``."""
    parts = test.split("==")
    if len(parts) > 1:
        return f"    >>> {parts[0].split('assert')[-1].strip()}\n    {parts[1].strip()}"
    return f"    >>> {test.split('assert')[-1].strip()}\n    True"


def release_code_prompt(row: Mapping[str, Any], description: str) -> str:
    """The release's code prompt: MBPP form when the row has a first test, else the APPS+/CodeInsight form."""
    head = release_head(row)
    if head is None:
        raise ValueError(f"{row.get('problem_id')}: no release head (a whole-program stdin problem)")
    test = release_first_test(row) if row.get("doctest") else None
    if test is not None:
        return f'{head}\n    """ {description}\n{release_doctest(test)}\n    """\n'
    return f'{head}\n    """ {description}"""\n'


def release_strip_docstrings(code: str) -> str:
    """``code`` without the 4-space-indented docstrings the release removes (its regex), tabs as 4 spaces."""
    for doc in _RELEASE_DOCSTRING.findall(code):
        code = code.replace(doc, "")
    return _release_code(code)


def release_summary_prompt(code: str, exemplar: tuple[str, str] | None) -> str:
    """The release's one-shot summary prompt; ``exemplar`` is (reference code, pool description), both as they are."""
    text = ""
    if exemplar is not None:
        text += f"{CODE_HEADER}{_release_code(exemplar[0])}\n{DESCRIPTION_HEADER}{exemplar[1]}\n\n"
    return text + f"{CODE_HEADER}{release_strip_docstrings(code)}\n{DESCRIPTION_HEADER}"


def release_keep_functions(code: str, name: str) -> str:
    """The release's ``truncate_noisy_funcs`` (MBPP): the top-level functions up to the one named ``name`` when
    it is there (joined by blank lines), else the code up to the first new ``def``."""
    if f"def {name}(" in code:
        parts = code.split("\ndef ")
        funcs = [parts[0]] + ["def " + part for part in parts[1:]]
        i = next(i for i, func in enumerate(funcs) if f"def {name}(" in func)
        return "\n\n".join(funcs[: i + 1])
    cut = code.find("\ndef ")
    return code if cut < 0 else code[:cut]


def release_cut(text: str, stops: Sequence[str]) -> str:
    """The release's ``truncate_code_at_stopwords``: ``text`` up to the first stop string found in it."""
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if 0 <= index < cut:
            cut = index
    return text[:cut]


# --------------------------------------------------------------------------------------------------- summaries


def summary_prompt(code: str, exemplar: tuple[str, str] | None, style: str = "base") -> Prompt:
    """One-shot prompt to describe ``code``; ``exemplar`` is (code, description) of another problem, or None."""
    _check_style(style)
    if style == "release":
        return release_summary_prompt(code, exemplar)
    target = strip_docstrings(code).strip("\n").rstrip()
    if style == "chat":
        messages: list[dict[str, str]] = []
        if exemplar is not None:
            messages.append({"role": "user", "content": _chat_summary_request(strip_docstrings(exemplar[0]))})
            messages.append({"role": "assistant", "content": exemplar[1].strip()})
        messages.append({"role": "user", "content": _chat_summary_request(target)})
        return messages
    text = ""
    if exemplar is not None:
        example = strip_docstrings(exemplar[0]).strip("\n").rstrip()
        text += f"{CODE_HEADER}{example}\n{DESCRIPTION_HEADER}{exemplar[1].strip()}\n\n"
    return text + f"{CODE_HEADER}{target}\n{DESCRIPTION_HEADER}"


def _chat_summary_request(code: str) -> str:
    return (
        f"Here is a Python program:\n```python\n{code.strip()}\n```\n"
        "Write the description of the programming task this code solves, as the task's statement would say it. "
        "Answer with the description only."
    )


def rewrite_prompt(description: str, style: str = "base") -> Prompt:
    """A prompt to paraphrase a seed description (the RFT+RD baseline); cut the output with ``SUMMARY_STOP``."""
    _check_style(style)
    style = "base" if style == "release" else style  # the release's RFT+RD prompt is not part of its code
    instruction = (
        "Rewrite the following description of a programming task in different words, keeping its meaning and "
        "every detail."
    )
    if style == "chat":
        content = f"{instruction} Answer with the rewritten description only.\n\n{description.strip()}"
        return [{"role": "user", "content": content}]
    return f"{instruction}\n\n###Description:\n{description.strip()}\n###Rewritten description:\n"


def extract_description(completion: str, style: str = "base") -> str:
    """A generated description: the text before the next ``###`` block, stripped (release style: not stripped,
    as the release inserts it into the next prompt)."""
    if style == "release":
        return release_cut(completion, RELEASE_SUMMARY_STOPS)
    cut = completion.find("\n###")
    text = completion if cut < 0 else completion[:cut]
    return text.strip()


# --------------------------------------------------------------------------------------------------- extraction


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first stop string; a stop at the very start counts (the prompt ended with a newline)."""
    padded = "\n" + text
    cut = len(padded)
    for stop in stops:
        index = padded.find(stop)
        if 0 <= index < cut:
            cut = index
    return padded[1:cut] if cut > 0 else ""


_FENCE = re.compile(r"```([^\n`]*)\n(.*?)(?:\n```|\Z)", re.DOTALL)


def first_code_block(text: str) -> str:
    """The first fenced Python block (```python, ```py or a bare ```), else the first block, else the text."""
    blocks = [(m.group(1).strip().lower(), m.group(2)) for m in _FENCE.finditer(text)]
    for tag, code in blocks:
        if tag in ("", "python", "python3", "py"):
            return code
    return blocks[0][1] if blocks else text


def extract_code(row: Mapping[str, Any], completion: str, method: str = "stop", style: str = "base") -> str:
    """A complete program from what the model wrote after ``code_prompt(row, ..., style)``.

    Base style: ``prompt_head`` + the body, cut by the stop strings (``method="stop"``, the release) or, with
    ``method="ast"``, the longest prefix that parses, keeping the entry point and the top-level imports,
    functions, classes and constant assignments after it, and dropping top-level statements such as prints,
    asserts and ``if __name__`` blocks. Chat style: the first ```python block (or the whole text), cleaned the
    same way as ``"ast"``.
    """
    _check_style(style)
    if method not in EXTRACTION_METHODS:
        raise ValueError(f"unknown extraction method {method!r}; valid methods: {', '.join(EXTRACTION_METHODS)}")
    if style == "release":
        release = release_head(row)
        if release is not None:
            return _release_program(row, release, completion, method)
        style = "base"
    head = row.get("prompt_head") or ""
    function = is_function_problem(row)
    if style == "chat":
        code = first_code_block(completion).strip("\n")
        if function:
            return _finish(_clean_module(code, keep_from_line=0))
        parsed = _longest_parsable_prefix("", code)
        return _finish(parsed if parsed is not None else code)
    stopped = _finish(head + cut_at_stops(completion, stop_strings(row)).rstrip())
    if method == "stop":
        return stopped
    prefix = _longest_parsable_prefix(head, completion)
    if prefix is None:
        return stopped
    if not function:
        return _finish(prefix)
    return _finish(_clean_module(prefix, keep_from_line=head.count("\n")))


def _release_program(row: Mapping[str, Any], head: str, completion: str, method: str) -> str:
    """Release style: the head, then the body (cut at the stop strings, or the ``ast`` way); a function-wrapped
    stdin program gets the call of its function at the end, so that it is a whole program."""
    mbpp = bool(row.get("doctest"))
    body = release_cut(completion, RELEASE_MBPP_STOPS if mbpp else STOP_STRINGS)
    if mbpp and row.get("entry_point"):
        body = release_keep_functions(body, row["entry_point"])
    program = head + "\n" + body
    if method == "ast":
        prefix = _longest_parsable_prefix(head + "\n", completion)
        if prefix is not None:
            program = _clean_module(prefix, keep_from_line=head.count("\n") + 1)
    name = None if is_function_problem(row) else release_wrapped_name(row.get("reference") or "")
    if name is not None:
        program = program.rstrip() + f"\n\n\n{name}()\n"
    return _finish(program)


def _finish(program: str) -> str:
    return program.rstrip() + "\n"


def _longest_parsable_prefix(head: str, completion: str) -> str | None:
    """``head`` + the longest prefix of ``completion`` (whole lines) that parses with the head, or None."""
    lines = completion.splitlines(keepends=True)
    if not lines:
        return None
    # try everything first: a well-formed completion costs one parse
    for k in range(len(lines), 0, -1):
        candidate = head + "".join(lines[:k])
        if _parse(candidate) is not None and candidate.strip() != head.strip():
            return candidate
    return None


_SIDE_EFFECT_CALLS = frozenset({"print", "input", "open", "exit", "quit", "breakpoint", "main"})


def _clean_module(code: str, keep_from_line: int) -> str:
    """Keep the top-level node holding line ``keep_from_line`` (1-based; 0: none) and everything before it;
    after it, keep only imports, functions, classes and assignments that call nothing defined here."""
    prefix = _longest_parsable_prefix("", code)
    if prefix is None:
        return code
    tree = _parse(prefix)
    assert tree is not None  # parsed a moment ago
    lines = prefix.splitlines(keepends=True)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    kept_until = 0
    for node in tree.body:
        if node.lineno <= keep_from_line <= node.end_lineno:  # type: ignore[operator]
            kept_until = node.end_lineno  # type: ignore[assignment]
    parts = ["".join(lines[:kept_until]).rstrip()] if kept_until else []
    for node in tree.body:
        if node.lineno <= kept_until:
            continue
        if _keep_top_level(node, defined):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            parts.append("".join(lines[start - 1 : node.end_lineno]).rstrip())
    parts = [p for p in parts if p]
    return "\n\n\n".join(parts) + "\n" if parts else ""


def _keep_top_level(node: ast.stmt, defined: set[str]) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        calls = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        return not calls & (defined | _SIDE_EFFECT_CALLS)
    return False


# --------------------------------------------------------------------------------------------------- docstrings


def strip_docstrings(code: str) -> str:
    """``code`` without the docstrings of its module, classes and functions; the input itself if it does not parse.

    Only docstrings that sit on lines of their own are removed; a body left empty gets ``pass``.
    """
    tree = _parse(code)
    if tree is None:
        return code
    lines = code.splitlines(keepends=True)
    drop: set[int] = set()
    passes: dict[int, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = _docstring_node(node.body)
        if doc is None or not _on_own_lines(lines, doc):
            continue
        drop.update(range(doc.lineno - 1, doc.end_lineno))  # type: ignore[arg-type]
        if len(node.body) == 1 and not isinstance(node, ast.Module):
            line = lines[doc.lineno - 1]
            passes[doc.lineno - 1] = line[: len(line) - len(line.lstrip())] + "pass\n"
    out = []
    for i, line in enumerate(lines):
        if i in passes:
            out.append(passes[i])
        elif i not in drop:
            out.append(line)
    return "".join(out)


def _docstring_node(body: list[ast.stmt]) -> ast.Expr | None:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            return body[0]
    return None


def _on_own_lines(lines: list[str], node: ast.stmt) -> bool:
    before = lines[node.lineno - 1][: node.col_offset]
    after = lines[node.end_lineno - 1][node.end_col_offset :]  # type: ignore[index]
    return not before.strip() and (not after.strip() or after.strip().startswith("#"))


# --------------------------------------------------------------------------------------------------- training


def training_pair(row: Mapping[str, Any], program: str, style: str = "base") -> dict[str, Any]:
    """A TRL prompt-completion example: ``program`` for the row's (seed) description.

    Base: the prompt is ``code_prompt(row)`` and the completion the program's body after ``prompt_head`` (a
    docstring of the entry point, as HumanEval references have, is dropped: the prompt has one). Chat: the
    prompt messages and an assistant message holding the program in a ```python block.
    """
    _check_style(style)
    prompt = code_prompt(row, style=style)
    if style == "release":
        return {"prompt": prompt, "completion": release_body(row, program)}
    if style == "chat":
        code = program.strip("\n").rstrip()
        content = f"```python\n{code}\n```"
        return {"prompt": prompt, "completion": [{"role": "assistant", "content": content}]}
    return {"prompt": prompt, "completion": program_body(row, program)}


def program_body(row: Mapping[str, Any], program: str) -> str:
    """What the model writes after the base code prompt to produce ``program``."""
    head = row.get("prompt_head") or ""
    program = _finish(program)
    if not is_function_problem(row):
        return program[len(head) :] if program.startswith(head) else program
    if program.startswith(head):
        start = head.count("\n")
    else:
        # a program that does not start with the head (another stage's extraction, a hand-written one):
        # its body is what follows the entry point's def line
        tree = _parse(program)
        node = _find_def(tree, row["entry_point"]) if tree is not None else None
        if node is None:
            return program
        start = _header_end(program, node)
    lines = program.splitlines(keepends=True)
    body = lines[start:]
    tree = _parse(program)
    if tree is not None:
        doc = _first_statement_after(tree, start, row["entry_point"])
        if doc is not None and _is_string_statement(doc) and _on_own_lines(lines, doc):
            del body[doc.lineno - 1 - start : doc.end_lineno - start]  # type: ignore[operator]
    return "".join(body)


def release_body(row: Mapping[str, Any], program: str) -> str:
    """What the model writes after the release-style code prompt to produce ``program``: the program after the
    release head, its 4-space docstrings removed and tabs as 4 spaces (the release's training target, without the
    newline it wrongly starts with); a function-wrapped stdin program loses its final call."""
    head = release_head(row)
    if head is None:
        return program_body(row, program)
    code = release_strip_docstrings(_finish(program))
    if not code.startswith(head + "\n"):
        return program_body(row, program)
    body = code[len(head) + 1 :]
    name = None if is_function_problem(row) else release_wrapped_name(row.get("reference") or "")
    if name is not None:
        body = re.sub(rf"\n*{re.escape(name)}\(\)\s*$", "\n", body)
    return _finish(body) if body.strip() else ""


def _first_statement_after(tree: ast.Module, line: int, entry_point: str) -> ast.stmt | None:
    node = _find_def(tree, entry_point)
    if node is None:
        return None
    return next((stmt for stmt in node.body if stmt.lineno > line), None)


def _is_string_statement(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


# --------------------------------------------------------------------------------------------------- stops

# With AST extraction, generation must not stop at "\ndef": helpers after the target are what it keeps. These
# stops end a function problem's completion where the model starts test or driver code, or something else.
AST_STOP_STRINGS = ["\nif __name__", "\nassert ", "\nprint(", '\n"""', "\n```", "\n###"]


def code_stops(row: dict[str, Any], prompt_style: str, extraction: str) -> tuple[str, ...]:
    """The stop strings of a code completion for ``row``: what the chain samples with, and what eval measures
    with (so a model is measured on codes extracted as in training)."""
    if prompt_style == "chat":
        return ()  # the chat turn ends at EOS; extraction takes the first code block
    if extraction == "ast" and (is_function_problem(row) or
                                (prompt_style == "release" and release_head(row) is not None)):
        return tuple(AST_STOP_STRINGS)
    return tuple(stop_strings(row, prompt_style))


# --------------------------------------------------------------------------------------------------- tokens


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_pair(tokenizer: Any, prompt: str | list[dict], completion: str | list[dict]) -> tuple[list[int], int]:
    """Token ids of prompt + completion + EOS and the index of the first completion token.

    Base style: the prompt is tokenised alone, as it is at inference, and the completion after it, then EOS.
    Tokenising the two jointly (what TRL does with raw prompt-completion text) would merge the prompt's last
    newline with the body's indentation (``"\\n" + "    "`` is one token in byte-level BPE), so the model would
    be trained on a context it never sees when it generates. Tokenizers that change a text when it starts it
    (SentencePiece's dummy-prefix space) cannot be split so; for them the joint tokenisation is used, with TRL's
    rule: the completion starts where the tokenised prompt and prompt + completion diverge.
    Chat style: the chat template renders both, and that rule splits them; the template closes the assistant
    turn, which is the completion's end.
    """
    if isinstance(prompt, list):
        prompt_ids = _ids(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                                        return_dict=True))
        full = _ids(tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True))
        return full, max(1, common_prefix_length(prompt_ids, full))
    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if eos is None or eos_id is None:
        raise GiftgenError("the tokenizer has no EOS token, so the end of a code cannot be scored or learnt")
    text = completion[: -len(eos)] if completion.endswith(eos) else completion
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    ids = prompt_ids + list(tokenizer(text, add_special_tokens=False)["input_ids"])
    joint = list(tokenizer(prompt + text)["input_ids"])
    if ids != joint and tokenizer.decode(ids) != tokenizer.decode(joint):
        # the separate tokenisation does not spell prompt + completion: fall back to the joint one
        return joint + [eos_id], max(1, common_prefix_length(prompt_ids, joint))
    # The first token is never predicted, so at least one token is context.
    return ids + [eos_id], max(1, len(prompt_ids))


def _ids(encoded: Any) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
