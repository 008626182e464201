"""`--push-to-hub` and Hub-id input, for real, against a local Hub (tests/hubserver.py).

The CLI runs in a subprocess with ``HF_ENDPOINT`` pointing at the local server, as a user would run it against a
private Hub: huggingface_hub reads its endpoint and token when it is imported, so an in-process run could not
change them. Requests meant for any other host are trapped by the server (it is also the proxy) and recorded.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.hubserver import HubServer

REPO_ROOT = Path(__file__).resolve().parents[1]
WRITE_TOKEN = "hf_localtest_write_0123456789abcdef"
READ_TOKEN = "hf_localtest_read_0123456789abcdef"
TOKENS = {WRITE_TOKEN: "write", READ_TOKEN: "read"}
PARQUET = "data/train-00000-of-00001.parquet"

ROWS = [
    {"problem_id": "mbpp/2", "description": "Find the shared elements of two lists.", "code": "def f(a, b):\n"
     "    return set(a) & set(b)\n", "ppl": 1.25, "passed": True, "tags": ["set", "list"], "meta": {"step": 1}},
    {"problem_id": "mbpp/3", "description": "Unicode ✓, \"quotes\" and a\nnewline.", "code": "", "ppl": None,
     "passed": False, "tags": [], "meta": {"step": 2}},
    {"problem_id": "mbpp/4", "description": "Largest n numbers, with a heap.", "code": "import heapq\n",
     "ppl": 3.5, "passed": True, "tags": ["heap"], "meta": {"step": 3}},
]

# What datasets itself sends elsewhere while loading a Hub dataset: its download counter (s3.amazonaws.com) and
# a parquet-export lookup on datasets-server.<endpoint host>. Both are trapped here; nothing else may stray.
DATASETS_OWN_STRAYS = ("s3.amazonaws.com", "datasets-server.")


def giftgen(hub: HubServer, cwd: Path, *args: str, token: str | None = WRITE_TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_OFFLINE", "GIFTGEN_"))}
    env.update(hub.client_env(token, str(cwd / "hf-home")))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "giftgen", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_parquet(data: bytes) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()


def card_metadata(readme: str) -> dict:
    assert readme.startswith("---\n"), readme[:200]
    return yaml.safe_load(readme.split("---\n", 2)[1])


def assert_only_known_strays(hub: HubServer) -> None:
    assert hub.unhandled() == [], [(r.method, r.path) for r in hub.unhandled()]
    for r in hub.find(route="stray"):
        assert r.headers.get("host", "").startswith(DATASETS_OWN_STRAYS), (r.method, r.headers.get("host"), r.path)


@pytest.fixture
def hub():
    """A fresh local Hub that knows one write token and one read-only token."""
    with HubServer(tokens=TOKENS) as server:
        yield server


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """One local Hub, and the result of `giftgen convert rows.jsonl --push-to-hub me/ds` against it.

    The tests that use it only read from the Hub, so that they hold in any order.
    """
    cwd = tmp_path_factory.mktemp("hub")
    write_jsonl(cwd / "rows.jsonl", ROWS)
    with HubServer(tokens=TOKENS) as hub:
        result = giftgen(hub, cwd, "convert", "rows.jsonl", "--push-to-hub", "me/ds")
        pushed_requests = list(hub.requests)
        yield hub, cwd, result, pushed_requests


def test_push_uploads_the_rows_as_parquet_and_a_card(pushed):
    hub, _, result, requests = pushed
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --push-to-hub without -o: nothing on stdout

    # The repo was created as a dataset repo under the given namespace.
    (create,) = [r for r in requests if r.route == "create_repo"]
    body = json.loads(create.body)
    assert (body["name"], body["organization"], body["type"]) == ("ds", "me", "dataset")

    # The parquet went through the LFS protocol: batch, upload of exactly its bytes, verify, then a commit.
    files = hub.files("me/ds")
    assert set(files) == {".gitattributes", PARQUET, "README.md"}
    parquet = files[PARQUET]
    (upload,) = [r for r in requests if r.route == "lfs_upload"]
    assert upload.body == parquet
    assert [r.route for r in requests if r.route in ("lfs_batch", "lfs_upload", "lfs_verify")] == [
        "lfs_batch", "lfs_upload", "lfs_verify"]
    commits = [json.loads(line) for r in requests if r.route == "commit" for line in r.body.splitlines()]
    lfs_files = [c["value"] for c in commits if c["key"] == "lfsFile"]
    assert [f["path"] for f in lfs_files] == [PARQUET] and lfs_files[0]["size"] == len(parquet)

    # The parquet holds the rows, in order, with their types.
    assert read_parquet(parquet) == ROWS

    # The card: giftgen's text with the exact command, and datasets' metadata (splits, features) kept.
    readme = files["README.md"].decode()
    assert "giftgen convert rows.jsonl --push-to-hub me/ds" in readme
    assert "| stage | convert |" in readme and "| rows | 3 |" in readme
    meta = card_metadata(readme)
    assert "giftgen" in meta["tags"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train",
                                                                         "path": "data/train-*"}]}]
    assert meta["dataset_info"]["splits"] == [{"name": "train", "num_bytes": meta["dataset_info"]["splits"][0]
                                               ["num_bytes"], "num_examples": 3}]
    assert {f["name"] for f in meta["dataset_info"]["features"]} == set(ROWS[0])
    assert_only_known_strays(hub)


def test_token_reaches_the_server_and_nothing_else(pushed):
    hub, _, result, requests = pushed
    writes = [r for r in requests if r.route in ("create_repo", "preupload", "commit", "lfs_batch")]
    assert writes and all(r.headers.get("authorization") == f"Bearer {WRITE_TOKEN}" for r in writes)
    secret = WRITE_TOKEN.encode()
    for commit in hub.commits("me/ds"):  # every version of every file ever committed
        for path, f in commit.files.items():
            assert secret not in f.content, path
    assert all(secret not in r.body for r in requests)
    assert WRITE_TOKEN not in result.stdout and WRITE_TOKEN not in result.stderr
    strays = [r for r in requests if r.route == "stray"]
    assert all("authorization" not in r.headers for r in strays)


def test_hub_id_input_reads_the_rows_back(pushed):
    hub, cwd, _, _ = pushed
    before = len(hub.requests)
    result = giftgen(hub, cwd, "convert", "me/ds", "--split", "train", "-o", "back.jsonl")
    assert result.returncode == 0, result.stderr
    back = [json.loads(line) for line in (cwd / "back.jsonl").read_text(encoding="utf-8").splitlines()]
    assert back == ROWS
    reads = hub.requests[before:]
    parquet_reads = [r for r in reads if r.route == "resolve" and r.path.endswith(PARQUET) and r.method == "GET"]
    assert parquet_reads and all(r.status in (200, 206) for r in parquet_reads)
    assert all(r.headers.get("authorization") == f"Bearer {WRITE_TOKEN}" for r in reads if r.route != "stray")
    assert WRITE_TOKEN not in result.stdout + result.stderr
    assert_only_known_strays(hub)


@pytest.mark.parametrize(("args", "expected"), [
    (["me/nothing"], "Hub dataset 'me/nothing' could not be loaded"),
    (["me/ds", "--split", "test"], "Bad split: test"),
], ids=["missing-dataset", "missing-split"])
def test_hub_id_input_that_does_not_resolve_is_a_usage_error(pushed, args, expected):
    hub, cwd, _, _ = pushed
    result = giftgen(hub, cwd, "convert", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert expected in error


def test_a_second_push_replaces_the_rows_and_the_card(hub, tmp_path):
    write_jsonl(tmp_path / "rows.jsonl", ROWS)
    write_jsonl(tmp_path / "fewer.jsonl", ROWS[:2])
    first = giftgen(hub, tmp_path, "convert", "rows.jsonl", "--push-to-hub", "me/ds")
    assert first.returncode == 0, first.stderr
    before = len(hub.requests)
    result = giftgen(hub, tmp_path, "convert", "fewer.jsonl", "--push-to-hub", "me/ds")
    assert result.returncode == 0, result.stderr
    assert not [r for r in hub.requests[before:] if r.route == "create_repo"]  # the repo exists already
    files = hub.files("me/ds")
    assert set(files) == {".gitattributes", PARQUET, "README.md"}
    assert read_parquet(files[PARQUET]) == ROWS[:2]
    readme = files["README.md"].decode()
    assert "| rows | 2 |" in readme and "giftgen convert fewer.jsonl --push-to-hub me/ds" in readme
    assert card_metadata(readme)["dataset_info"]["splits"][0]["num_examples"] == 2
    assert_only_known_strays(hub)


@pytest.mark.parametrize(("token", "status"), [("hf_not_a_valid_token", 401), (READ_TOKEN, 403), (None, 401)],
                         ids=["bad-token", "read-only-token", "no-token"])
def test_refused_push_is_a_one_line_error_naming_the_login(hub, tmp_path, token, status):
    write_jsonl(tmp_path / "rows.jsonl", ROWS)
    result = giftgen(hub, tmp_path, "convert", "rows.jsonl", "--push-to-hub", "me/ds", token=token)
    assert status in [r.status for r in hub.requests]  # the server did refuse
    assert not hub.find(route="commit") and ("dataset", "me/ds") not in hub.repos
    assert_only_known_strays(hub)
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "me/ds" in errors[0] and "hf auth login" in errors[0] and "HF_TOKEN" in errors[0]
    assert str(status) in errors[0]
    if token is not None:
        assert token not in result.stdout + result.stderr
