"""`giftgen finetune`: TRL SFT (full or LoRA) on selected prompt-completion rows.

Contract (METHOD.md, step 4): rows are TRL prompt-completion pairs (``giftgen select``); the loss covers the
completion and the EOS only (``completion_only_loss`` over TRL's pre-tokenised form: the pairs are tokenised by
``score.encode_pair``, the prompt alone as at inference, then the completion, then EOS; in chat style the
template closes the assistant turn itself). Defaults are the release's: AdamW lr 2e-5, 2 epochs, max length 1536,
global batch 128 reached by gradient accumulation over the world size, weight decay 0.05, 30 warm-up steps then
linear decay, grad clip 1.0, bf16 where the GPU supports it. Examples longer than ``max_length`` are dropped (and
counted) by default rather than cut, so that every training example ends with its EOS.

Replay (``--replay FILE --replay-share S``): rows of FILE in the same prompt-completion form (the toy pretraining
corpus, the seed pairs, ...) are mixed into the training set so that they make up the share S of it: N input rows
get round(N * S / (1 - S)) replay rows, drawn by whole shuffled passes over FILE, deterministic for ``--seed``.
With ``--max-steps`` the step budget stays fixed whatever the mix, so arms trained on different data compare at
equal compute (the miniature's control).

Guards: the pad token must differ from EOS (otherwise a collator that masks padding would also hide EOS from the
loss, and generation could not tell the two apart); when the tokenizer has none, an existing pad-like token is
used, else one is added. The pad id is written to the model config and the saved generation config.

The output folder holds the model (merged with ``--merge-lora``, else the LoRA adapter), the tokenizer and a model
card (``cards/model_card.md``) naming the training data and settings. Trainer output goes to stderr.
Multi-GPU: ``accelerate launch -m giftgen.cli finetune ...`` (the batch split follows WORLD_SIZE).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giftgen.config import command_config, setting, to_dict
from giftgen.errors import ConfigError, GiftgenError, InputError
from giftgen.models import load_causal_lm, load_tokenizer
from giftgen.progress import log
from giftgen.records import require

# Pad-like tokens many tokenizers already have; tried, in order, before adding a new one.
_PAD_CANDIDATES = ("<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>", "<|fim_pad|>", "<unk>")


@command_config("finetune")
class FinetuneConfig:
    model: str | None = setting(None, "Model to fine-tune (the student): a Hub id or a local folder.", flag="-m",
                                envvar="GIFTGEN_MODEL")
    output_dir: str = setting("giftgen-model", "Where to save the model, tokenizer and card.", flag="-o")
    learning_rate: float = setting(2e-5, "AdamW learning rate.")
    epochs: float = setting(2.0, "Training epochs.")
    max_steps: int | None = setting(None, "A fixed budget of optimizer steps (overrides --epochs).")
    replay: str | None = setting(None, "Prompt-completion rows (JSONL, or any form `giftgen` reads) mixed back into "
                                       "the training set, e.g. the pretraining corpus: self-training a small model "
                                       "on its own codes alone makes it forget the rest.")
    replay_share: float = setting(0.5, "Share of the training set drawn from --replay (0 <= share < 1): N input "
                                       "rows get round(N * share / (1 - share)) replay rows, drawn for --seed.")
    global_batch_size: int = setting(128, "Examples per optimizer step, over all devices (via gradient accumulation).")
    per_device_batch_size: int = setting(4, "Examples per device per forward pass.")
    max_length: int = setting(1536, "Longest training example, in tokens.")
    overlong: str = setting("drop", "Examples longer than max_length: drop them (keeps every EOS) or truncate them.",
                            choices=("drop", "truncate"))
    weight_decay: float = setting(0.05, "AdamW weight decay.")
    decay_all_parameters: bool = setting(False, "Apply weight decay to every parameter, norms and biases included "
                                                "(the release); by default norms and biases are not decayed.")
    adam_epsilon: float = setting(1e-8, "AdamW epsilon (the release: 1e-6).")
    warmup_steps: int = setting(30, "Linear warm-up steps, then linear decay to min_learning_rate.")
    min_learning_rate: float = setting(0.0, "Where the warm-up starts and the decay ends (the release's DeepSpeed "
                                            "WarmupDecayLR: 5e-6).")
    loss_average: str = setting("token", "Loss of a batch: the mean over its completion tokens, or the mean over "
                                         "its examples of each example's token mean (the release: micro-batch 1).",
                                choices=("token", "example"))
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.")
    precision: str = setting("auto", "Mixed precision: auto (bf16 where the GPU supports it, else fp32).",
                             choices=("auto", "bf16", "fp16", "fp32"))
    dtype: str = setting("float32", "Weight dtype when loading (bfloat16 saves memory; mixed precision autocasts).",
                         choices=("auto", "bfloat16", "float16", "float32"))
    gradient_checkpointing: bool = setting(True, "Recompute activations to save memory (GPU only; off on CPU).")
    device: str = setting("auto", "auto (GPU when there is one) or cpu.", choices=("auto", "cpu"))
    seed: int = setting(0, "Seed of the initialisation, shuffling and dropout.")
    lora: bool = setting(False, "Train a LoRA adapter (PEFT) instead of all weights.")
    lora_r: int = setting(16, "LoRA rank.")
    lora_alpha: int = setting(32, "LoRA alpha.")
    lora_dropout: float = setting(0.05, "LoRA dropout.")
    lora_target_modules: list[str] = setting(["all-linear"], "Modules LoRA adapts (all-linear: every linear layer "
                                                              "but the output head).")
    merge_lora: bool = setting(False, "Merge the LoRA adapter into the weights before saving.")
    logging_steps: int = setting(10, "Optimizer steps between loss logs (stderr).")
    save_steps: int = setting(0, "Save a checkpoint every N steps under OUTPUT_DIR/checkpoints (0: only the end).")
    report_to: list[str] = setting([], "Experiment trackers (wandb, tensorboard, ...); none by default.")

    def validate(self) -> None:
        for name in ("global_batch_size", "per_device_batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.merge_lora and not self.lora:
            raise ConfigError("--merge-lora needs --lora")
        if not 0.0 <= self.min_learning_rate <= self.learning_rate:
            raise ConfigError(f"min_learning_rate must be between 0 and learning_rate ({self.learning_rate}), got "
                              f"{self.min_learning_rate}")
        if self.adam_epsilon <= 0:
            raise ConfigError(f"adam_epsilon must be positive, got {self.adam_epsilon}")
        if not 0.0 <= self.replay_share < 1.0:
            raise ConfigError(f"replay_share must be at least 0 and below 1, got {self.replay_share}")


@dataclass
class FinetuneResult:
    output_dir: str
    examples: int
    dropped: int
    steps: int
    train_loss: float | None
    losses: list[float] = field(default_factory=list)  # the logged training losses, in order
    replayed: int = 0  # rows of the training set drawn from --replay (included in examples)


# --------------------------------------------------------------------------------------------------- pieces


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def accumulation_steps(global_batch: int, per_device: int, world: int) -> int:
    """Gradient-accumulation steps that make per_device * world * steps the global batch (rounded up)."""
    return max(1, math.ceil(global_batch / (per_device * world)))


def ensure_pad_token(tokenizer: Any, model: Any) -> str:
    """Give the tokenizer a pad token distinct from EOS; write its id to the model and generation configs."""
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        vocab = tokenizer.get_vocab()
        choice = next((t for t in _PAD_CANDIDATES if t in vocab and vocab[t] != tokenizer.eos_token_id), None)
        if choice is not None:
            tokenizer.pad_token = choice
        else:
            # a name no tokenizer ships, so that it is a new token (never EOS under another name)
            tokenizer.add_special_tokens({"pad_token": "<|giftgen_pad|>"})
            model.resize_token_embeddings(len(tokenizer))
            log(f"finetune: the tokenizer had no pad token distinct from EOS; added {tokenizer.pad_token!r}")
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config.eos_token_id is None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id
    return tokenizer.pad_token


def training_rows(rows: Any) -> list[dict[str, Any]]:
    """Keep ``prompt`` and ``completion`` of each row; all rows must share one format (text or chat)."""
    out = []
    kind = None
    for index, row in enumerate(rows, start=1):
        require(row, {"prompt": (str, list), "completion": (str, list)}, index, "finetune")
        this = "chat" if isinstance(row["prompt"], list) else "text"
        if kind is not None and this != kind:
            raise InputError(f"`giftgen finetune`: row {index} is {this}, earlier rows are {kind}",
                             hint="select all rows with one --prompt-style")
        kind = this
        out.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not out:
        raise InputError("`giftgen finetune`: no training rows", hint="check the output of `giftgen select`")
    return out


def replay_rows(replay: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` rows drawn from ``replay``, deterministic for ``seed``: whole shuffled passes over it, then a
    random part of one more (so no row repeats more than once more than any other)."""
    import random

    if count <= 0:
        return []
    if not replay:
        raise InputError("`giftgen finetune`: the --replay file has no rows")
    rng = random.Random(f"replay:{seed}")
    out: list[dict[str, Any]] = []
    while len(out) < count:
        order = list(range(len(replay)))
        rng.shuffle(order)
        out += [replay[i] for i in order[: count - len(out)]]
    return out


