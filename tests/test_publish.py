"""Publishing a real run to a local Hub (tests/hubserver.py): per-stage configs, per-round splits, the card and its
files, models whose card pins the dataset commit, metadata merge, and `giftgen STAGE --push-to-hub`.

As in test_hub.py, giftgen runs in a subprocess whose ``HF_ENDPOINT`` is the local server (huggingface_hub reads
its endpoint when imported); everything meant for another host is trapped by the server and checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.hubserver import HubServer
from tests.run_output import build_run, read
from tests.test_hub import (
    REPO_ROOT,
    TOKENS,
    WRITE_TOKEN,
    assert_only_known_strays,
    card_metadata,
    read_parquet,
)

PNG = b"\x89PNG\r\n\x1a\n"
STAGES = ("chain", "verify", "score", "select")


def python(hub: HubServer, cwd: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_OFFLINE", "GIFTGEN_"))}
    env.update(hub.client_env(WRITE_TOKEN, str(cwd / "hf-home")))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def add_model(run_dir: Path, tiny_model: Path) -> Path:
    """round-1/model as `giftgen finetune` leaves it: the weights and tokenizer, and the model card it writes."""
    from giftgen.card import model_card
    from giftgen.config import resolve
    from giftgen.finetune import FinetuneConfig, FinetuneResult

    folder = run_dir / "round-1" / "model"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(tiny_model, folder)
    config = resolve(FinetuneConfig, None, {"model": str(tiny_model), "output_dir": str(folder)})
    result = FinetuneResult(str(folder), examples=11, dropped=0, steps=1, train_loss=5.0)
    data = str(run_dir / "round-1" / "select.jsonl")
    (folder / "README.md").write_text(model_card(config, result, dataset_name=data, command="giftgen run r.yaml"))
    return folder


@pytest.fixture(scope="module")
def published(tmp_path_factory, data_dir, tiny_model):
    """A local Hub holding `publish_run(run, "me/run", model_repo="me/model")` of the real run output."""
    cwd = tmp_path_factory.mktemp("publish")
    run_dir = build_run(tmp_path_factory.mktemp("run"), data_dir, tiny_model)
    add_model(run_dir, tiny_model)
    with HubServer(tokens=TOKENS) as hub:
        code = ("import json, sys; from giftgen.publish import publish_run; "
                "print(json.dumps(publish_run(sys.argv[1], 'me/run', model_repo='me/model')))")
        result = python(hub, cwd, code, str(run_dir))
        assert result.returncode == 0, result.stderr
        shas = json.loads(result.stdout.strip().splitlines()[-1])
        yield hub, cwd, run_dir, shas, result


def test_one_config_per_stage_and_a_split_per_round(published):
    hub, _, run_dir, shas, _ = published
    assert list(shas) == ["seeds/train", *(f"round-1/{s}" for s in STAGES), "round-1/model"]
    # the commits sent carry each stage's rows under its config and round split
    committed = [json.loads(line)["value"]["path"] for r in hub.find(route="commit") if "/datasets/" in r.path
                 for line in r.body.splitlines() if json.loads(line)["key"] in ("file", "lfsFile")]
    for stage in STAGES:
        assert f"{stage}/round_1-00000-of-00001.parquet" in committed
    files = hub.files("me/run")
    for stage in STAGES:
        rows = read_parquet(files[f"{stage}/round_1-00000-of-00001.parquet"])
        assert len(rows) == len(read(run_dir / "round-1" / f"{stage}.jsonl"))
    meta = card_metadata(files["README.md"].decode())
    configs = {c["config_name"]: [f["split"] for f in c["data_files"]] for c in meta["configs"]}
    assert configs == {"seeds": ["train"], "chain": ["round_1"], "verify": ["round_1"], "score": ["round_1"],
                       "select": ["round_1"]}
    # every push is two commits (rows, then card and files); the last is what publish_run returned
    assert hub.commits("me/run")[-1].oid == shas["round-1/select"]
    assert_only_known_strays(hub)


def test_card_files_beside_the_rows(published):
    hub, _, run_dir, shas, _ = published
    files = hub.files("me/run")
    assert files["plots/ppl_round_1.png"].startswith(PNG)
    assert yaml.safe_load(files["recipe.yaml"]) == yaml.safe_load((run_dir / "recipe.yaml").read_text())
    doc = json.loads(files["giftgen.json"])
    assert sorted(doc["entries"]) == ["chain/round_1", "score/round_1", "seeds/train", "select/round_1",
                                      "verify/round_1"]
    readme = files["README.md"].decode()
    assert "| round_1 | – | 27 | 6 | 6 | 11 |" in readme and "| train | 3 | – | – | – | – |" in readme
    assert "](plots/ppl_round_1.png)" in readme and "](recipe.yaml)" in readme
    assert 'load_dataset("me/run", "select", split="round_1")' in readme
    # the chain's settings come from the stage's marker: what that round ran with
    marker = json.loads((run_dir / "round-1" / "chain.json").read_text())
    assert doc["entries"]["chain/round_1"]["settings"] == marker["config"]


def test_load_dataset_reads_each_config_back(published):
    hub, cwd, run_dir, _, _ = published
    code = ("import json; from datasets import load_dataset\n"
            "out = {c: [r['problem_id'] for r in load_dataset('me/run', c, split='round_1')] "
            "for c in ('chain', 'verify', 'score', 'select')}\n"
            "out['chain_all'] = sorted(load_dataset('me/run', 'chain'))\n"
            "print(json.dumps(out))")
    result = python(hub, cwd, code)
    assert result.returncode == 0, result.stderr
    back = json.loads(result.stdout.strip().splitlines()[-1])
    for stage in STAGES:
        assert back[stage] == [r["problem_id"] for r in read(run_dir / "round-1" / f"{stage}.jsonl")]
    assert back["chain_all"] == ["round_1"]  # the config's splits are the rounds
    assert_only_known_strays(hub)


def test_model_card_pins_the_dataset_commit(published):
    hub, _, run_dir, shas, _ = published
    revision = shas["round-1/select"]
    model_files = hub.files("me/model", repo_type="model")
    readme = model_files["README.md"].decode()
    assert f"/datasets/me/run/tree/{revision}" in readme
    assert f"load_dataset('me/run', 'select', split='round_1', revision='{revision}')" in readme
    assert card_metadata(readme)["datasets"] == ["me/run"]
    assert "config.json" in model_files and "model.safetensors" in model_files
    assert (run_dir / "round-1" / "model" / "README.md").read_text() == readme  # the local card says the same
    # that revision holds exactly the rows the model was trained on
    at_revision = hub.files("me/run", revision=revision)
    rows = read_parquet(at_revision["select/round_1-00000-of-00001.parquet"])
    local = read(run_dir / "round-1" / "select.jsonl")
    assert [(r["problem_id"], r["completion"]) for r in rows] == [(r["problem_id"], r["completion"]) for r in local]
    assert hub.commits("me/model", repo_type="model")[-1].oid == shas["round-1/model"]


def test_no_token_anywhere(published):
    hub, _, _, _, result = published
    secret = WRITE_TOKEN.encode()
    for repo, kind in (("me/run", "dataset"), ("me/model", "model")):
        for commit in hub.commits(repo, repo_type=kind):
            for path, f in commit.files.items():
                assert secret not in f.content, (repo, path)
    assert WRITE_TOKEN not in result.stdout + result.stderr


def test_push_onto_an_existing_card_keeps_its_metadata(tmp_path, data_dir, tiny_model):
    run_dir = build_run(tmp_path, data_dir, tiny_model)
    existing = "---\nlicense: other\nlanguage:\n- en\ntags:\n- mine\nowner_note: keep me\n---\n\n# Mine\n"
    (tmp_path / "README.md").write_text(existing)
    code = ("import sys; from huggingface_hub import HfApi; from giftgen.publish import publish_stage\n"
            "api = HfApi(); api.create_repo('me/kept', repo_type='dataset')\n"
            "api.upload_file(path_or_fileobj=sys.argv[1], path_in_repo='README.md', repo_id='me/kept', "
            "repo_type='dataset')\n"
            "print(publish_stage(sys.argv[2], 'me/kept', 'chain', 1))")
    with HubServer(tokens=TOKENS) as hub:
        result = python(hub, tmp_path, code, str(tmp_path / "README.md"), str(run_dir / "round-1" / "chain.jsonl"))
        assert result.returncode == 0, result.stderr
        readme = hub.files("me/kept")["README.md"].decode()
        assert_only_known_strays(hub)
    meta = card_metadata(readme)
    assert meta["license"] == "other" and meta["language"] == ["en"] and meta["owner_note"] == "keep me"
    assert meta["tags"][0] == "mine" and "giftgen" in meta["tags"]
    assert meta["configs"][0]["config_name"] == "chain"  # and datasets' own metadata is there too
    assert "| 1 | 9 | 3 | 33.3% | 3 | 2 |" in readme  # the body is giftgen's card


def test_stage_command_pushes_its_config_with_its_settings(tmp_path, data_dir, tiny_model):
    run_dir = build_run(tmp_path, data_dir, tiny_model)
    shutil.copy(run_dir / "round-1" / "score.jsonl", tmp_path / "score.jsonl")
    args = ["select", "score.jsonl", "-T", "3", "-k", "2", "--push-to-hub", "me/sel"]
    with HubServer(tokens=TOKENS) as hub:
        result = python(hub, tmp_path, "import sys; from giftgen.cli import main; main()", *args)
        assert result.returncode == 0, result.stderr
        files = hub.files("me/sel")
        assert_only_known_strays(hub)
    assert result.stdout == ""
    assert "select/train-00000-of-00001.parquet" in files and "giftgen.json" in files
    readme = files["README.md"].decode()
    assert [c["config_name"] for c in card_metadata(readme)["configs"]] == ["select"]
    assert "T = 3; K = 2 codes drawn with replacement" in readme
    assert "select score.jsonl -T 3 -k 2 --push-to-hub me/sel" in readme


def test_a_sandboxed_command_records_the_limits_it_ran_with(tmp_path, data_dir, tiny_model):
    """`giftgen verify --push-to-hub`: the card's sandbox table gives the command's own limits, not the defaults."""
    run_dir = build_run(tmp_path, data_dir, tiny_model)
    shutil.copy(run_dir / "round-1" / "chain.jsonl", tmp_path / "chain.jsonl")
    args = ["verify", "chain.jsonl", "--timeout", "2.5", "--memory-mb", "700", "--push-to-hub", "me/ver"]
    with HubServer(tokens=TOKENS) as hub:
        result = python(hub, tmp_path, "import sys; from giftgen.cli import main; main()", *args)
        assert result.returncode == 0, result.stderr
        readme = hub.files("me/ver")["README.md"].decode()
    assert "| timeout | 2.5 |" in readme and "| memory_mb | 700 |" in readme
    assert "defaults of `giftgen.sandbox.Limits`" not in readme


def test_run_publishes_its_rounds_and_model(tmp_path, data_dir, tiny_model):
    """`giftgen run --push-to-hub` publishes every stage of the finished run and the model linked to its data."""
    recipe = REPO_ROOT / "recipes" / "quickstart.yaml"
    args = ["run", str(recipe), "--model", str(tiny_model), "--run-dir", str(tmp_path / "run"), "--no-isolate",
            "--push-to-hub", "me/qs", "--push-models-to", "me/qs-model",
            "--set", f"run.train_path={data_dir / 'mbpp-sanitized.json'}", "--set", "run.train_limit=2",
            "--set", f"run.eval_path={data_dir / 'mbppplus-v0.1.0.jsonl'}", "--set", "run.eval_limit=2",
            "--set", "chain.steps=1", "--set", "chain.max_new_tokens=8", "--set", "chain.desc_max_new_tokens=8",
            "--set", "chain.device=cpu", "--set", "score.device=cpu", "--set", "finetune.device=cpu",
            "--set", "finetune.max_steps=1", "--set", "eval.max_new_tokens=8", "--set", "eval.device=cpu"]
    with HubServer(tokens=TOKENS) as hub:
        result = python(hub, tmp_path, "import sys; from giftgen.cli import main; main()", *args)
        assert result.returncode == 0, result.stderr
        files = hub.files("me/qs")
        model_files = hub.files("me/qs-model", repo_type="model")
        assert_only_known_strays(hub)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    published = summary["published"]
    assert {"seeds/train", "round-1/chain", "round-1/select", "round-1/eval", "round-0/eval"} <= set(published)
    assert "chain/round_1-00000-of-00001.parquet" in files and "recipe.yaml" in files
    assert "config.json" in model_files
    assert published["round-1/select"] in model_files["README.md"].decode()  # the model card pins the data
    assert WRITE_TOKEN not in result.stdout + result.stderr
