"""`giftgen finetune`: TRL SFT on the tiny model, on CPU. Real training runs; each test is a few seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import ConfigError, InputError
from giftgen.finetune import FinetuneConfig, accumulation_steps, build_trainer, ensure_pad_token, finetune
from giftgen.prompts import training_pair
from tests.rows import seed_rows

# The shape of `prompts.training_pair`'s pairs: the prompt ends with a newline, the completion is the indented body.
PAIRS = [
    {"prompt": 'def add(a, b):\n    """Return the sum of a and b."""\n', "completion": "    return a + b\n"},
    {"prompt": 'def is_even(n):\n    """Is n even?"""\n', "completion": "    return n % 2 == 0\n"},
]


def small_config(tiny_model: Path, out: Path, **kw) -> FinetuneConfig:
    values = dict(model=str(tiny_model), output_dir=str(out), learning_rate=3e-3, max_steps=40, global_batch_size=2,
                  per_device_batch_size=2, warmup_steps=0, logging_steps=5, device="cpu")
    values.update(kw)
    return FinetuneConfig(**values)


def mbpp_pairs(data_dir: Path, n: int) -> list[dict]:
    rows = json.loads((data_dir / "mbpp-sanitized.json").read_text())[:n]
    return [{"prompt": f'"""{r["prompt"]}"""\n', "completion": r["code"]} for r in rows]


def test_accumulation_reaches_the_global_batch():
    assert accumulation_steps(128, 4, 1) == 32
    assert accumulation_steps(128, 4, 8) == 4
    assert accumulation_steps(128, 3, 1) == 43  # rounded up: never a smaller batch than asked
    assert accumulation_steps(2, 4, 1) == 1


def test_config_checks():
    with pytest.raises(ConfigError):
        FinetuneConfig(merge_lora=True).validate()
    with pytest.raises(ConfigError):
        FinetuneConfig(global_batch_size=0).validate()
    d = FinetuneConfig()
    assert (d.learning_rate, d.epochs, d.max_length, d.global_batch_size, d.weight_decay, d.warmup_steps,
            d.max_grad_norm) == (2e-5, 2.0, 1536, 128, 0.05, 30, 1.0)


def test_labels_mask_the_prompt_and_end_with_eos(tiny_model, data_dir, tmp_path):
    # real pairs too: their prompts end with a newline and their completions with indentation
    pairs = PAIRS + [training_pair(s, s["reference"]) for s in seed_rows(data_dir, 3)]
    trainer, dropped = build_trainer(small_config(tiny_model, tmp_path / "out"), pairs)
    tok = trainer.processing_class
    assert dropped == 0
    assert tok.pad_token_id != tok.eos_token_id
    for pair, example in zip(pairs, trainer.train_dataset, strict=True):
        prompt_ids = tok(pair["prompt"])["input_ids"]
        n_prompt = len(prompt_ids)
        ids, labels = example["input_ids"], example["labels"]
        assert ids[:n_prompt] == prompt_ids  # exactly the context the model generates from
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:] == ids[n_prompt:]
        assert labels[-1] == tok.eos_token_id
        assert tok.decode(ids[n_prompt:-1]) == pair["completion"]


def test_overlong_examples_are_dropped_not_cut(tiny_model, tmp_path):
    long = {"prompt": "def f():", "completion": "\n" + "    x = 1\n" * 200}
    trainer, dropped = build_trainer(small_config(tiny_model, tmp_path / "out", max_length=64), PAIRS + [long])
    assert dropped == 1 and len(trainer.train_dataset) == 2
    assert all(ex["labels"][-1] == trainer.processing_class.eos_token_id for ex in trainer.train_dataset)


def test_loss_falls(tiny_model, data_dir, tmp_path):
    rows = mbpp_pairs(data_dir, 8)
    result = finetune(small_config(tiny_model, tmp_path / "out", learning_rate=5e-3, max_steps=40,
                                   global_batch_size=4, per_device_batch_size=4), rows)
    assert result.steps == 40 and result.examples == 8
    assert len(result.losses) == 8
    # a random model starts near log(vocab) ~ 6.3 nats; a real fall, not noise
    assert result.losses[-1] < 0.75 * result.losses[0]
    assert result.losses[-1] < min(result.losses[:4])


def test_model_reproduces_a_training_completion(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    finetune(small_config(tiny_model, out, max_steps=60), PAIRS, dataset_name="pairs.jsonl")
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    for pair in PAIRS:
        ids = torch.tensor([tok(pair["prompt"])["input_ids"]])
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=30, do_sample=False)[0, ids.shape[1]:].tolist()
            before = base.generate(ids, max_new_tokens=30, do_sample=False)[0, ids.shape[1]:].tolist()
        assert gen[-1] == tok.eos_token_id  # it learnt to stop
        assert tok.decode(gen[:-1]) == pair["completion"]
        assert tok.decode(before) != tok.decode(gen)  # the random model did not already say it


def test_pad_distinct_from_eos_is_restored_and_saved(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    # a model folder whose tokenizer pads with EOS, as many released tokenizers do
    src = tmp_path / "pad-is-eos"
    shutil.copytree(tiny_model, src)
    tok = AutoTokenizer.from_pretrained(src)
    tok.pad_token = tok.eos_token
    tok.save_pretrained(src)
    out = tmp_path / "out"
    finetune(small_config(src, out, max_steps=2), PAIRS)
    saved = json.loads((out / "generation_config.json").read_text())
    eos = saved["eos_token_id"]
    assert saved["pad_token_id"] is not None
    assert saved["pad_token_id"] not in (eos if isinstance(eos, list) else [eos])
    reloaded = AutoTokenizer.from_pretrained(out)
    assert reloaded.pad_token_id == saved["pad_token_id"] != reloaded.eos_token_id


def test_pad_token_is_added_when_none_exists(tiny_model, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import giftgen.finetune as ft

    monkeypatch.setattr(ft, "_PAD_CANDIDATES", ())
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = len(tok)
    ensure_pad_token(tok, model)
    assert len(tok) == before + 1 and tok.pad_token_id == before
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    assert model.generation_config.pad_token_id == tok.pad_token_id != tok.eos_token_id


def test_lora_trains_and_merges(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    adapter = tmp_path / "adapter"
    finetune(small_config(tiny_model, adapter, max_steps=3, lora=True, learning_rate=1e-2), PAIRS)
    assert (adapter / "adapter_config.json").exists()
    assert "library_name: peft" in (adapter / "README.md").read_text()

    merged = tmp_path / "merged"
    finetune(small_config(tiny_model, merged, max_steps=3, lora=True, merge_lora=True, learning_rate=1e-2), PAIRS)
    assert not (merged / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(merged)  # a plain model: no PEFT needed to load it
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    changed = [n for n, p in model.named_parameters()
               if not torch.equal(p, dict(base.named_parameters())[n])]
    assert any("q_proj" in n for n in changed)  # LoRA deltas merged into the attention weights
    assert "embed_tokens" not in " ".join(changed)  # ... and only where adapters were


def test_rejects_rows_that_are_not_prompt_completion(tiny_model, tmp_path):
    with pytest.raises(InputError, match="giftgen select"):
        finetune(small_config(tiny_model, tmp_path / "out"), [{"text": "x"}])


def test_cli_trains_saves_card_and_prints_a_summary(tiny_model, tmp_path):
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({**p, "problem_id": "x", "origin": "gold"}) + "\n" for p in PAIRS))
    out = tmp_path / "model"
    result = CliRunner().invoke(main, ["finetune", str(data), "--model", str(tiny_model), "-o", str(out),
                                       "--max-steps", "2", "--global-batch-size", "2", "--per-device-batch-size",
                                       "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["examples"] == 2 and summary["output_dir"] == str(out)
    card = (out / "README.md").read_text()
    assert str(data) in card and "global_batch_size: 2" in card and "full fine-tuning" in card
    import tokenizers
    import torch
    import transformers
    import trl

    from giftgen import __version__

    assert (f"| libraries | giftgen {__version__}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, tokenizers {tokenizers.__version__}, trl {trl.__version__}, "
            "datasets ") in card
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()


def test_chat_pairs_train_on_the_assistant_turn_only(tiny_model, data_dir, tmp_path):
    pairs = [training_pair(s, s["reference"], style="chat") for s in seed_rows(data_dir, 2)]
    trainer, _ = build_trainer(small_config(tiny_model, tmp_path / "out"), pairs)
    tok = trainer.processing_class
    for pair, example in zip(pairs, trainer.train_dataset, strict=True):
        n_prompt = len(tok.apply_chat_template(pair["prompt"], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"])
        labels = example["labels"]
        assert labels[:n_prompt] == [-100] * n_prompt and -100 not in labels[n_prompt:]
        assert tok.decode(labels[n_prompt:]) == pair["completion"][0]["content"] + "<|end|>\n"


def test_score_select_finetune_compose_through_pipes(tiny_model, data_dir, tmp_path):
    from tests.rows import chain_rows, variants

    seeds = seed_rows(data_dir, 3)
    rows = [r for s in seeds for r in chain_rows(s, variants(s, 2) + ["def broken(:\n"], passed=[True, True, False])]
    runner = CliRunner()
    scored = runner.invoke(main, ["score", "-", "--model", str(tiny_model), "--device", "cpu"],
                           input="".join(json.dumps(r) + "\n" for r in rows))
    assert scored.exit_code == 0, scored.output
    selected = runner.invoke(main, ["select", "-", "-k", "2"], input=scored.stdout)
    assert selected.exit_code == 0, selected.output
    sft = [json.loads(line) for line in selected.stdout.splitlines()]
    assert [r["origin"] for r in sft] == ["gold", "self", "self"] * 3
    (tmp_path / "sft.jsonl").write_text(selected.stdout)
    out = tmp_path / "model"
    tuned = runner.invoke(main, ["finetune", str(tmp_path / "sft.jsonl"), "--model", str(tiny_model), "-o", str(out),
                                 "--max-steps", "1", "--global-batch-size", "9", "--per-device-batch-size", "9",
                                 "--device", "cpu"])
    assert tuned.exit_code == 0, tuned.output
    assert json.loads(tuned.stdout.strip().splitlines()[-1])["examples"] == 9
