"""The ``transformers`` backend: batched ``generate()`` on CPU or GPU, deterministic for a seed.

Prompts are tokenized one by one (chat messages through the tokenizer's chat template with the generation
prompt), sorted by length (longest first, so an out-of-memory error comes at once), cut into batches of
``batch_size`` prompts, left-padded, and each prompt expanded to ``n`` rows. Generation stops early at EOS and at
the stop strings (transformers' ``StopStringCriteria``); the text is cut before the first stop string.

Sampling is done here, not by ``torch.multinomial``, so that it is reproducible and independent of batching:
each row draws its token by inverse CDF from ``softmax(warped_logits)`` with one uniform number per step, taken
from a counter-based hash of (row key, step); the row key comes from (seed, prompt, occurrence of that prompt in
the call, sample index). Another prompt in the batch, another ``batch_size`` or another padding width change no
random number; the logits may move in the last float bit with the padding width, which changes a sample only
when its uniform falls within that distance of a boundary. Temperature, top-k and top-p are transformers' own
warpers. Greedy (temperature 0) is plain argmax, run once per prompt and copied ``n`` times.

The model's ``generation_config`` is replaced by a neutral one (EOS, BOS, padding only), as vLLM ignores it
when sampling parameters are given: a checkpoint's default repetition penalty or top-p never leaks in.
Not covered: beam search, per-prompt sampling settings, models without a chat template for chat prompts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from giftgen.backends import BackendSettings
from giftgen.backends.base import (
    Completion,
    Prompt,
    Sampling,
    check_prompts,
    cut_at_stop,
    derive_seed,
    occurrences,
)
from giftgen.errors import ConfigError
from giftgen.model_check import check_model
from giftgen.models import load_causal_lm, load_tokenizer

_MASK32 = 0xFFFFFFFF


def load(settings: BackendSettings) -> TransformersBackend:
    if not settings.model:
        raise ConfigError("the transformers backend needs a model", hint="pass --model HUB_ID_OR_FOLDER")
    return TransformersBackend(settings.model, device=settings.device, dtype=settings.dtype,
                               batch_size=settings.batch_size)


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 16):
        import torch
        from transformers import GenerationConfig

        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.device = resolve_device(device)
        # "auto": the checkpoint's dtype on an accelerator; float32 on CPU, where bf16 matmuls are slow or absent.
        if dtype == "auto":
            torch_dtype: Any = "auto" if self.device != "cpu" else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        check_model(model)  # first: a missing model is "the model folder ... does not exist", not its tokenizer
        self.tokenizer = load_tokenizer(model)
        self.lm = load_causal_lm(model, torch_dtype)
        self.lm.to(self.device).eval()

        original = self.lm.generation_config
        eos = original.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = original.pad_token_id if original.pad_token_id is not None else (self.eos_ids or [0])[0]
        self.pad_id = pad
        self._stop_criteria: dict[tuple[str, ...], Any] = {}
        self.lm.generation_config = GenerationConfig(
            eos_token_id=self.eos_ids or None, pad_token_id=pad, bos_token_id=original.bos_token_id
        )

    # ----------------------------------------------------------------------------------------------- public

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = check_prompts(prompts)
        texts = [self._render(p) for p in prompts]
        ids = [self._encode(t, chat=not isinstance(p, str)) for t, p in zip(texts, prompts, strict=True)]
        occ = occurrences(texts)
        seed = sampling.seed if sampling.seed is not None else random.SystemRandom().getrandbits(62)
        copies = 1 if sampling.greedy else sampling.n
        order = sorted(range(len(prompts)), key=lambda i: -len(ids[i]))
        results: list[list[Completion]] = [[] for _ in prompts]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            keys = [derive_seed(seed, texts[i], occ[i], j, bits=64) for i in chunk for j in range(copies)]
            done = self._generate_batch([ids[i] for i in chunk], keys, copies, sampling)
            for k, i in enumerate(chunk):
                mine = done[k * copies:(k + 1) * copies]
                results[i] = mine if copies == sampling.n else [replace(mine[0]) for _ in range(sampling.n)]
        return results

    def close(self) -> None:
        import gc

        import torch

        self.lm = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ----------------------------------------------------------------------------------------------- internals

    def _render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"model {self.model!r} has no chat template, so it cannot take chat prompts",
                              hint="use the base prompt style")
        return self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)

    def _encode(self, text: str, chat: bool) -> list[int]:
        # A chat template writes its own BOS; a plain prompt gets the tokenizer's usual special tokens (as vLLM).
        return self.tokenizer(text, add_special_tokens=not chat)["input_ids"]

    def _stop_criterion(self, stop: list[str]) -> Any:
        """transformers' stop-string criterion for ``stop``, built once per set of strings and reused.

        Building one embeds the whole vocabulary (about 0.5 s for a 49k vocabulary): built per batch it cost more
        than the generation itself on short completions at small batch sizes. It holds no state between calls.
        """
        if not stop:
            return None
        key = tuple(stop)
        if key not in self._stop_criteria:
            from transformers import StopStringCriteria

            self._stop_criteria[key] = StopStringCriteria(self.tokenizer, list(stop))
        return self._stop_criteria[key]

    def _generate_batch(self, batch: list[list[int]], keys: list[int], copies: int,
                        sampling: Sampling) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        width = max(len(x) for x in batch)
        rows = len(batch) * copies
        input_ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, width), dtype=torch.long)
        for k, x in enumerate(batch):
            for j in range(copies):
                r = k * copies + j
                input_ids[r, width - len(x):] = torch.tensor(x, dtype=torch.long)
                mask[r, width - len(x):] = 1
        finish = _Finish(width, self.eos_ids, self._stop_criterion(sampling.stop), rows)
        processors = LogitsProcessorList()
        if not sampling.greedy:
            processors.append(_Sampler(keys, width, sampling))
        with torch.inference_mode():
            out = self.lm.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                max_new_tokens=sampling.max_new_tokens, do_sample=False, num_beams=1,
                logits_processor=processors, stopping_criteria=StoppingCriteriaList([finish]),
            )
        generated = out[:, width:].cpu()
        completions = []
        for r in range(rows):
            length = int(finish.lengths[r]) or generated.shape[1]
            tokens = generated[r, :length].tolist()
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, cut = cut_at_stop(text, sampling.stop)
            stopped = bool(finish.lengths[r]) or cut
            completions.append(Completion(text=text, tokens=len(tokens), finish_reason="stop" if stopped else "length"))
        return completions


def _mix32(x: Any) -> Any:
    """A 32-bit integer hash (hash-prospector constants, both below 2**31 so int64 products never overflow)."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _MASK32
    return x ^ (x >> 15)


