"""Prompt templates and extraction, on literal strings."""

from __future__ import annotations

import ast

import pytest

from giftgen.prompts import (
    STDIO_STOP_STRINGS,
    STOP_STRINGS,
    SUMMARY_STOP,
    code_prompt,
    cut_at_stops,
    extract_code,
    extract_description,
    first_code_block,
    rewrite_prompt,
    stop_strings,
    strip_docstrings,
    summary_prompt,
    training_pair,
)

ROW = {
    "problem_id": "mbpp/2",
    "description": "Write a function to find the shared elements from the given two lists.",
    "reference": "def similar_elements(test_tup1, test_tup2):\n    res = tuple(set(test_tup1) & set(test_tup2))\n    return res\n",
    "entry_point": "similar_elements",
    "prompt_head": "def similar_elements(test_tup1, test_tup2):\n",
    "doctest": ">>> set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))\nset((4, 5))",
}
STDIO = {
    "problem_id": "apps/test/1",
    "description": "Read two integers and print their sum.",
    "reference": "a, b = map(int, input().split())\nprint(a + b)\n",
    "entry_point": None,
    "prompt_head": "",
    "doctest": None,
}

COMPLETION = (
    "    common = set(test_tup1) & set(test_tup2)\n"
    "    return tuple(sorted(common))\n"
    "\n"
    "\n"
    "def helper(x):\n"
    "    return x\n"
    "\n"
    "print(similar_elements((1, 2), (2, 3)))\n"
    "assert similar_elements((1,), (1,)) == (1,)\n"
    'if __name__ == "__main__":\n'
    "    main()\n"
)


def test_base_code_prompt_for_an_mbpp_row():
    assert code_prompt(ROW) == (
        "def similar_elements(test_tup1, test_tup2):\n"
        '    """ Write a function to find the shared elements from the given two lists.\n'
        "    >>> set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))\n"
        "    set((4, 5))\n"
        '    """\n'
    )
    # another description (a chain step) keeps the head and the original doctest
    prompt = code_prompt(ROW, "Return the items two tuples share.")
    assert prompt.startswith(ROW["prompt_head"] + '    """ Return the items two tuples share.\n    >>> set(')


def test_docstring_follows_the_reference_indentation():
    two = {**ROW, "reference": "def similar_elements(a, b):\n  return a\n"}
    assert code_prompt(two).splitlines()[1] == '  """ Write a function to find the shared elements from the given two lists.'
    tabs = {**ROW, "reference": "def similar_elements(a, b):\n\treturn a\n"}
    assert code_prompt(tabs).splitlines()[1].startswith('\t""" Write')
    # no reference: the def line's indentation plus four spaces
    method = {**ROW, "reference": None, "prompt_head": "class Solution:\n    def similar_elements(self, a, b):\n"}
    assert code_prompt(method).splitlines()[2].startswith('        """ Write')


def test_triple_quotes_in_a_description_are_escaped():
    row = {**ROW, "description": 'Return """quoted""" text.\nSecond line.', "doctest": None}
    prompt = code_prompt(row)
    assert prompt == (
        "def similar_elements(test_tup1, test_tup2):\n"
        '    """ Return \\"\\"\\"quoted\\"\\"\\" text.\n'
        "    Second line.\n"
        '    """\n'
    )
    tree = ast.parse(prompt + "    return 1\n")
    assert ast.get_docstring(tree.body[0]) == 'Return """quoted""" text.\nSecond line.'


def test_chat_code_prompt():
    (message,) = code_prompt(ROW, style="chat")
    assert message["role"] == "user"
    content = message["content"]
    assert ROW["description"] in content
    assert "```python\ndef similar_elements(test_tup1, test_tup2):\n```" in content
    assert ">>> set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))\nset((4, 5))" in content
    (message,) = code_prompt(STDIO, style="chat")
    assert "standard input" in message["content"] and STDIO["description"] in message["content"]