def mix_replay(rows: list[dict[str, Any]], config: FinetuneConfig) -> tuple[list[dict[str, Any]], int]:
    """``rows`` plus the replay rows ``config`` asks for (module docstring); returns them and the replay count."""
    if config.replay is None or config.replay_share == 0:
        return rows, 0
    from giftgen.records import read_rows

    replay = training_rows(read_rows(config.replay))
    count = round(len(rows) * config.replay_share / (1 - config.replay_share))
    if replay and isinstance(replay[0]["prompt"], list) != isinstance(rows[0]["prompt"], list):
        raise InputError("`giftgen finetune`: the --replay rows and the training rows use different prompt styles",
                         hint="give replay rows in the same format (text or chat) as the selected rows")
    mixed = rows + replay_rows(replay, count, config.seed)
    log(f"finetune: {len(rows)} rows + {count} replay rows from {config.replay} ({config.replay_share:.0%})")
    return mixed, count


def _precision(config: FinetuneConfig, on_gpu: bool) -> tuple[bool, bool]:
    """(bf16, fp16) for TrainingArguments."""
    import torch

    if not on_gpu or config.precision == "fp32":
        return False, False
    if config.precision == "auto":
        return bool(torch.cuda.is_bf16_supported()), False
    return config.precision == "bf16", config.precision == "fp16"


