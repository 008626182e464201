"""Rows in, rows out: every dataset form that giftgen commands read and write, implemented once.

Inputs (``read_rows``): ``-`` (JSONL on stdin, only when asked for explicitly), ``.jsonl``, ``.jsonl.gz``,
``.json`` (a JSON list), ``.parquet``, a ``Dataset.save_to_disk`` directory, or a Hugging Face Hub dataset id.
Outputs (``RowWriter``): stdout as JSONL (the default), ``.jsonl``, ``.jsonl.gz``, ``.parquet``, a
``save_to_disk`` directory, and ``push_to_hub``. JSONL is streamed both ways; the other forms stream rows into a
temporary JSONL file first so that memory stays constant, and convert it on close.

Rows are plain ``dict``s. Stages add columns and pass every other column through untouched. A stage declares
the columns it needs with ``require``; a missing column is an ``InputError`` that names the command producing it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

from giftgen.errors import GiftgenError, InputError

# Which command produces each column a stage may need: the hint of a missing-column error.
PRODUCERS: dict[str, str] = {
    "problem_id": "giftgen seeds",
    "description": "giftgen seeds",
    "reference": "giftgen seeds",
    "entry_point": "giftgen seeds",
    "prompt_head": "giftgen seeds",
    "tests": "giftgen seeds",
    "source": "giftgen seeds",
    "split": "giftgen seeds",
    "code": "giftgen chain",
    "gen_description": "giftgen chain",
    "raw": "giftgen chain",
    "status": "giftgen verify",
    "passed": "giftgen verify",
    "nll": "giftgen score",
    "ppl": "giftgen score",
    "prompt": "giftgen select",
    "completion": "giftgen select",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
JSON_FILES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")  # read_numbered's forms
_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".gz", ".txt", ".csv")
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "object"}


class PipeClosed(Exception):
    """The reader of our stdout went away (``| head``): stop quietly."""


# --------------------------------------------------------------------------------------------------- reading


def read_rows(source: str | os.PathLike, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the rows of ``source`` one at a time, in order.

    ``split`` selects a split of a Hub dataset or of a ``DatasetDict`` saved to disk; elsewhere it is ignored.
    """
    name = os.fspath(source)
    if name == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError(
                "refusing to read rows from a terminal",
                hint="pipe JSONL in (`giftgen seeds mbpp | giftgen verify -`) or give a file",
            )
        stream = getattr(sys.stdin, "buffer", sys.stdin)
        yield from _read_jsonl(stream, "<stdin>")
        return
    path = Path(name)
    if path.is_dir():
        yield from _read_disk(path, split)
        return
    if path.is_file():
        if path.name.lower().endswith(JSON_FILES):
            yield from (row for _, row in read_numbered(path))
        elif path.suffix.lower() == ".parquet":
            yield from _read_parquet(path)
        else:
            raise InputError(
                f"cannot tell the format of {name}",
                hint="use .jsonl, .jsonl.gz, .json, .parquet or a save_to_disk directory",
            )
        return
    if name.lower().endswith(_FILE_SUFFIXES) or not _HUB_ID.match(name):
        raise InputError(f"no such file: {name}")
    yield from _read_hub(name, split)


