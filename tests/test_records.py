"""Dataset plane: every input and output form round-trips the same rows; errors name lines, columns and rows."""

from __future__ import annotations

import gzip
import json

import pytest

from giftgen.errors import InputError
from giftgen.records import RowWriter, read_rows, require, truncate_partial_line

ROWS = [
    {"problem_id": "p/1", "description": "Add one.", "tests": json.dumps({"kind": "assert", "asserts": []}),
     "score": 1.5, "tags": ["a", "b"], "meta": {"k": 1}},
    {"problem_id": "p/2", "description": "Unicode ✓ and \"quotes\"\nnewline", "tests": "{}", "score": None,
     "tags": [], "meta": {"k": 2}},
]


def _write(path, rows=ROWS):
    with RowWriter(path) as w:
        w.write_many(rows)
    return w.count


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz", "rows.parquet", "rows_dir"])
def test_every_form_round_trips(tmp_path, name):
    path = tmp_path / name
    assert _write(path) == 2
    assert list(read_rows(path)) == ROWS


def test_json_list_input(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS))
    assert list(read_rows(path)) == ROWS


def test_save_to_disk_dataset_dict_needs_split(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(ROWS[:1]), "test": Dataset.from_list(ROWS[1:])}).save_to_disk(tmp_path / "dd")
    with pytest.raises(InputError, match="--split"):
        list(read_rows(tmp_path / "dd"))
    assert [r["problem_id"] for r in read_rows(tmp_path / "dd", split="test")] == ["p/2"]
    with pytest.raises(InputError, match="no split 'dev'"):
        list(read_rows(tmp_path / "dd", split="dev"))


def test_malformed_line_names_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n')
    rows = read_rows(path)
    assert next(rows) == {"a": 1}
    assert next(rows) == {"a": 2}
    with pytest.raises(InputError, match=r"line 4: invalid JSON"):
        next(rows)


def test_non_object_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InputError, match=r"line 2: expected a JSON object, got list"):
        list(read_rows(path))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_rows(tmp_path / "nope.jsonl"))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="cannot tell the format"):
        list(read_rows(tmp_path / "x.csv"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a dataset saved with save_to_disk"):
        list(read_rows(tmp_path / "plain"))


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="Hub dataset 'nobody/nothing'"):
        list(read_rows("nobody/nothing"))


def test_require_names_column_producer_and_row():
    require({"code": "x"}, {"code": str}, 1, "verify")
    with pytest.raises(InputError, match=r"row 3 has no column 'code'.*giftgen chain"):
        require({"x": 1}, {"code": str}, 3, "verify")
    with pytest.raises(InputError, match=r"row 5, column 'passed': expected boolean, got string"):
        require({"passed": "yes"}, {"passed": bool}, 5, "select")
    with pytest.raises(InputError, match=r"expected number, got boolean"):
        require({"ppl": True}, {"ppl": (int, float)}, 1, "select")
    require({"ppl": None}, {"ppl": (float, type(None))}, 1, "select")


def test_partial_last_line_is_cut_for_resume(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    truncate_partial_line(path)
    assert list(read_rows(path)) == [{"a": 1}, {"a": 2}]
    with RowWriter(path, append=True) as w:
        w.write({"a": 3})
    assert list(read_rows(path)) == [{"a": 1}, {"a": 2}, {"a": 3}]
    path.write_bytes(b'{"a": 1')
    truncate_partial_line(path)
    assert path.read_bytes() == b""


def test_gzip_output_is_gzip(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    _write(path)
    with gzip.open(path, "rt") as f:
        assert json.loads(f.readline())["problem_id"] == "p/1"


def test_unknown_output_format(tmp_path):
    with pytest.raises(InputError, match="cannot tell which format"):
        RowWriter(tmp_path / "rows.csv")


def test_failed_stage_leaves_no_partial_parquet(tmp_path):
    path = tmp_path / "rows.parquet"
    with pytest.raises(RuntimeError):
        with RowWriter(path) as w:
            w.write(ROWS[0])
            raise RuntimeError("stage failed")
    assert not path.exists()


def test_json_gz_reads_as_a_json_list_everywhere(tmp_path):
    """One reader of JSON files: `.json.gz` is a gzipped `.json` (a list) for the stages and the seed sources
    alike, and a `.json.gz` holding JSON Lines is the same error in both."""
    from giftgen.seeds.common import read_records

    rows = [{"a": 1}, {"a": 2}]
    listed, lines = tmp_path / "rows.json.gz", tmp_path / "rows.jsonl.gz"
    listed.write_bytes(gzip.compress(json.dumps(rows).encode()))
    lines.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in rows)))
    for path in (listed, lines):
        assert list(read_rows(path)) == rows
        assert [row for _, row in read_records(str(path), "generic")] == rows
    assert [n for n, _ in read_records(str(listed), "generic")] == [1, 2]
    wrong = tmp_path / "lines.json.gz"
    wrong.write_bytes(lines.read_bytes())
    for read in (lambda: list(read_rows(wrong)), lambda: list(read_records(str(wrong), "generic"))):
        with pytest.raises(InputError, match="lines.json.gz: invalid JSON"):
            read()
