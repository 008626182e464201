"""CodeInsight (Beau & Crabbé 2024): 3,403 Stack Overflow tasks (pandas, numpy, regex, the standard library).

Local folder (``--path``) in the layout the GiFT release ships (``CodeInsight/data/CodeInsight``): one folder per
split (``train``: 1,547 problems, ``test``: 1,856), one folder per problem named by its number, holding ``nl.txt``
(the description), ``code.txt`` (the reference), ``prompt.txt``, ``test_reference.py``, ``.cfg`` (libraries and
labels) and ``unit_tests/test_*.py`` (1 to 5 scripts). ``--path`` may name the folder holding ``train``/``test``
or any folder above it on that path (``CodeInsight/data/CodeInsight`` is looked for below it), or a clone of the
dataset's own repository, github.com/NathanaelBeau/CodeInsight, whose ``Codeinsight/{train,test}/<number>/``
folders have the same files.

Without ``--path`` the Hub dataset ``Nbeau/CodeInsight`` is loaded. Its dataset card (revision dfe53e8) gives one
config, ``default``, with the splits ``train`` (1,551 rows) and ``test`` (1,860) in ``data/{train,test}-*.parquet``
and four string columns: ``problem_id``, ``code``, ``nl`` (the description) and ``prompt`` (the function signature
with the description); an earlier revision had ``natural_language``, ``source`` and ``test_case_count`` instead of
``nl``. Neither holds the unit tests, so its problems cannot be verified: reading it ends with an error that says
so and names the folders to use instead. A Hub dataset that has the tests as a column (``unit_tests``, a list of
scripts or one script) is read.

``--split``: ``train`` (default: GiFT's seed set), ``test`` (its evaluation set), ``train+test`` or ``all``.

Rows: description = ``nl.txt`` stripped; reference = ``code.txt``; entry point = ``test``, which the unit tests
call (one reference names it ``test_revised``: there, its only function); prompt head = the reference up to and
including that function's ``def`` line (helpers defined before it included); doctest null; tests kind ``script``:
``scripts`` are the unit-test files (in number order, as ``names``), each run after ``setup``, the release's import
preamble (``PREAMBLE``), in the namespace where the program's functions are defined; 5 s per file in the release
(``--timeout 5``; the CodeInsight recipes set it). problem_id: ``codeinsight/<split>/<number>`` (both splits
number their problems from 0).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from giftgen.errors import InputError
from giftgen.seeds.common import (
    head_of,
    hub_error,
    normalize_code,
    parse,
    parse_split,
    seed_row,
    top_level_functions,
)

HUB_ID = "Nbeau/CodeInsight"
SPLITS = ("train", "test")
LAYOUT = ("CodeInsight", "data", "CodeInsight")
GITHUB_FOLDER = "Codeinsight"  # github.com/NathanaelBeau/CodeInsight keeps the problems in Codeinsight/{train,test}
HUB_COLUMNS = ("problem_id", "code", "nl", "prompt")  # the Hub dataset's columns (its card, revision dfe53e8)
TEST_COLUMNS = ("unit_tests", "tests")

# The release runs every unit-test file as `exec(PREAMBLE + "\n" + program + "\n" + test, {"np": numpy, "pd":
# pandas, "sklearn": sklearn})` (CodeInsight/codeinsight.py). Its preamble also imports sklearn and bs4, which
# the sandbox does not offer (pandas and numpy are the only packages beyond the standard library): with them,
# every program would fail; without them, the 19 problems that use them fail, as they should where those
# packages are missing. The `np` and `pd` globals the release passes become the first line.
PREAMBLE = (
    "import numpy as np\nimport pandas as pd\n"
    "import numpy\nimport math\nimport pandas\nimport string\nimport datetime\nimport json\nimport itertools\n"
    "import random\nimport functools\nimport collections\nimport re\n"
)
TIMEOUT = 5.0  # seconds per unit-test file in the release's chain (seq_gibbs_sample.py)


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    splits = parse_split(split, SPLITS, "train", "codeinsight")
    if path is None:
        yield from _load_hub(splits)
        return
    root = find_root(path)
    for name in splits:
        folder = root / name
        if not folder.is_dir():
            raise InputError(
                f"{path}: no {name!r} folder", hint="--path names the folder holding train/ and test/"
            )
        numbers = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: _number(p.name))
        for problem in numbers:
            yield read_problem(problem, name)


def find_root(path: str) -> Path:
    """The folder holding ``train``/``test``: ``path`` itself, or the release's layout below it."""
    base = Path(path)
    if not base.is_dir():
        raise InputError(
            f"no such folder: {path}", hint="`giftgen seeds codeinsight --path DIR` reads a folder"
        )
    candidates = [base.joinpath(*LAYOUT[len(LAYOUT) - depth :]) for depth in range(1, len(LAYOUT) + 1)]
    for candidate in [base, *candidates, base / GITHUB_FOLDER]:
        if any((candidate / s).is_dir() for s in SPLITS):
            return candidate
    raise InputError(f"{path}: not a CodeInsight folder (no train/ or test/ inside, nor {'/'.join(LAYOUT)} or "
                     f"{GITHUB_FOLDER})")