def read_numbered(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, row) of a JSON file: JSON Lines in ``.jsonl`` / ``.jsonl.gz`` (numbered by line), a JSON list of
    objects in ``.json`` / ``.json.gz`` (numbered by item, from 1). The one reader of JSON files: ``read_rows`` and
    the seed sources (``giftgen.seeds``) both read through it, so a file reads the same everywhere."""
    name = os.fspath(path)
    lower = name.lower()
    if not lower.endswith(JSON_FILES):
        raise InputError(f"cannot tell the format of {name}", hint="use .jsonl, .jsonl.gz, .json or .json.gz")
    opener: Callable[..., IO[bytes]] = gzip.open if lower.endswith(".gz") else open  # type: ignore[assignment]
    try:
        with opener(path, "rb") as f:
            if lower.endswith((".json", ".json.gz")):
                yield from _numbered_json_list(f.read(), name)
            else:
                yield from _numbered_jsonl(f, name)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # truncated or corrupt
        raise InputError(f"{name}: not a readable gzip file ({e or 'truncated'})") from None


def _read_jsonl(stream: IO[bytes], name: str) -> Iterator[dict[str, Any]]:
    for _, row in _numbered_jsonl(stream, name):
        yield row


def _numbered_jsonl(stream: IO[bytes], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:  # also an integer of more than 4,300 digits, which int() refuses
            raise InputError(f"{name}, line {lineno}: invalid JSON ({e})") from None
        except RecursionError:
            raise InputError(f"{name}, line {lineno}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise InputError(f"{name}, line {lineno}: expected a JSON object, got {_type_name(row)}")
        yield lineno, row


def _numbered_json_list(raw: bytes, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(raw)
    except ValueError as e:  # also an integer of more than 4,300 digits, which int() refuses
        raise InputError(f"{name}: invalid JSON ({e})") from None
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply") from None
    if not isinstance(data, list):
        raise InputError(f"{name}: expected a JSON list of objects, got {_type_name(data)}")
    for i, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise InputError(f"{name}, item {i}: expected a JSON object, got {_type_name(row)}")
        yield i, row


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise InputError(f"{path}: not a readable parquet file ({e})") from None
    for batch in pf.iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _read_disk(path: Path, split: str | None) -> Iterator[dict[str, Any]]:
    if not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
        raise InputError(f"{path} is a directory but not a dataset saved with save_to_disk")
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        ds = _pick_split(ds, split, str(path))
    yield from ds


def _read_hub(name: str, split: str | None) -> Iterator[dict[str, Any]]:
    from datasets import load_dataset

    try:
        ds = load_dataset(name, split=split or "train", streaming=True)
    except Exception as e:  # offline, missing repo, missing split: all end the same way for the user
        raise InputError(
            f"no such file, and the Hub dataset {name!r} could not be loaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    yield from ds


def _pick_split(dd: Mapping[str, Any], split: str | None, name: str) -> Any:
    if split is None:
        if len(dd) == 1:
            return next(iter(dd.values()))
        raise InputError(f"{name} has splits {sorted(dd)}", hint="choose one with --split")
    if split not in dd:
        raise InputError(f"{name} has no split {split!r}; it has {sorted(dd)}")
    return dd[split]


# --------------------------------------------------------------------------------------------------- checking


def require(row: Mapping[str, Any], columns: Mapping[str, type | tuple[type, ...]], index: int, stage: str) -> None:
    """Check that ``row`` (the ``index``-th, counting from 1) has ``columns`` with the declared types.

    ``None`` is accepted for any column whose declared types include ``type(None)``.
    """
    for column, types in columns.items():
        if column not in row:
            producer = PRODUCERS.get(column)
            hint = f"it is produced by `{producer}`" if producer else None
            raise InputError(f"`giftgen {stage}`: row {index} has no column {column!r}", hint=hint)
        value = row[column]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            names = [_TYPE_NAMES.get(t, t.__name__) for t in _as_tuple(types) if t is not type(None)]
            if "integer" in names and "number" in names:
                names.remove("integer")
            expected = " or ".join(names)
            raise InputError(
                f"`giftgen {stage}`: row {index}, column {column!r}: expected {expected}, got {_type_name(value)}"
            )


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------------------- writing


def stdout_records() -> IO[bytes]:
    """Return a private binary stream onto the real stdout, and point file descriptor 1 at stderr.

    Libraries print to stdout (vLLM logs, trainer status lines); after this call their output lands on stderr
    and stdout carries records only. Under a test runner whose ``sys.stdout`` has no file descriptor, the
    runner's stream is returned unchanged. With no standard output at all (started with it closed), an
    ``InputError``.
    """
    if sys.stdout is None:
        raise InputError("standard output is closed: there is nowhere to write the rows",
                         hint="give an output file with -o, or redirect standard output")
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):
        return sys.stdout.buffer
    sys.stdout.flush()
    private = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    return os.fdopen(private, "wb")


_records_stream: IO[bytes] | None = None


def records_stream() -> IO[bytes]:
    """The process-wide record stream (see ``stdout_records``), created on first use."""
    global _records_stream
    if _records_stream is None:
        _records_stream = stdout_records()
    return _records_stream


def reset_records_stream() -> None:
    """Forget the record stream (tests run many commands in one process)."""
    global _records_stream
    _records_stream = None


def dumps(row: Mapping[str, Any]) -> bytes:
    """One JSONL line. A lone surrogate (from a program's message, or a ``\\ud800`` escape read from JSON) is not
    Unicode and cannot be written as UTF-8 or held by Arrow: it becomes U+FFFD, so every row is writable."""
    text = json.dumps(row, ensure_ascii=False, default=_json_default)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(_valid_unicode(row), ensure_ascii=False, default=_json_default).encode() + b"\n"


def _valid_unicode(value: Any) -> Any:
    """``value`` with every string's lone surrogates replaced (pairs are joined), iteratively (rows may nest)."""
    def fix(v: Any) -> Any:
        if isinstance(v, str):
            return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return v

    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        v = parent[key]
        if isinstance(v, Mapping):
            v = parent[key] = {fix(k): item for k, item in v.items()}
            stack += [(v, k) for k in v]
        elif isinstance(v, (list, tuple)):
            v = parent[key] = list(v)
            stack += [(v, i) for i in range(len(v))]
        else:
            parent[key] = fix(v)
    return root[0]


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays come out of datasets and pandas
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write a value of type {type(value).__name__} to JSON")


class RowWriter:
    """Write rows to stdout (``output=None`` or ``"-"``), a file, a ``save_to_disk`` directory and/or the Hub.

    Use as a context manager; rows are committed on a clean exit. A file or directory output is written under a
    partial name beside it (``NAME.partial``, see ``partial_path``) and renamed onto ``NAME`` only on a clean exit,
    so a failed command leaves no output that a later stage would read as a (short or empty) dataset; the partial
    is removed on failure. ``resumable=True`` keeps the partial instead, and ``append=True`` then continues it (or
    a finished ``NAME``, moved back to the partial name) after cutting off a partial last line: a rerun of a killed
    ``chain -o FILE.jsonl`` resumes from it. ``in_place=True`` writes ``NAME`` itself (for callers that mark
    completion themselves, as ``giftgen run`` does). JSONL is flushed per row, so a crash loses at most one row.
    """

    def __init__(
        self,
        output: str | os.PathLike | None = None,
        push_to_hub: str | None = None,
        *,
        append: bool = False,
        split: str = "train",
        private: bool | None = None,
        card: Callable[[int, Path], str | CardRenderer] | None = None,
        config_name: str = "default",
        resumable: bool = False,
        in_place: bool = False,
    ):
        self.output = None if output is None or os.fspath(output) == "-" else Path(output)
        self.resumable = resumable
        self.push_to_hub = push_to_hub
        self.split = split
        self.private = private
        # card(count, rows_jsonl): the card to push beside the rows, given their number and a JSONL file of them
        self.card = card
        self.config_name = config_name
        self.revision: str | None = None  # the commit of the push, once pushed
        self.count = 0
        self._stream: IO[bytes] | None = None
        self._tmp: Path | None = None
        kind = self._kind()
        if self.output is not None and self.output.is_dir() and not self.output.is_symlink() and (
                kind != "disk" or (any(self.output.iterdir()) and not _saved_dataset(self.output))):
            # replacing it would delete the user's files (`-o .`, `-o data`): only a saved dataset is replaced
            raise InputError(f"{self.output} is a directory but not a dataset saved with save_to_disk: refusing to "
                             "replace it", hint="give a new name, or a file name ending in .jsonl or .parquet")
        # where the rows go until they are complete: the partial name, or the output itself when in place
        self._target = None if self.output is None else self.output if in_place else partial_path(self.output)
        if self._target is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            if append and self._target != self.output and not self._target.exists() and self.output.exists():
                os.replace(self.output, self._target)  # a finished file being extended: continue it as a partial
            if not append and self._target != self.output:
                _remove(self._target)  # what an earlier failed attempt left
        if kind == "stdout":
            self._stream = records_stream() if push_to_hub is None else None
        elif kind == "jsonl":
            if append:
                truncate_partial_line(self._target)
            self._stream = open(self._target, "ab" if append else "wb")
        elif kind == "jsonl.gz":
            self._stream = gzip.open(self._target, "ab" if append else "wb")
        if kind in ("parquet", "disk") or push_to_hub is not None:
            fd, tmp = tempfile.mkstemp(prefix="giftgen-", suffix=".jsonl")
            os.close(fd)
            self._tmp = Path(tmp)
            self._tmp_stream: IO[bytes] | None = open(self._tmp, "wb")
        else:
            self._tmp_stream = None

    def _kind(self) -> str:
        if self.output is None:
            return "stdout"
        name = self.output.name.lower()
        if name.endswith(".jsonl"):
            return "jsonl"
        if name.endswith(".jsonl.gz"):
            return "jsonl.gz"
        if name.endswith(".parquet"):
            return "parquet"
        if self.output.suffix == "":
            return "disk"
        raise InputError(
            f"cannot tell which format to write {self.output}",
            hint="use .jsonl, .jsonl.gz, .parquet, or a directory name (save_to_disk)",
        )

    def write(self, row: Mapping[str, Any]) -> None:
        line = dumps(row)
        if self._stream is not None:
            try:
                self._stream.write(line)
                self._stream.flush()
            except BrokenPipeError:
                raise PipeClosed() from None
        if self._tmp_stream is not None:
            self._tmp_stream.write(line)
        self.count += 1

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def close(self, commit: bool = True) -> None:
        if self._stream is not None and self._kind() != "stdout":
            self._stream.close()
        elif self._stream is not None:
            try:
                self._stream.flush()
            except BrokenPipeError:
                raise PipeClosed() from None
        self._stream = None
        try:
            if self._tmp_stream is not None:
                self._tmp_stream.close()
                self._tmp_stream = None
                try:
                    if commit:
                        self._convert()
                finally:
                    self._tmp.unlink(missing_ok=True)
        except BaseException:
            commit = False
            raise
        finally:
            self._finish(commit)

    def _finish(self, commit: bool) -> None:
        """Rename the partial onto the output after a clean exit; otherwise remove it (or keep it to resume)."""
        target, self._target = self._target, None
        if target is None or target == self.output or not (target.exists() or target.is_symlink()):
            return
        if commit:
            _remove(self.output)  # os.replace cannot replace a directory
            os.replace(target, self.output)
        elif not self.resumable:
            _remove(target)

    def _convert(self) -> None:
        from datasets import Dataset

        tmp = self._tmp

        def rows() -> Iterator[dict[str, Any]]:
            with open(tmp, "rb") as f:
                yield from _read_jsonl(f, str(tmp))

        # The Arrow cache lives only as long as the conversion: save_to_disk and to_parquet copy out of it.
        with tempfile.TemporaryDirectory(prefix="giftgen-cache-") as cache_dir:
            if self.count == 0:
                ds = Dataset.from_list([])
            else:
                ds = Dataset.from_generator(rows, cache_dir=cache_dir)
            kind = self._kind()
            if kind == "parquet":
                ds.to_parquet(str(self._target))
            elif kind == "disk":
                ds.save_to_disk(str(self._target))
            if self.push_to_hub is not None:
                card = self.card(self.count, tmp) if self.card is not None else None
                self.revision = push_dataset(ds, self.push_to_hub, split=self.split, private=self.private,
                                             card=card, config_name=self.config_name)
            del ds

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)