def test_stop_cut_drops_the_helper_and_ast_keeps_it():
    stop = extract_code(ROW, COMPLETION, method="stop")
    assert stop == (
        "def similar_elements(test_tup1, test_tup2):\n"
        "    common = set(test_tup1) & set(test_tup2)\n"
        "    return tuple(sorted(common))\n"
    )
    tree = extract_code(ROW, COMPLETION, method="ast")
    assert tree == (
        "def similar_elements(test_tup1, test_tup2):\n"
        "    common = set(test_tup1) & set(test_tup2)\n"
        "    return tuple(sorted(common))\n"
        "\n\n"
        "def helper(x):\n"
        "    return x\n"
    )
    for program in (stop, tree):
        assert program.startswith(ROW["prompt_head"])


def test_ast_keeps_the_longest_prefix_that_parses():
    completion = "    return 1\n\nimport math\nLIMIT = 10\nx = similar_elements(1, 2)\n\ndef g(:\n    pass\n"
    assert extract_code(ROW, completion, method="ast") == (
        "def similar_elements(test_tup1, test_tup2):\n    return 1\n\n\nimport math\n\n\nLIMIT = 10\n"
    )
    # nothing parses: fall back to the stop cut
    assert extract_code(ROW, "    return (\n", method="ast") == ROW["prompt_head"] + "    return (\n"


def test_cut_at_stops():
    assert cut_at_stops("    return 1\nif x:\n", STOP_STRINGS) == "    return 1"
    assert cut_at_stops("def g():\n    pass\n", STOP_STRINGS) == ""  # a stop right after the prompt
    assert cut_at_stops("    return 1\n    # fine\n    return 2", STOP_STRINGS) == "    return 1\n    # fine\n    return 2"
    assert stop_strings(ROW) == STOP_STRINGS and stop_strings(STDIO) == STDIO_STOP_STRINGS


def test_chat_extraction_takes_the_first_python_block_and_cleans_it():
    answer = (
        "Here you go:\n```python\nimport math\n\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n\n"
        "print(similar_elements((1,), (1,)))\n```\nand a test:\n```python\nassert True\n```\n"
    )
    assert extract_code(ROW, answer, style="chat") == (
        "import math\n\n\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n"
    )
    assert first_code_block("no fences at all") == "no fences at all"
    assert first_code_block("```text\nnot code\n```\n```py\nx = 1\n```") == "x = 1"
    assert extract_code(STDIO, "```python\nn = int(input())\nprint(n)\n```", style="chat") == "n = int(input())\nprint(n)\n"


def test_stdio_base_prompt_and_extraction():
    prompt = code_prompt(STDIO)
    assert prompt == '"""\nRead two integers and print their sum.\n"""\n'
    completion = 'import sys\n\nif True:\n    print(sum(map(int, sys.stdin.read().split())))\n"""\nNext problem'
    program = extract_code(STDIO, completion)
    assert program == "import sys\n\nif True:\n    print(sum(map(int, sys.stdin.read().split())))\n"
    assert extract_code(STDIO, completion, method="ast") == program
    pair = training_pair(STDIO, program)
    assert pair["prompt"] + pair["completion"] == prompt + program


def test_training_pair_round_trips():
    program = extract_code(ROW, COMPLETION)
    pair = training_pair(ROW, program)
    body = "    common = set(test_tup1) & set(test_tup2)\n    return tuple(sorted(common))\n"
    assert pair == {"prompt": code_prompt(ROW), "completion": body}
    assert pair["prompt"] + pair["completion"] == code_prompt(ROW) + body
    ast.parse(pair["prompt"] + pair["completion"])
    # the reference pairs the same way
    assert training_pair(ROW, ROW["reference"])["completion"] == ROW["reference"][len(ROW["prompt_head"]) :]


def test_training_pair_drops_the_reference_docstring():
    row = {
        "description": "Add one.",
        "entry_point": "inc",
        "prompt_head": "import os\n\n\ndef inc(x):\n",
        "doctest": None,
        "reference": 'import os\n\n\ndef inc(x):\n    """ Add one.\n    >>> inc(1)\n    2\n    """\n    return x + 1\n',
    }
    pair = training_pair(row, row["reference"])
    assert pair["prompt"] == 'import os\n\n\ndef inc(x):\n    """ Add one.\n    """\n'
    assert pair["completion"] == "    return x + 1\n"