def uniforms(keys: Any, step: Any) -> Any:
    """One uniform in (0, 1) per row, float64 with 53 random bits: a pure function of (64-bit row key, step).

    ``step`` is an int, or an int64 tensor that broadcasts against ``keys``.
    """
    import torch

    lo, hi = keys & _MASK32, (keys >> 32) & _MASK32
    steps = torch.as_tensor(step, dtype=torch.int64, device=keys.device) & _MASK32
    a = _mix32(_mix32(lo ^ _mix32(steps)) ^ hi)
    b = _mix32((a + 0x9E3779B9) & _MASK32 ^ lo)
    bits = (a >> 11) * 4294967296 + b  # 21 + 32 = 53 bits, exact in float64
    return (bits.to(torch.float64) + 0.5) / float(1 << 53)


def sample_rows(scores: Any, u: Any) -> Any:
    """Inverse-CDF sampling: row r draws from softmax(scores[r]) with its uniform u[r]; -inf scores never win."""
    import torch

    cdf = torch.cumsum(torch.softmax(scores.to(torch.float64), dim=-1), dim=-1)
    target = (u * cdf[:, -1])[:, None]  # scaled by the total, so rounding in the sum cannot push past the end
    choice = torch.searchsorted(cdf, target, right=True)[:, 0]
    return choice.clamp_(max=scores.shape[-1] - 1)


class _Sampler:
    """A logits processor that samples each row with its own random stream and returns a one-hot choice."""

    def __init__(self, keys: list[int], width: int, sampling: Sampling):
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        # Row keys are unsigned 64-bit; torch has no uint64 arithmetic, so keep them as int64 bit patterns.
        self.keys = torch.tensor([k - (1 << 64) if k >= 1 << 63 else k for k in keys], dtype=torch.int64)
        self.width = width
        self.warpers = [TemperatureLogitsWarper(sampling.temperature)] if sampling.temperature != 1.0 else []
        if sampling.top_k > 0:
            self.warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(sampling.top_p))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for warp in self.warpers:
            scores = warp(input_ids, scores)
        u = uniforms(self.keys.to(scores.device), input_ids.shape[1] - self.width)
        choice = sample_rows(scores, u)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, choice[:, None], 0.0)
        return out


class _Finish:
    """Stopping criterion: EOS or a stop string; records each row's generated length when it first stops."""

    def __init__(self, width: int, eos_ids: list[int], strings: Any, rows: int):
        import torch

        self.width = width
        self.eos = torch.tensor(eos_ids or [-1], dtype=torch.long)
        self.strings = strings
        self.lengths = torch.zeros(rows, dtype=torch.long)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = torch.isin(input_ids[:, -1], self.eos.to(input_ids.device))
        if self.strings is not None:
            done = done | self.strings(input_ids, scores).to(done.device)
        new = done.cpu() & (self.lengths == 0)
        self.lengths[new] = input_ids.shape[1] - self.width
        return done | (self.lengths > 0).to(done.device)