def partial_path(output: str | os.PathLike) -> Path:
    """Where ``RowWriter`` writes ``output`` until it is complete: ``NAME.partial`` in the same folder (a name no
    stage reads as a dataset)."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


def _saved_dataset(path: Path) -> bool:
    """Whether the directory ``path`` holds a dataset written by ``save_to_disk``."""
    return any((path / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# Renders a card from the files already in the repo: gets ``fetch(path) -> bytes | None`` and returns the README
# text and other files (path in the repo -> bytes) to commit with it, e.g. ``giftgen.json`` and plots.
CardRenderer = Callable[[Callable[[str], "bytes | None"]], "tuple[str, dict[str, bytes]]"]


def push_dataset(ds: Any, repo_id: str, *, split: str = "train", private: bool | None = None,
                 card: str | CardRenderer | None = None, config_name: str = "default") -> str:
    """Push ``ds`` to the Hub as ``config_name``/``split``, then the card; return the commit that holds both.

    The token comes from ``HF_TOKEN`` or the saved login, never from giftgen.
    """
    try:
        info = ds.push_to_hub(repo_id, split=split, private=private, config_name=config_name)
        revision = getattr(info, "oid", None)
        if card is not None:
            revision = _push_card(repo_id, card)
        return revision
    except Exception as e:
        raise GiftgenError(
            f"could not push to the Hub dataset {repo_id!r}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            hint="log in with `hf auth login` or set HF_TOKEN",
        ) from None


def _push_card(repo_id: str, card: str | CardRenderer) -> str:
    """Replace the README.md that ``push_to_hub`` just wrote with giftgen's card, keeping that README's metadata;
    commit the card's other files with it, in one commit, and return that commit.

    datasets records the split layout (``configs``) and the features (``dataset_info``) in the README's YAML;
    a card pushed over it without them leaves the Hub guessing splits from file names and losing the features.
    Keys giftgen's card sets win; every other key of the pushed README is kept.
    """
    from huggingface_hub import CommitOperationAdd, DatasetCard, DatasetCardData, HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def fetch(path: str) -> bytes | None:
        try:
            return Path(hf_hub_download(repo_id, path, repo_type="dataset")).read_bytes()
        except EntryNotFoundError:
            return None

    text, files = card(fetch) if callable(card) else (card, {})
    new = DatasetCard(text)
    readme = fetch("README.md")
    if readme is not None:
        old = DatasetCard(readme.decode("utf-8"))
        new.data = DatasetCardData(**{**old.data.to_dict(), **new.data.to_dict()})
    new.validate(repo_type="dataset")
    operations = [CommitOperationAdd("README.md", str(new).encode("utf-8"))]
    operations += [CommitOperationAdd(path, content) for path, content in sorted(files.items())]
    info = HfApi().create_commit(repo_id, operations, repo_type="dataset",
                                 commit_message="Update the dataset card (giftgen)")
    return info.oid


def truncate_partial_line(path: Path) -> None:
    """Cut a half-written last line off a JSONL file (a run killed mid-write), so appending stays valid."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # walk back to the last newline
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                f.truncate(start + idx + 1)
                return
            pos = start
        f.truncate(0)


