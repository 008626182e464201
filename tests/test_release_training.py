"""The release's optimizer settings as `giftgen finetune` settings: AdamW eps, the warm-up/decay floor, weight
decay on every parameter, the per-example loss average (a tiny model, TRL on the CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from giftgen.errors import ConfigError
from giftgen.finetune import FinetuneConfig, build_trainer, finetune, warmup_decay

PAIRS = [
    {"prompt": 'def add(a, b):\n    """Return the sum of a and b."""\n', "completion": "    return a + b\n"},
    {
        "prompt": 'def f(n):\n    """Long."""\n',
        "completion": "    x = [i * i for i in range(n) if i % 3 == 0 or i % 5 == 0]\n"
        "    y = sum(x) + len(x) * 7 - max(x or [0])\n    return y\n",
    },
]
RELEASE = dict(
    adam_epsilon=1e-6,
    min_learning_rate=5e-6,
    learning_rate=2e-5,
    warmup_steps=30,
    decay_all_parameters=True,
    loss_average="example",
)


def config(tiny_model: Path, out: Path, **kw) -> FinetuneConfig:
    values = dict(
        model=str(tiny_model),
        output_dir=str(out),
        max_steps=2,
        global_batch_size=2,
        per_device_batch_size=2,
        logging_steps=1,
        device="cpu",
    )
    values.update(kw)
    return FinetuneConfig(**values)


def test_warmup_decay_is_the_release_s_schedule():
    lr = dict(learning_rate=2e-5, min_learning_rate=5e-6, warmup_steps=30, total_steps=100)
    assert warmup_decay(0, **lr) == pytest.approx(5e-6)
    assert warmup_decay(15, **lr) == pytest.approx(1.25e-5)
    assert warmup_decay(30, **lr) == pytest.approx(2e-5)
    assert warmup_decay(65, **lr) == pytest.approx(1.25e-5)
    assert warmup_decay(100, **lr) == pytest.approx(5e-6)
    # fewer steps than the warm-up (MBPP): the rate never reaches the peak, but never drops below the floor
    assert warmup_decay(2, **{**lr, "total_steps": 3}) == pytest.approx(5e-6 + 1.5e-5 * 2 / 30)


def test_warmup_decay_without_a_floor_is_transformers_linear_schedule():
    import torch
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_linear_schedule_with_warmup(opt, 5, 20)
    for step in range(21):
        assert warmup_decay(
            step, learning_rate=1.0, min_learning_rate=0.0, warmup_steps=5, total_steps=20
        ) == pytest.approx(sched.get_last_lr()[0])
        opt.step()
        sched.step()


def test_release_optimizer_and_schedule_in_the_trainer(tiny_model, tmp_path):
    trainer, _ = build_trainer(config(tiny_model, tmp_path / "r", **RELEASE), PAIRS)
    trainer.create_optimizer_and_scheduler(num_training_steps=100)
    groups = [g for g in trainer.optimizer.param_groups if g["params"]]
    assert all(g["weight_decay"] == 0.05 and g["eps"] == 1e-6 for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(list(trainer.model.parameters()))
    seen = {}
    for step in range(101):
        seen[step] = trainer.lr_scheduler.get_last_lr()[0]
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert seen[0] == pytest.approx(5e-6) and seen[30] == pytest.approx(2e-5)
    assert seen[65] == pytest.approx(1.25e-5) and seen[100] == pytest.approx(5e-6)


def test_default_optimizer_is_unchanged(tiny_model, tmp_path):
    trainer, _ = build_trainer(config(tiny_model, tmp_path / "d", learning_rate=2e-5, warmup_steps=30), PAIRS)
    trainer.create_optimizer_and_scheduler(num_training_steps=100)
    no_decay = [g for g in trainer.optimizer.param_groups if g["params"] and g["weight_decay"] == 0]
    assert no_decay and all(
        g["eps"] == 1e-8 for g in trainer.optimizer.param_groups
    )  # norms, biases: no decay
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0


def _batch_loss(trainer) -> float:
    import torch

    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, dict(batch)))


def test_per_example_loss_average(tiny_model, tmp_path):
    import torch

    example = build_trainer(config(tiny_model, tmp_path / "e", loss_average="example"), PAIRS)[0]
    token = build_trainer(config(tiny_model, tmp_path / "t"), PAIRS)[0]
    batch = next(iter(example.get_train_dataloader()))
    model = example.model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
    labels = batch["labels"]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(), labels[:, 1:], ignore_index=-100, reduction="none"
    )
    mask = labels[:, 1:] != -100
    lengths = mask.sum(1)
    assert lengths[0] != lengths[1]  # the two completions differ in length, so the two averages differ
    per_example = float(((losses * mask).sum(1) / lengths).mean())
    per_token = float((losses * mask).sum() / mask.sum())
    assert _batch_loss(example) == pytest.approx(per_example, rel=1e-4)
    assert _batch_loss(token) == pytest.approx(per_token, rel=1e-4)
    assert abs(per_example - per_token) > 1e-3


def test_release_settings_train(tiny_model, tmp_path):
    result = finetune(config(tiny_model, tmp_path / "out", **RELEASE), PAIRS)
    assert result.steps == 2 and result.train_loss is not None and result.train_loss > 0


def test_floor_above_the_rate_is_refused(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="min_learning_rate"):
        config(tiny_model, tmp_path, learning_rate=1e-5, min_learning_rate=2e-5).validate()
