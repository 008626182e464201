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

Prompt = str | list[dict[str, str]]

STYLES = ("base", "chat")
EXTRACTION_METHODS = ("stop", "ast")

# The release's module-level stop strings for code: a new top-level statement ends the function.
STOP_STRINGS = ["\nclass", "\nif", "\n#", "\nprint", "\ndef", "\nassert"]
# A stdin/stdout program is all top-level statements, so those would cut it at once; these end it instead
# (a new docstring, a markdown fence or a new "###" block is the model starting something else).
STDIO_STOP_STRINGS = ['\n"""', "\n'''", "\n```", "\n###"]
SUMMARY_STOP = ["\n###"]

CODE_HEADER = "###Code:\n"
DESCRIPTION_HEADER = "###Description of the given code:\n"


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; valid styles: {', '.join(STYLES)}")


def is_function_problem(row: Mapping[str, Any]) -> bool:
    """A problem with an entry point (call/assert/check tests), as opposed to a stdin/stdout program."""
    return bool(row.get("entry_point"))


def stop_strings(row: Mapping[str, Any]) -> list[str]:
    """The stop strings for sampling code for ``row`` in base style."""
    return list(STOP_STRINGS if is_function_problem(row) else STDIO_STOP_STRINGS)


# --------------------------------------------------------------------------------------------------- code prompt


def escape_docstring(text: str) -> str:
    """Make ``text`` safe inside a ``\"\"\"`` docstring: no run of three double quotes can end it early."""
    return text.replace('"""', '\\"\\"\\"')


def code_prompt(row: Mapping[str, Any], description: str | None = None, style: str = "base") -> Prompt:
    """The prompt for sampling code for ``row`` from ``description`` (default: the row's seed description)."""
    _check_style(style)
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


# --------------------------------------------------------------------------------------------------- summaries


def summary_prompt(code: str, exemplar: tuple[str, str] | None, style: str = "base") -> Prompt:
    """One-shot prompt to describe ``code``; ``exemplar`` is (code, description) of another problem, or None."""
    _check_style(style)
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
    instruction = (
        "Rewrite the following description of a programming task in different words, keeping its meaning and "
        "every detail."
    )
    if style == "chat":
        content = f"{instruction} Answer with the rewritten description only.\n\n{description.strip()}"
        return [{"role": "user", "content": content}]
    return f"{instruction}\n\n###Description:\n{description.strip()}\n###Rewritten description:\n"


def extract_description(completion: str) -> str:
    """A generated description: the text before the next ``###`` block, stripped."""
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
    if extraction == "ast" and is_function_problem(row):
        return tuple(AST_STOP_STRINGS)
    return tuple(stop_strings(row))


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