def test_training_pair_for_a_program_without_the_head():
    program = "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n"
    assert training_pair(ROW, program)["completion"] == "    return tuple(set(a) & set(b))\n"


def test_chat_training_pair():
    program = extract_code(ROW, COMPLETION)
    pair = training_pair(ROW, program, style="chat")
    assert pair["prompt"] == code_prompt(ROW, style="chat")
    assert pair["completion"] == [{"role": "assistant", "content": f"```python\n{program.rstrip()}\n```"}]


def test_summary_prompt():
    target = 'def f(x):\n    """Secret description."""\n    return x + 1\n'
    exemplar = ('def g(y):\n    """Doc of g."""\n    return y * 2\n', "Double a number.")
    prompt = summary_prompt(target, exemplar)
    assert prompt == (
        "###Code:\ndef g(y):\n    return y * 2\n###Description of the given code:\nDouble a number.\n\n"
        "###Code:\ndef f(x):\n    return x + 1\n###Description of the given code:\n"
    )
    assert "Secret" not in prompt and prompt.endswith("###Description of the given code:\n")
    assert summary_prompt(target, None) == "###Code:\ndef f(x):\n    return x + 1\n###Description of the given code:\n"
    messages = summary_prompt(target, exemplar, style="chat")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "Double a number."
    assert "return x + 1" in messages[2]["content"] and "Secret" not in messages[2]["content"]


def test_extract_description():
    assert SUMMARY_STOP == ["\n###"]
    assert extract_description("  Add one to x.\nReturn it.\n\n###Code:\ndef h(): pass") == "Add one to x.\nReturn it."
    assert extract_description("No header here.\n") == "No header here."


def test_rewrite_prompt():
    prompt = rewrite_prompt("Add one to x.")
    assert prompt.endswith("###Description:\nAdd one to x.\n###Rewritten description:\n")
    (message,) = rewrite_prompt("Add one to x.", style="chat")
    assert message["role"] == "user" and message["content"].endswith("Add one to x.")


def test_strip_docstrings():
    code = (
        '"""Module doc."""\nimport os\n\n\nclass A:\n    """Class doc."""\n\n    def m(self):\n'
        '        """Only a docstring."""\n\n\ndef f(x):\n    """Doc\n    on two lines."""\n    s = "not a docstring"\n'
        "    return x\n"
    )
    assert strip_docstrings(code) == (
        "import os\n\n\nclass A:\n\n    def m(self):\n        pass\n\n\ndef f(x):\n    s = \"not a docstring\"\n"
        "    return x\n"
    )
    assert strip_docstrings("def f(:\n") == "def f(:\n"
    assert strip_docstrings('def f(): "doc"; return 1\n') == 'def f(): "doc"; return 1\n'


def test_unknown_style_or_method():
    with pytest.raises(ValueError, match="unknown prompt style 'instruct'; valid styles: base, chat"):
        code_prompt(ROW, style="instruct")
    with pytest.raises(ValueError, match="unknown extraction method 'regex'"):
        extract_code(ROW, COMPLETION, method="regex")


# Chat answers as SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct write them (shapes recorded from the real
# models through the llamacpp and transformers backends): prose around a fence, a usage block after the code, a
# bare fence, and an answer cut by max_new_tokens before its closing fence.
_CODE = "def similar_elements(test_tup1, test_tup2):\n    return tuple(set(test_tup1) & set(test_tup2))\n"


@pytest.mark.parametrize("answer", [
    f"Here's a Python function that finds the shared elements:\n\n```python\n{_CODE}```\n\nThis function uses "
    "the built-in `set` type to find the common elements.",
    f"```python\n{_CODE}```\n\nExample usage:\n\n```python\nprint(similar_elements((3, 4), (4, 5)))\n```\n",
    f"Sure!\n```\n{_CODE}```",
    f"To solve this, intersect the two sets.\n\n```python\n{_CODE}\n\n# Test the function\n"
    "print(similar_elements((3, 4, 5, 6), (5, 7, 4, 10)))\nassert similar_elemen",
])
def test_chat_extraction_of_real_answer_shapes(answer):
    assert extract_code(ROW, answer, style="chat") == _CODE
