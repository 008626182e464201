"""`giftgen pretrain`: a loadable model and tokenizer, the cache, tokenisation equal to the stages', the CLI.

The fast tests train a very small model for a few steps on a small corpus; the slow test trains the real one
and checks that it lands in the miniature's difficulty window.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import ConfigError, GiftgenError
from giftgen.miniature.pretrain import RECORD, PretrainConfig, batches, encode, learning_rate, pretrain
from giftgen.seeds import toy

SMALL_DOMAIN = {"n_seed": 8, "n_test3": 8, "n_test2": 8, "corpus_size": 300, "pretrain_three_op": 10}
SMALL_MODEL = {"steps": 3, "batch_size": 8, "hidden_size": 32, "intermediate_size": 64, "layers": 1, "heads": 2,
               "vocab_size": 320, "threads": 1}


@pytest.fixture(scope="module")
def domain_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "toy.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in SMALL_DOMAIN.items()))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory, domain_file) -> tuple[PretrainConfig, object]:
    config = PretrainConfig(output_dir=str(tmp_path_factory.mktemp("pretrain") / "model"), domain=str(domain_file),
                            **SMALL_MODEL)
    return config, pretrain(config)


def test_the_model_loads_and_generates(small):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from giftgen.prompts import code_prompt

    config, result = small
    assert not result.cached and result.steps == 3 and result.examples == 300 and len(result.losses) >= 1
    tokenizer = AutoTokenizer.from_pretrained(config.output_dir)
    model = AutoModelForCausalLM.from_pretrained(config.output_dir)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    assert result.parameters == sum(p.numel() for p in model.parameters())
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<|pad|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert len(tokenizer) <= 320
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat.endswith("<|assistant|>\n")
    row = next(toy.seed_rows(toy.load_domain(config.domain), "test3"))
    ids = tokenizer(code_prompt(row), return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4 or out[0, -1] == tokenizer.eos_token_id


def test_a_second_call_is_a_cache_hit(small):
    config, first = small
    weights = Path(config.output_dir) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = pretrain(config)
    assert again.cached and again.final_loss == first.final_loss and again.steps == first.steps
    assert weights.stat().st_mtime_ns == stamp
    # settings that do not change the model do not break the cache
    assert pretrain(replace(config, threads=2)).cached


def test_changed_settings_train_again(small, tmp_path):
    config, first = small
    other = replace(config, output_dir=str(tmp_path / "m"))
    copy = pretrain(other)
    assert not copy.cached and copy.losses == first.losses  # deterministic for a seed and thread count
    retrained = pretrain(replace(other, steps=4))
    assert not retrained.cached and retrained.steps == 4
    record = json.loads((tmp_path / "m" / RECORD).read_text())
    assert record["settings"]["steps"] == 4 and record["domain"]["corpus_size"] == 300
    # what else decides the weights is recorded with them: the thread count and the BLAS code path
    assert record["numerics"]["threads"] == (other.threads or min(2, os.cpu_count() or 1))
    assert record["numerics"]["cpu_capability"] in {"DEFAULT", "AVX2", "AVX512", "NEON", "SVE256", "ZVECTOR", "VSX"}
    assert pretrain(replace(other, steps=4)).cached
    assert not pretrain(replace(other, steps=4, force=True)).cached


def test_a_foreign_folder_is_refused(tmp_path, domain_file):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GiftgenError, match="does not hold a `giftgen pretrain` model"):
        pretrain(PretrainConfig(output_dir=str(tmp_path), domain=str(domain_file), **SMALL_MODEL))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_tokenisation_is_the_stages(small):
    from transformers import AutoTokenizer

    from giftgen.prompts import encode_pair

    config, _ = small
    tokenizer = AutoTokenizer.from_pretrained(config.output_dir)
    rows = list(toy.corpus(toy.load_domain(config.domain)))[:60]
    assert {r["direction"] for r in rows} == {"code", "description"}
    ours = encode(tokenizer, rows)
    assert ours == [encode_pair(tokenizer, r["prompt"], r["completion"]) for r in rows]
    for row, (ids, start) in zip(rows, ours, strict=True):
        # the prompt's tokens are a prefix of the joint tokenisation: no merge across the prompt's last newline
        joint = tokenizer(row["prompt"] + row["completion"])["input_ids"]
        assert joint == ids[:-1] and tokenizer.decode(ids[start:-1]) == row["completion"]


def test_batches_and_schedule():
    lengths = [random.Random(i).randint(5, 50) for i in range(100)]
    plan = batches(lengths, 8, 30, random.Random(0))
    assert len(plan) == 30 and all(len(b) == 8 for b in plan)
    assert all(0 <= i < 100 for b in plan for i in b)
    assert len(set(plan[0] + plan[5])) == 16  # one epoch holds each example once
    assert plan == batches(lengths, 8, 30, random.Random(0))
    with pytest.raises(ConfigError, match="larger than the corpus"):
        batches([3, 4], 8, 1, random.Random(0))
    config = PretrainConfig(steps=100, warmup_steps=10, learning_rate=1.0)
    rates = [learning_rate(s, config) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[10] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="multiple of heads"):
        PretrainConfig(hidden_size=30, heads=4).validate()
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        PretrainConfig(steps=0).validate()


def test_cli_pretrain(small, tmp_path, domain_file):
    config, _ = small
    runner = CliRunner()
    args = ["pretrain", "-o", config.output_dir, "--domain", str(domain_file)]
    for key, value in SMALL_MODEL.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cached"] is True and summary["output_dir"] == config.output_dir and "losses" not in summary

    result = runner.invoke(main, ["pretrain", "-o", str(tmp_path), "--heads", "5"])
    assert result.exit_code == 2 and "multiple of heads" in result.output


@pytest.mark.slow
def test_the_real_model_lands_in_the_difficulty_window(tmp_path):
    """The default pretraining lands in the miniature's window (docs/experiments.md, "Miniature: toy domain"), by `giftgen eval`.

    Measured with seed 0 on 2 CPU threads: test3 greedy 52%, sampled (T = 1, 4 samples) 36.75%, test2 greedy
    98.5%; seed 1 gave 56% / 40.5% / 98%. The bounds leave a few points for other CPUs' float rounding.
    """
    from giftgen.evaluate import EvalConfig, evaluate

    result = pretrain(PretrainConfig(output_dir=str(tmp_path / "base")))
    domain = toy.ToyDomain()

    def pass_at_1(split: str, **sampling) -> float:
        config = EvalConfig(model=result.output_dir, device="cpu", batch_size=128, max_new_tokens=96, **sampling)
        _, summary = evaluate(toy.seed_rows(domain, split), config)
        assert summary["incomplete_problems"] == 0
        return summary["pass@1"]

    greedy3 = pass_at_1("test3")
    sampled3 = pass_at_1("test3", n=4, temperature=1.0, top_p=1.0, top_k=0, k=["1"])
    greedy2 = pass_at_1("test2")
    assert 0.45 <= greedy3 <= 0.75, (greedy3, sampled3, greedy2)  # about half, not at ceiling
    assert 0.25 <= sampled3 <= 0.5, (greedy3, sampled3, greedy2)  # about a third
    assert greedy2 >= 0.9, (greedy3, sampled3, greedy2)  # the 2-op skill is learnt