def build_trainer(config: FinetuneConfig, rows: list[dict[str, Any]]) -> tuple[Any, int]:
    """The SFTTrainer for ``rows`` (its train_dataset prepared) and the number of overlong rows dropped."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if config.model is None:
        raise ConfigError("`giftgen finetune` needs a model", hint="give --model (a Hub id or a local folder)")
    on_gpu = config.device == "auto" and torch.cuda.is_available()
    tokenizer = load_tokenizer(config.model)
    dtype: Any = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
    model = load_causal_lm(config.model, dtype)
    if tokenizer.eos_token is None:
        raise GiftgenError(f"the tokenizer of {config.model!r} has no EOS token; a code's end cannot be learnt")
    ensure_pad_token(tokenizer, model)

    bf16, fp16 = _precision(config, on_gpu)
    accumulation = accumulation_steps(config.global_batch_size, config.per_device_batch_size, world_size())
    effective = accumulation * config.per_device_batch_size * world_size()
    if effective != config.global_batch_size:
        log(f"finetune: global batch {effective} (not {config.global_batch_size}: it is not a multiple of "
            f"per-device batch x devices)")
    args = SFTConfig(
        output_dir=str(Path(config.output_dir) / "checkpoints"),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        weight_decay=config.weight_decay,
        adam_epsilon=config.adam_epsilon,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type="linear",
        max_grad_norm=config.max_grad_norm,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not on_gpu,
        activation_checkpointing=config.gradient_checkpointing and on_gpu,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        report_to=list(config.report_to) or "none",
        completion_only_loss=True,
        # Overlong rows are dropped before TRL sees them; truncating would cut off their EOS.
        max_length=config.max_length if config.overlong == "truncate" else None,
        dataset_num_proc=None,
        disable_tqdm=not sys.stderr.isatty(),
    )
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        targets: Any = list(config.lora_target_modules)
        peft_config = LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=targets[0] if targets == ["all-linear"] else targets, task_type="CAUSAL_LM",
        )
    examples, dropped = tokenize_rows(tokenizer, rows, config.max_length if config.overlong == "drop" else None)
    with contextlib.redirect_stdout(sys.stderr):
        trainer = trainer_class(config, SFTTrainer)(model=model, args=args, train_dataset=Dataset.from_list(examples),
                                                    processing_class=tokenizer, peft_config=peft_config)
    if config.loss_average == "example":
        trainer.loss_is_scaled_for_ga = False  # each micro-batch's mean is divided by the accumulation steps
    return trainer, dropped


def warmup_decay(step: int, *, learning_rate: float, min_learning_rate: float, warmup_steps: int,
                 total_steps: int) -> float:
    """The learning rate at optimizer step ``step`` (0-based): linear from min to max over the warm-up, then
    linear back to min at ``total_steps`` (DeepSpeed's WarmupDecayLR with linear warm-up; with min 0 it is
    transformers' linear schedule)."""
    if warmup_steps > 0 and step < warmup_steps:
        gamma = step / warmup_steps
    else:
        gamma = max(0.0, (total_steps - step) / max(1.0, total_steps - warmup_steps))
    return min_learning_rate + (learning_rate - min_learning_rate) * gamma


def per_example_loss(logits: Any, labels: Any) -> Any:
    """The mean over examples of each example's mean next-token loss on its labelled (non -100) tokens."""
    import torch

    targets = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2).float(), targets,
                                               ignore_index=-100, reduction="none")
    mask = (targets != -100).to(losses.dtype)
    counts = mask.sum(dim=1)
    per_example = (losses * mask).sum(dim=1) / counts.clamp(min=1)
    return per_example[counts > 0].mean() if bool((counts > 0).any()) else losses.sum() * 0.0


