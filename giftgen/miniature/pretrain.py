"""`giftgen pretrain`: the miniature's base model, trained from scratch on the toy corpus, on CPU, cached.

Contract: ``pretrain(config)`` builds the toy domain's pretraining corpus (``giftgen.seeds.toy.corpus``, both
directions, in the stages' own prompt formats), trains a byte-level BPE tokenizer on it (``vocab_size`` tokens,
EOS ``<|endoftext|>``, a distinct pad ``<|pad|>``, chat-role tokens and a chat template), then a random-init
``LlamaForCausalLM`` for exactly ``steps`` optimizer steps of ``batch_size`` examples (AdamW, linear warm-up then
cosine decay, loss on the completion and its EOS only, the prompt masked). The output folder loads with
``AutoTokenizer`` / ``AutoModelForCausalLM`` and its generation config has pad != EOS, so every stage takes it as
``--model DIR``.

Tokenisation is the stages' (``prompts.encode_pair``): the prompt alone, as at inference, then the completion, then
EOS. The tokenizer's pre-tokenizer isolates newlines, so a prompt that ends with one (every prompt here does)
tokenises to a prefix of prompt + completion: the joint and separate tokenisations agree.

Caching: ``DIR/giftgen-pretrain.json`` records a hash of the settings that decide the model (everything but
``output_dir``, ``threads`` and ``force``), the toy-domain settings and the giftgen version; a call whose hash
matches returns at once. A folder that exists but holds no such record is refused (it is not ours to overwrite).
Runs on CPU with ``threads`` threads (0: min(2, cores)); the run is deterministic for a seed, a thread count
and a CPU code path of torch's BLAS (AVX-512 and AVX2 machines round differently; ``MKL_CBWR=AVX2`` in the
environment makes them agree), recorded with the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from giftgen.config import command_config, setting, to_dict
from giftgen.errors import ConfigError, GiftgenError
from giftgen.progress import Progress, log
from giftgen.seeds.toy import corpus, load_domain
from giftgen.versions import __version__

RECORD = "giftgen-pretrain.json"
EOS, PAD = "<|endoftext|>", "<|pad|>"
SPECIAL_TOKENS = [EOS, PAD, "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
# Settings that do not change the trained model, so they stay out of the cache key.
_NOT_HASHED = ("output_dir", "threads", "force")


@command_config("pretrain")
class PretrainConfig:
    output_dir: str = setting("giftgen-toy-model", "Where to save the model and tokenizer.", flag="-o")
    domain: str | None = setting(None, "YAML/JSON file of toy-domain settings (as `giftgen seeds toy --path`); "
                                       "default: the built-in domain.")
    seed: int = setting(0, "Seed of the initialisation and the batch order.")
    steps: int = setting(3000, "Optimizer steps.")
    batch_size: int = setting(64, "Examples per optimizer step.")
    learning_rate: float = setting(4e-3, "Peak AdamW learning rate.")
    warmup_steps: int = setting(30, "Linear warm-up steps, then cosine decay to a tenth of the peak.")
    weight_decay: float = setting(0.1, "AdamW weight decay.")
    vocab_size: int = setting(512, "Byte-level BPE vocabulary size (special tokens included).")
    hidden_size: int = setting(96, "Model width.")
    intermediate_size: int = setting(256, "MLP width.")
    layers: int = setting(3, "Transformer layers.")
    heads: int = setting(4, "Attention heads.")
    threads: int = setting(0, "CPU threads (0: min(2, cores)).")
    force: bool = setting(False, "Train again even when the folder holds a model with these settings.")

    def validate(self) -> None:
        for name in ("steps", "batch_size", "vocab_size", "hidden_size", "intermediate_size", "layers", "heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.heads:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})")
        if self.vocab_size < 300:
            raise ConfigError(f"vocab_size must be >= 300 (256 bytes + special tokens), got {self.vocab_size}")


@dataclass
class PretrainResult:
    output_dir: str
    cached: bool
    steps: int
    examples: int
    parameters: int
    seconds: float
    final_loss: float | None
    losses: list[float] = field(default_factory=list)  # mean training loss per logging window


def settings_hash(config: PretrainConfig) -> tuple[str, dict[str, Any]]:
    """The cache key and what it was computed from."""

    settings = {k: v for k, v in to_dict(config).items() if k not in _NOT_HASHED}
    settings.pop("domain")
    keyed = {"settings": settings, "domain": load_domain(config.domain).as_dict(), "giftgen": __version__}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return digest, keyed


# --------------------------------------------------------------------------------------------------- tokenizer


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` with EOS, a distinct pad and a chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        # a newline is always its own piece, so "\n" + "    " never merges across a prompt's end
        pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD, unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode(tokenizer: Any, rows: list[dict[str, Any]]) -> list[tuple[list[int], int]]:
    """(prompt + completion + EOS ids, index of the first completion token) per row, as ``prompts.encode_pair``."""
    prompts = tokenizer([r["prompt"] for r in rows])["input_ids"]
    completions = tokenizer([r["completion"] for r in rows], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return [(list(p) + list(c) + [eos], len(p)) for p, c in zip(prompts, completions, strict=True)]


# --------------------------------------------------------------------------------------------------- training


def batches(lengths: list[int], batch_size: int, steps: int, rng: random.Random) -> list[list[int]]:
    """``steps`` batches of example indices: epochs of shuffled examples, each batch of similar lengths.

    Within windows of 16 batches the examples are sorted by length before they are cut into batches, and the
    batches then shuffled: padding (wasted CPU time) drops sharply and every batch is still a random mix.
    """
    out: list[list[int]] = []
    window = batch_size * 16
    while len(out) < steps:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        epoch = []
        for start in range(0, len(order) - batch_size + 1, window):
            chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
            epoch += [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
        if not epoch:
            raise ConfigError(f"batch_size {batch_size} is larger than the corpus ({len(lengths)} examples)")
        rng.shuffle(epoch)
        out += epoch
    return out[:steps]


def learning_rate(step: int, config: PretrainConfig) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _collate(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, start) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def build_model(config: PretrainConfig, tokenizer: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    model_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers, num_attention_heads=config.heads, num_key_value_heads=config.heads,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(model_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def pretrain(config: PretrainConfig) -> PretrainResult:
    """Train (or find cached) the toy base model in ``config.output_dir``; see the module docstring."""
    import torch

    out = Path(config.output_dir)
    digest, keyed = settings_hash(config)
    record = out / RECORD
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("hash") == digest and (out / "config.json").is_file() and not config.force:
            log(f"pretrain: {out} already holds a model trained with these settings; skipping (--force retrains)")
            return PretrainResult(**{**saved["result"], "cached": True, "output_dir": str(out)})
        record.unlink()  # training again: the old record no longer describes the folder
    elif out.exists() and any(out.iterdir()):
        raise GiftgenError(f"{out} exists and does not hold a `giftgen pretrain` model",
                           hint="choose an empty or new --output-dir")

    start = time.perf_counter()
    threads = config.threads or min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    domain = load_domain(config.domain)
    rows = list(corpus(domain))
    tokenizer = train_tokenizer([r["prompt"] + r["completion"] for r in rows], config.vocab_size)
    examples = encode(tokenizer, rows)
    model = build_model(config, tokenizer)
    parameters = sum(p.numel() for p in model.parameters())
    log(f"pretrain: {len(examples)} examples, {parameters / 1e6:.2f}M parameters, {config.steps} steps of "
        f"{config.batch_size} on {threads} CPU thread(s)")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=config.learning_rate,
                                  betas=(0.9, 0.95))
    plan = batches([len(ids) for ids, _ in examples], config.batch_size, config.steps, random.Random(config.seed))
    model.train()
    losses: list[float] = []
    window: list[float] = []
    log_every = max(1, min(50, config.steps // 10))
    with Progress("pretrain", total=config.steps, unit="steps") as progress:
        for step, indices in enumerate(plan):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            batch = _collate([examples[i] for i in indices], tokenizer.pad_token_id)
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            window.append(loss.item())
            if len(window) == log_every or step == len(plan) - 1:
                losses.append(sum(window) / len(window))
                window = []
                if not sys.stderr.isatty():
                    log(f"pretrain: step {step + 1}/{config.steps}, loss {losses[-1]:.4f}")
            progress.advance()
        progress.extra = f"final loss {losses[-1]:.4f}"

    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):  # libraries may print; stdout is for records
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    result = PretrainResult(output_dir=str(out), cached=False, steps=config.steps, examples=len(examples),
                            parameters=parameters, seconds=round(time.perf_counter() - start, 1),
                            final_loss=losses[-1], losses=losses)
    # written last: a folder with a record is a finished model
    # what else fixes the floats: the thread count and the CPU code path of torch's BLAS (docs/experiments.md)
    numerics = {"threads": threads, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "MKL_CBWR": os.environ.get("MKL_CBWR")}
    record.write_text(json.dumps({"hash": digest, **keyed, "numerics": numerics, "result": asdict(result)},
                                 indent=1) + "\n")
    return result
