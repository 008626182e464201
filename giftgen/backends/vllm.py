"""The ``vllm`` backend: an in-process ``vllm.LLM`` on one or more GPUs.

String prompts go through ``LLM.generate``, chat prompts through ``LLM.chat`` (the model's chat template, with
the generation prompt); both in one call each, so vLLM schedules the whole batch. Each prompt gets its own
``SamplingParams`` whose seed is derived from (seed, prompt, occurrence of that prompt in the call), so a prompt's
samples do not depend on the other prompts (see ``giftgen.backends.base``). ``top_k`` 0 (off) is sent as -1,
which every vLLM release accepts as "off" (recent ones also take 0; older ones reject it). Greedy requests ask
for one sample and copy it ``n`` times (older vLLM rejects ``n > 1`` when greedy).

vLLM logs to stdout by default, and its worker processes inherit file descriptor 1. Before vLLM is imported,
its log stream is pointed at stderr (``VLLM_LOGGING_STREAM``) and giftgen's record stream is opened
(``giftgen.records.records_stream``), which points fd 1 at stderr: records on stdout stay clean.

vLLM cannot be installed on CPU-only machines: the tests run this module against a stand-in ``vllm`` that
checks the argument names against vLLM's documented API (``tests/vllm_standin.py``).
"""

from __future__ import annotations

import gc
import os
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
from giftgen.errors import ConfigError, GiftgenError
from giftgen.model_check import check_model, is_hub_id
from giftgen.records import records_stream


def load(settings: BackendSettings) -> VLLMBackend:
    if not settings.model:
        raise ConfigError("the vllm backend needs a model", hint="pass --model HUB_ID_OR_FOLDER")
    # Command configs that carry a seed (chain, eval) seed the engine with it; it matters only for unseeded calls.
    seed = getattr(settings, "seed", None)
    return VLLMBackend(
        settings.model, dtype=settings.dtype, tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization, max_model_len=settings.max_model_len,
        seed=seed if isinstance(seed, int) else 0,
    )


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, *, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, seed: int = 0):
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        if not is_hub_id(model):  # a local folder or GGUF file: say what is wrong before vLLM starts its workers
            check_model(model)

        records_stream()  # fd 1 -> stderr, before vLLM starts worker processes that inherit it
        try:
            import vllm
        except ImportError:
            raise ConfigError("vLLM is not installed", hint="pip install 'giftgen[vllm]' on a machine with a GPU, "
                              "or use --backend transformers") from None
        self.model = model
        self._vllm = vllm
        kwargs: dict[str, Any] = {
            "model": model, "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization, "seed": seed,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        self.llm: Any = vllm.LLM(**kwargs)

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        if self.llm is None:
            raise GiftgenError("the vllm backend was closed")
        prompts = check_prompts(prompts)
        keys = [prompt_key(p) for p in prompts]
        occ = occurrences(keys)
        params = [self._params(sampling, keys[i], occ[i]) for i in range(len(prompts))]
        results: list[list[Completion]] = [[] for _ in prompts]
        for chat in (False, True):
            idx = [i for i, p in enumerate(prompts) if isinstance(p, str) != chat]
            if not idx:
                continue
            batch = [prompts[i] for i in idx]
            batch_params = [params[i] for i in idx]
            if chat:
                outs = self.llm.chat(batch, batch_params, use_tqdm=False, add_generation_prompt=True)
            else:
                outs = self.llm.generate(batch, batch_params, use_tqdm=False)
            for i, out in zip(idx, outs, strict=True):
                results[i] = self._completions(out, sampling)
        return results

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is None:
            return
        # vLLM has no single public "free everything" call; these are the steps its own tests use. Each is
        # optional across releases, so a missing one is skipped.
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm
        try:
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except (ImportError, AttributeError):
            pass
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    # ----------------------------------------------------------------------------------------------- internals

    def _params(self, sampling: Sampling, key: str, occurrence: int) -> Any:
        seed = None if sampling.seed is None else derive_seed(sampling.seed, key, occurrence)
        return self._vllm.SamplingParams(
            n=1 if sampling.greedy else sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else -1,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            stop=list(sampling.stop) or None,
        )

    def _completions(self, out: Any, sampling: Sampling) -> list[Completion]:
        completions = []
        for o in sorted(out.outputs, key=lambda o: o.index):
            text, cut = cut_at_stop(o.text, sampling.stop)
            reason = "length" if o.finish_reason == "length" and not cut else "stop"
            completions.append(Completion(text=text, tokens=len(o.token_ids), finish_reason=reason))
        if sampling.greedy and len(completions) == 1:
            completions = [replace(completions[0]) for _ in range(sampling.n)]
        if len(completions) != sampling.n:
            raise GiftgenError(f"vLLM returned {len(completions)} completions for a prompt, expected {sampling.n}")
        return completions
