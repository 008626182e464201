"""The ``llamacpp`` backend: a GGUF model run natively by llama.cpp (``llama-cpp-python``) on CPUs, no torch.

Install with ``pip install 'giftgen[llamacpp]'`` (it builds llama.cpp from source: 10-15 minutes on 2 cores,
cached by pip afterwards). ``--model`` is the GGUF file.

- **Prompts.** A string prompt goes through ``create_completion`` (the model's BOS added as its metadata says); a
  chat prompt through ``create_chat_completion``, rendered with the chat template the GGUF carries.
- **Sampling.** ``temperature``, ``top_p`` and ``top_k`` as given (0 is off, as everywhere in giftgen); llama.cpp's
  own extra samplers (min-p 0.05, repeat penalty) are turned off so that its samples follow the same
  distribution as the other backends'. Temperature 0 is greedy, run once per prompt and copied ``n`` times.
- **Seeds.** Each sample is one request with its own seed, derived from (seed, prompt, occurrence of the prompt in
  the call, sample index): a sample depends neither on the other prompts nor on ``n``'s neighbours, and a seeded
  run is repeatable on one machine and llama.cpp build.
- **Stops and counts.** Stop strings are passed to llama.cpp and applied again here; ``tokens`` is llama.cpp's
  ``completion_tokens`` (EOS included when it stopped there); ``finish_reason`` is llama.cpp's (``stop`` or
  ``length``).
- **Threads.** ``threads`` (0: every core) decode one sequence at a time: llama.cpp's decode of one stream uses the
  cores well on a small quantized model: faster than transformers at small batch on CPUs (3.6x at batch 1, 1.8x at 4)
  (``benchmarks/bench_generate.py``).

Not covered: scoring (``giftgen score`` refuses this backend and names the ones that score), GPUs (use vllm), and
models other than GGUF files.
"""

from __future__ import annotations

import contextlib
import os
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
    prompt_key,
)
from giftgen.errors import ConfigError
from giftgen.models import gguf_path, is_gguf


def load(settings: BackendSettings) -> LlamaCppBackend:
    if not settings.model:
        raise ConfigError("the llamacpp backend needs a model", hint="pass --model path/to/model.gguf")
    return LlamaCppBackend(settings.model, threads=settings.threads, n_ctx=settings.max_model_len)


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, model: str, *, threads: int = 0, n_ctx: int | None = None):
        if not is_gguf(model):
            raise ConfigError(f"the llamacpp backend runs GGUF files; {model!r} is not one",
                              hint="pass --model path/to/model.gguf, or use --backend transformers for a folder")
        path = gguf_path(model)
        if path is None:
            raise ConfigError(f"GGUF file {model!r} does not exist")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError("the llamacpp backend needs llama-cpp-python",
                              hint="pip install 'giftgen[llamacpp]'") from None
        if threads < 0:
            raise ConfigError(f"threads must be >= 0 (0: every core), got {threads}")
        self.model = model
        threads = threads or len(os.sched_getaffinity(0))
        # llama.cpp logs to stderr from C; keep it quiet unless loading fails.
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx or 4096, n_threads=threads, n_threads_batch=threads,
                         verbose=False, seed=0)

    # ----------------------------------------------------------------------------------------------- public

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = check_prompts(prompts)
        keys = [prompt_key(p) for p in prompts]
        occ = occurrences(keys)
        seed = sampling.seed if sampling.seed is not None else random.SystemRandom().getrandbits(62)
        copies = 1 if sampling.greedy else sampling.n
        results = []
        for prompt, key, k in zip(prompts, keys, occ, strict=True):
            mine = [self._one(prompt, sampling, derive_seed(seed, key, k, j)) for j in range(copies)]
            results.append(mine if copies == sampling.n else [replace(mine[0]) for _ in range(sampling.n)])
        return results

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.close()

    # ----------------------------------------------------------------------------------------------- internals

    def _one(self, prompt: Prompt, sampling: Sampling, seed: int) -> Completion:
        kwargs: dict[str, Any] = {
            "max_tokens": sampling.max_new_tokens, "temperature": float(sampling.temperature),
            "top_p": float(sampling.top_p), "top_k": int(sampling.top_k), "min_p": 0.0, "typical_p": 1.0,
            "repeat_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0,
            "stop": list(sampling.stop) or None, "seed": seed,
        }
        if isinstance(prompt, str):
            out = self.llm.create_completion(prompt, **kwargs)
            text = out["choices"][0]["text"]
        else:
            out = self.llm.create_chat_completion(messages=prompt, **kwargs)
            text = out["choices"][0]["message"]["content"] or ""
        choice = out["choices"][0]
        text, cut = cut_at_stop(text, sampling.stop)
        finish = "stop" if cut or choice.get("finish_reason") == "stop" else "length"
        tokens = int((out.get("usage") or {}).get("completion_tokens") or 0)
        return Completion(text=text, tokens=tokens, finish_reason=finish)
