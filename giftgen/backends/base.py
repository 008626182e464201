"""The backend protocol: generate ``n`` completions per prompt with sampling settings, a seed and stop strings.

Every backend (``transformers``, ``vllm``, ``openai``, ``fake``) implements ``Backend``:

- ``generate(prompts, sampling)`` returns one list per prompt, in prompt order, of exactly ``sampling.n``
  ``Completion``s. A prompt is a plain string (sent as is: completion models) or a list of chat messages
  (``[{"role": "user", "content": ...}]``, rendered with the model's chat template and its generation prompt).
- ``Completion.text`` is the raw generated text, cut before the first stop string (excluded) or at EOS;
  ``tokens`` counts the generated tokens (EOS and the tokens of a stop string included, padding never);
  ``finish_reason`` is ``"stop"`` (EOS or a stop string) or ``"length"`` (``max_new_tokens`` reached).
- ``close()`` frees the model (GPU memory) so that the next stage can load one.

Seeds: with ``Sampling.seed`` set, the completions of a prompt depend only on the seed, the prompt, how many
identical prompts came before it in the same call, and the sample's index: not on the other prompts nor on how a
backend batches them (``transformers`` guarantees this on CPU; ``vllm`` and ``openai`` pass a seed per request
derived the same way, so it holds as far as the engine's own seeding does). ``temperature == 0`` is greedy.
The flip side: two calls with the same seed and the same prompt return the same samples, so a caller that sends
a prompt again to get new samples (a chain step, an RFT round) must change the seed, e.g.
``derive_seed(seed, step)``.

Nothing here imports torch: the protocol module is light.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from giftgen.errors import ConfigError

Prompt = str | list[dict[str, str]]


@dataclass
class Sampling:
    """How to sample. ``temperature`` 0 means greedy; ``top_k`` 0 and ``top_p`` 1.0 mean off."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        # Checked here, once, so that no backend has to and a bad value fails before a model loads.
        if self.n < 1:
            raise ConfigError(f"n must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0: off), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in self.stop if s]

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Completion:
    text: str
    tokens: int
    finish_reason: str  # "stop" | "length"


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------------- helpers


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest occurrence of any stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def prompt_key(prompt: Prompt) -> str:
    """A canonical string for a prompt: the string itself, or the messages as sorted JSON."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def check_prompts(prompts: Sequence[Prompt]) -> list[Prompt]:
    """The prompts as a list, each checked to be a string or a list of {role, content} messages."""
    if isinstance(prompts, (str, dict)):
        raise ConfigError("generate() takes a sequence of prompts, not a single prompt")
    out = list(prompts)
    for i, p in enumerate(out):
        if isinstance(p, str):
            continue
        ok = isinstance(p, list) and p and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in p
        )
        if not ok:
            raise ConfigError(f"prompt {i} must be a string or a non-empty list of {{role, content}} messages")
    return out


def occurrences(keys: Sequence[str]) -> list[int]:
    """For each key, how many equal keys come before it: identical prompts in one call get distinct samples."""
    seen: dict[str, int] = {}
    out = []
    for k in keys:
        out.append(seen.get(k, 0))
        seen[k] = out[-1] + 1
    return out


def derive_seed(seed: int, *parts: object, bits: int = 31) -> int:
    """A seed derived from ``seed`` and ``parts`` (stable across runs and machines), below ``2**bits``."""
    h = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") % (1 << bits)