def trainer_class(config: FinetuneConfig, base: type) -> type:
    """``base`` (TRL's SFTTrainer), changed only where ``config`` asks for the release's optimizer settings:
    weight decay on every parameter, the warm-up/decay floor, the per-example loss average."""
    if not config.decay_all_parameters and config.min_learning_rate == 0 and config.loss_average == "token":
        return base

    class ReleaseTrainer(base):  # type: ignore[misc, valid-type]
        def get_decay_parameter_names(self, model: Any) -> list[str]:
            if config.decay_all_parameters:
                return [name for name, _ in model.named_parameters()]
            return super().get_decay_parameter_names(model)

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if config.min_learning_rate == 0 or self.lr_scheduler is not None:
                return super().create_scheduler(num_training_steps, optimizer)
            import functools

            from torch.optim.lr_scheduler import LambdaLR

            lr = self.args.learning_rate
            rate = functools.partial(warmup_decay, learning_rate=lr, min_learning_rate=config.min_learning_rate,
                                     warmup_steps=self.args.get_warmup_steps(num_training_steps),
                                     total_steps=num_training_steps)
            self.lr_scheduler = LambdaLR(optimizer if optimizer is not None else self.optimizer,
                                         lambda step: rate(step) / lr)
            return self.lr_scheduler

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if config.loss_average != "example" or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]
            forward = {k: v for k, v in inputs.items() if k not in ("labels", "completion_mask")}
            outputs = model(**forward, use_cache=False)
            loss = per_example_loss(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss

    return ReleaseTrainer


def tokenize_rows(tokenizer: Any, rows: list[dict[str, Any]], max_length: int | None) -> tuple[list[dict], int]:
    """TRL's pre-tokenised form (``input_ids``, ``completion_mask``) of each pair, by ``score.encode_pair``.

    Tokenising here rather than in TRL keeps the context the model is trained on equal to the one it generates
    from (see ``encode_pair``) and equal to the one ``giftgen score`` scores. Rows longer than ``max_length``
    (when given) are dropped and counted.
    """
    from giftgen.score import encode_pair

    examples = []
    dropped = 0
    for row in rows:
        ids, start = encode_pair(tokenizer, row["prompt"], row["completion"])
        if max_length is not None and len(ids) > max_length:
            dropped += 1
            continue
        examples.append({"input_ids": ids, "completion_mask": [0] * start + [1] * (len(ids) - start)})
    if dropped:
        log(f"finetune: dropped {dropped} of {len(rows)} examples longer than {max_length} tokens")
    if not examples:
        raise InputError(f"`giftgen finetune`: every example is longer than max_length={max_length}")
    return examples, dropped


# --------------------------------------------------------------------------------------------------- the stage


def finetune(config: FinetuneConfig, rows: Any, *, dataset_name: str | None = None,
             command: str | None = None) -> FinetuneResult:
    """Fine-tune ``config.model`` on prompt-completion ``rows``; save model, tokenizer and card; return a summary."""
    examples, replayed = mix_replay(training_rows(rows), config)
    trainer, dropped = build_trainer(config, examples)
    with contextlib.redirect_stdout(sys.stderr):  # trainers print status lines; stdout is for records
        output = trainer.train()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    main_process = trainer.is_world_process_zero()
    with contextlib.redirect_stdout(sys.stderr):
        if config.lora and config.merge_lora:
            if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
                # merging needs every parameter whole on one process; sharded ones are not
                raise ConfigError("--merge-lora does not work with sharded training (DeepSpeed, FSDP)",
                                  hint="train without --merge-lora, then merge the saved adapter on one process")
            model = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            # the pad guard again: PEFT wrapping and merging must not have lost it
            model.generation_config.pad_token_id = trainer.processing_class.pad_token_id
            if main_process:
                model.save_pretrained(out)
                trainer.processing_class.save_pretrained(out)
        else:
            unwrapped = trainer.accelerator.unwrap_model(trainer.model)
            unwrapped.generation_config.pad_token_id = trainer.processing_class.pad_token_id
            # save_model gathers weights sharded by DeepSpeed ZeRO-3 or FSDP and writes on the main process only
            trainer.save_model(str(out))
            if main_process:
                trainer.processing_class.save_pretrained(out)
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    result = FinetuneResult(
        output_dir=str(out), examples=len(trainer.train_dataset), dropped=dropped,
        steps=int(trainer.state.global_step), train_loss=float(output.training_loss), losses=losses,
        replayed=replayed,
    )
    if main_process:
        (out / "README.md").write_text(model_card(config, result, dataset_name=dataset_name, command=command,
                                                  chat=isinstance(examples[0]["prompt"], list)))
    return result


def model_card(config: FinetuneConfig, result: FinetuneResult, *, dataset_name: str | None = None,
               command: str | None = None, chat: bool = False) -> str:
    """Render ``cards/model_card.md``: the base model, the training data and the settings."""
    from importlib import resources

    import yaml
    from huggingface_hub import ModelCard, ModelCardData

    from giftgen import __version__
    from giftgen.card import recorded_command
    from giftgen.versions import library_versions, versions_line

    template = resources.files("giftgen.cards").joinpath("model_card.md").read_text()
    local_base = config.model is not None and Path(config.model).exists()
    local_data = dataset_name is None or Path(dataset_name).exists() or dataset_name == "-"
    data = ModelCardData(
        base_model=None if local_base else config.model,
        datasets=None if local_data else [dataset_name],
        library_name="peft" if config.lora and not config.merge_lora else "transformers",
        tags=["giftgen", "gift", "code", "trl", "sft"] + (["lora"] if config.lora else []),
    )
    method = "full fine-tuning"
    if config.lora:
        method = f"LoRA (r={config.lora_r}, alpha={config.lora_alpha})" + (", merged" if config.merge_lora else "")
    card = ModelCard.from_template(
        data, template_str=template, model_name=Path(config.output_dir).name, base_model=config.model,
        dataset_block=dataset_block(dataset_name), num_examples=result.examples, num_dropped=result.dropped,
        prompt_format="chat messages" if chat else "base (plain text)", method=method, steps=result.steps,
        train_loss=None if result.train_loss is None else f"{result.train_loss:.4f}",
        command=command if command is not None else recorded_command(),
        settings=yaml.safe_dump({"finetune": to_dict(config)}, sort_keys=False).strip(),
        model_path=config.output_dir, giftgen_version=__version__,
        libraries=versions_line(library_versions()),
    )
    return str(card)


def dataset_block(dataset: str | None, revision: str | None = None, config: str | None = None,
                  split: str | None = None) -> str:
    """The model card's statement of its training data: a local file, or a Hub dataset pinned to a commit."""
    if not dataset:
        return "Training data: not recorded."
    if revision is None:
        return f"Training data: `{dataset}` (no Hub revision recorded)."
    from huggingface_hub import constants

    url = f"{constants.ENDPOINT}/datasets/{dataset}"
    where = ", ".join(x for x in (f"config `{config}`" if config else "", f"split `{split}`" if split else "") if x)
    args = "".join(f", {x!r}" for x in (config,) if x) + (f", split={split!r}" if split else "")
    return (f"Training data: [{dataset}]({url}){', ' + where if where else ''}, at revision "
            f"[`{revision}`]({url}/tree/{revision}), the commit that holds exactly the rows this model was "
            f"trained on:\n\n```python\nfrom datasets import load_dataset\n\n"
            f"rows = load_dataset({dataset!r}{args}, revision={revision!r})\n```")


def link_dataset(card: str, dataset: str, revision: str | None, config: str | None = None,
                 split: str | None = None) -> str:
    """``card`` (a model card written by ``finetune``) naming ``dataset`` at ``revision`` as its training data."""
    from huggingface_hub import ModelCard

    parsed = ModelCard(card)
    datasets = list(parsed.data.datasets or [])
    parsed.data.datasets = datasets + [dataset] if dataset not in datasets else datasets
    text = str(parsed)
    start, end = "<!-- giftgen:dataset -->\n", "\n<!-- /giftgen:dataset -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + dataset_block(dataset, revision, config, split) + end + rest.split(end, 1)[1]
    else:  # a card from elsewhere: say it at the end
        text = text.rstrip("\n") + "\n\n## Training data\n\n" + dataset_block(dataset, revision, config, split) + "\n"
    return text


def push_model(output_dir: str, repo_id: str, *, dataset: str | None = None, dataset_revision: str | None = None,
               dataset_config: str | None = None, dataset_split: str | None = None) -> str:
    """Upload the output folder (model, tokenizer, card) to a Hub model repo; return the commit sha.

    With ``dataset`` (a Hub dataset id) the card first names it as the training data, pinned to
    ``dataset_revision`` (the commit ``giftgen.publish.publish_stage`` returned), in the folder and on the Hub.
    The token is the user's login.
    """
    readme = Path(output_dir) / "README.md"
    if dataset is not None and readme.exists():
        readme.write_text(link_dataset(readme.read_text(), dataset, dataset_revision, dataset_config, dataset_split))
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        info = api.upload_folder(folder_path=output_dir, repo_id=repo_id, ignore_patterns=["checkpoints/*"])
    except Exception as e:  # network, auth, permissions: all end the same way for the user
        raise GiftgenError(f"could not push to the Hub model {repo_id!r}: {type(e).__name__}",
                           hint="log in with `hf auth login` or set HF_TOKEN") from None
    return info.oid