def _number(name: str) -> tuple[int, str]:
    digits = name.lstrip("q")
    return (int(digits), name) if digits.isdigit() else (1 << 62, name)


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{where}: no {path.name}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{where}: cannot read {path.name} ({e})") from None


def read_problem(folder: Path, split: str) -> dict[str, Any]:
    """One problem folder as a seed row."""
    where = str(folder)
    tests_dir = folder / "unit_tests"
    files = (
        sorted(tests_dir.glob("test_*.py"), key=lambda p: _number(p.stem.removeprefix("test_")))
        if tests_dir.is_dir()
        else []
    )
    if not files:
        raise InputError(f"{where}: no unit_tests/test_*.py")
    scripts = [_read(f, where).replace("\r\n", "\n") for f in files]
    return to_row(
        number=folder.name,
        split=split,
        description=_read(folder / "nl.txt", where),
        code=_read(folder / "code.txt", where),
        scripts=scripts,
        names=[f.name for f in files],
        where=where,
    )


def to_row(
    *, number: str, split: str, description: str, code: str, scripts: list[str], names: list[str], where: str
) -> dict[str, Any]:
    reference = normalize_code(code.lstrip("\n"))
    description = description.strip()
    if not description:
        raise InputError(f"{where}: the description is empty")
    entry, prompt_head = entry_and_head(reference, where)
    return seed_row(
        problem_id=f"codeinsight/{split}/{number}",
        source="codeinsight",
        split=split,
        description=description,
        reference=reference,
        entry_point=entry,
        prompt_head=prompt_head,
        doctest=None,
        tests={"kind": "script", "setup": PREAMBLE, "scripts": scripts, "names": names},
        raw_reference=code,
    )


_DEF = re.compile(r"^(?:async\s+)?def\s+(\w+)", re.M)


def entry_and_head(reference: str, where: str) -> tuple[str, str]:
    """The function the unit tests call (``test``; else the first top-level function) and the reference up to its
    ``def`` line, helpers defined before it included; for a reference that does not parse, the release's rule
    (every line up to the first one holding ``def ``)."""
    tree = parse(reference)
    if tree is not None:
        names = top_level_functions(tree)
        if names:
            entry = "test" if "test" in names else names[0]
            return entry, head_of(reference, entry)
    match = _DEF.search(reference)
    if match is None:
        raise InputError(f"{where}: the reference defines no function")
    lines = reference.splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if "def " in line)
    return match.group(1), "".join(lines[: end + 1])


def _load_hub(splits: list[str]) -> Iterator[dict[str, Any]]:
    try:
        from datasets import load_dataset

        data = {s: list(load_dataset(HUB_ID, split=s)) for s in splits}
    except Exception as e:  # offline, missing repo, changed layout: all end the same way for the user
        raise hub_error(HUB_ID, e) from None
    for split, items in data.items():
        if items and not any(name in items[0] for name in TEST_COLUMNS):
            raise InputError(
                f"the Hub dataset {HUB_ID} has no unit tests (its {split} split has the columns "
                f"{', '.join(sorted(items[0]))}), so its problems cannot be verified",
                hint="give --path the GiFT release's CodeInsight/data/CodeInsight folder or a clone of "
                "github.com/NathanaelBeau/CodeInsight (its Codeinsight/ folder holds the unit tests)",
            )
        for index, item in enumerate(items):
            yield _hub_row(item, split, index)


def _field(item: Mapping[str, Any], names: tuple[str, ...], where: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    raise InputError(
        f"{where}: none of the fields {', '.join(names)} (fields: {', '.join(sorted(item))})",
        hint="the Hub layout differs from the release's: give the release's folder with --path",
    )


def _hub_row(item: Mapping[str, Any], split: str, index: int) -> dict[str, Any]:
    where = f"{HUB_ID} {split} row {index}"
    tests = _field(item, TEST_COLUMNS, where)
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests) or not tests:
        raise InputError(f"{where}: the unit tests are not a list of scripts")
    number = str(item.get("problem_id", item.get("id", index)))
    return to_row(
        number=number,
        split=split,
        description=str(_field(item, ("nl", "natural_language"), where)),
        code=str(_field(item, ("code", "solution"), where)),
        scripts=tests,
        names=[f"test_{i}.py" for i in range(len(tests))],
        where=where,
    )
