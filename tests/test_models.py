"""`--model` names checked before transformers loads them: a missing folder, a folder without a model, a Hub id
offline or without network each give one sentence that says what to do, from every loading path."""

from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner
from huggingface_hub import constants

from giftgen.cli import main
from giftgen.errors import ConfigError
from giftgen.model_check import check_model


@pytest.fixture
def closed_endpoint(monkeypatch):
    """A Hub endpoint nothing listens on (a port just closed), with HF_HUB_OFFLINE off: "no network"."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_missing_folder_does_not_exist(tmp_path):
    for name in (str(tmp_path / "no-such-model"), "./no-such-model", "~/no-such-model", "a/b/c"):
        with pytest.raises(ConfigError, match="folder .*no-such-model does not exist|folder a/b/c does not exist"):
            check_model(name)


def test_a_folder_without_a_model_says_so(tmp_path):
    with pytest.raises(ConfigError) as e:
        check_model(str(tmp_path))
    assert str(e.value).startswith(f"the folder {tmp_path} holds no model: it has no config.json (nor a .gguf file) (")
    assert "save_pretrained" in e.value.hint
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a model folder"):
        check_model(str(tmp_path / "notes.txt"))
    with pytest.raises(ConfigError, match="holds no tokenizer: it has no config.json or tokenizer_config.json"):
        check_model(str(tmp_path), what="tokenizer")
    (tmp_path / "tokenizer.json").write_text("{}")
    check_model(str(tmp_path), what="tokenizer")  # a tokenizer folder need not hold a model
    with pytest.raises(ConfigError, match="holds no model"):
        check_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    check_model(str(tmp_path))  # a model folder: the loader's turn
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    check_model(str(tmp_path / "m.gguf"))


def test_a_hub_id_offline_and_not_cached(monkeypatch, empty_cache):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="'org/model' is not in the Hugging Face cache, and HF_HUB_OFFLINE=1"):
        check_model("org/model")
    (empty_cache / "models--org--model" / "snapshots").mkdir(parents=True)
    check_model("org/model")


def test_a_hub_id_without_network_fails_fast_and_hints_offline(closed_endpoint, empty_cache, capsys):
    start = time.monotonic()
    with pytest.raises(ConfigError) as e:
        check_model("org/model")
    assert time.monotonic() - start < 5
    assert "cannot reach the Hugging Face Hub" in str(e.value) and "HF_HUB_OFFLINE=1" in e.value.hint
    (empty_cache / "models--org--model" / "snapshots").mkdir(parents=True)
    check_model("org/model")  # cached: it loads, after a hint that saves the clients' retries
    assert "Set HF_HUB_OFFLINE=1" in capsys.readouterr().err


def test_every_loading_path_checks(tmp_path):
    from giftgen.backends.hf import TransformersBackend
    from giftgen.finetune import FinetuneConfig, build_trainer
    from giftgen.score import load_tokenizer, transformers_scorer

    missing = str(tmp_path / "gone")
    for load in (lambda: TransformersBackend(missing), lambda: transformers_scorer(missing),
                 lambda: load_tokenizer(missing), lambda: build_trainer(FinetuneConfig(model=missing), [])):
        with pytest.raises(ConfigError, match="gone does not exist"):
            load()


def test_the_cli_says_it_in_one_line(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    made = CliRunner().invoke(main, ["seeds", "toy", "--limit", "2", "-o", str(seeds)])
    assert made.exit_code == 0, made.output
    for model, message in ((str(tmp_path / "gone"), f"Error: the model folder {tmp_path / 'gone'} does not exist"),
                           (str(tmp_path), f"Error: the folder {tmp_path} holds no model: it has no config.json")):
        result = CliRunner().invoke(main, ["eval", str(seeds), "--model", model, "--device", "cpu"])
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and errors[0].startswith(message), result.stderr
        assert "Repo id" not in result.stderr and "from one of" not in result.stderr