# --------------------------------------------------------------------------------------------------- shards


class Shard(NamedTuple):
    """Shard ``index`` (counting from 0) of ``count``; written ``I/N``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(spec: str | Shard) -> Shard:
    """``"I/N"`` as ``Shard(I, N)``: shard I (counting from 0) of N."""
    if isinstance(spec, Shard):
        return spec
    index, slash, count = str(spec).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not slash or n < 1 or not 0 <= i < n:
        raise InputError(f"--shard takes I/N with 0 <= I < N (shard I of N, counting from 0), got {spec!r}")
    return Shard(i, n)


def shard_of(problem_id: str, count: int) -> int:
    """The shard (0..count-1) that ``problem_id`` belongs to: a stable hash, the same on every machine."""
    import hashlib

    digest = hashlib.blake2b(problem_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % count


def shard_filter(rows: Iterable[dict[str, Any]], shard: str | Shard | None, stage: str = "shard") -> Iterator[dict[str, Any]]:
    """The rows of shard ``"I/N"`` (all rows when ``shard`` is None), keyed by ``problem_id``.

    The N shards partition any input: disjoint, complete, and every row of a problem in the same shard, whatever
    the row order or the other rows, so N machines can each run a stage on one shard and `giftgen merge` joins them.
    """
    if shard is None:
        yield from rows
        return
    i, n = parse_shard(shard)
    for index, row in enumerate(rows, start=1):
        require(row, {"problem_id": str}, index, stage)
        if shard_of(row["problem_id"], n) == i:
            yield row
