"""A stand-in for the ``vllm`` package (which needs a GPU), for testing ``giftgen.backends.vllm``.

Its signatures copy vLLM's documented API (docs.vllm.ai, ``vllm.LLM``, ``LLM.generate``, ``LLM.chat``,
``vllm.SamplingParams``, ``vllm.CompletionOutput``), keyword for keyword, so that a misspelt or invented argument
is a ``TypeError`` here as it would be there. Values are checked as vLLM checks them, where releases agree
(``top_k`` must be -1 or >= 1 on old releases; 0 also means off on recent ones, so -1 is the portable "off").
Calls are recorded in ``CALLS``. Replies are a pure function of (prompt, seed, sample index), so tests can tell
whether seeds reach the engine. Like vLLM, it logs to the stream named by ``VLLM_LOGGING_STREAM`` (default
stdout) and, like its worker processes, writes to file descriptor 1 directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CALLS: list[tuple[str, dict[str, Any]]] = []

# Keyword arguments that LLM(**kwargs) forwards to EngineArgs and that giftgen may use.
_ENGINE_ARGS = {"max_model_len", "enable_prefix_caching", "max_num_seqs", "enforce_eager"}


def _log(message: str) -> None:
    stream = os.environ.get("VLLM_LOGGING_STREAM", "ext://sys.stdout")
    target = sys.stderr if stream == "ext://sys.stderr" else sys.stdout
    print(f"INFO vllm-standin: {message}", file=target, flush=True)


class SamplingParams:
    def __init__(self, n: int = 1, presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                 repetition_penalty: float = 1.0, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 min_p: float = 0.0, seed: int | None = None, stop: str | list[str] | None = None,
                 stop_token_ids: list[int] | None = None, ignore_eos: bool = False, max_tokens: int | None = 16,
                 min_tokens: int = 0, logprobs: int | None = None, prompt_logprobs: int | None = None,
                 detokenize: bool = True, skip_special_tokens: bool = True,
                 spaces_between_special_tokens: bool = True, include_stop_str_in_output: bool = False):
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        if temperature < 0:
            raise ValueError(f"temperature must be non-negative, got {temperature}.")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        if top_k < -1 or top_k == 0:
            # Old releases: "top_k must be -1 (disable), or at least 1"; giftgen must send the portable value.
            raise ValueError(f"top_k must be -1 (disable), or at least 1, got {top_k}.")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")
        if temperature == 0 and n > 1:
            # Old releases: best_of (which defaults to n) "must be 1 when using greedy sampling".
            raise ValueError(f"best_of must be 1 when using greedy sampling. Got {n}.")
        self.n, self.temperature, self.top_p, self.top_k = n, temperature, top_p, top_k
        self.seed, self.max_tokens = seed, max_tokens
        self.stop = [stop] if isinstance(stop, str) else list(stop or [])


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: Any
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = True


class LLM:
    def __init__(self, model: str, *, runner: str = "auto", convert: str = "auto", tokenizer: str | None = None,
                 tokenizer_mode: str = "auto", skip_tokenizer_init: bool = False, trust_remote_code: bool = False,
                 allowed_local_media_path: str = "", allowed_media_domains: list[str] | None = None,
                 tensor_parallel_size: int = 1, dtype: str = "auto", quantization: str | None = None,
                 revision: str | None = None, tokenizer_revision: str | None = None,
                 chat_template: str | None = None, seed: int = 0, gpu_memory_utilization: float = 0.92,
                 cpu_offload_gb: float = 0, enforce_eager: bool = False, **kwargs: Any):
        unknown = set(kwargs) - _ENGINE_ARGS
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got unexpected keyword arguments {sorted(unknown)}")
        if dtype not in ("auto", "half", "float16", "bfloat16", "float", "float32"):
            raise ValueError(f"unknown dtype {dtype!r}")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")
        CALLS.append(("LLM", {"model": model, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                              "seed": seed, "gpu_memory_utilization": gpu_memory_utilization, **kwargs}))
        _log(f"Initializing an LLM engine with config: model={model!r}")
        os.write(1, b"worker output on fd 1\n")
        self.llm_engine = _Engine()

    def generate(self, prompts: Any, sampling_params: Any = None, *, use_tqdm: bool = True,
                 lora_request: Any = None, priority: list[int] | None = None,
                 tokenization_kwargs: dict[str, Any] | None = None,
                 mm_processor_kwargs: dict[str, Any] | None = None) -> list[RequestOutput]:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError("generate() takes text prompts here; chat goes through LLM.chat")
        CALLS.append(("generate", {"prompts": prompts, "sampling_params": sampling_params, "use_tqdm": use_tqdm}))
        return self._run(prompts, sampling_params)

    def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: bool = True, lora_request: Any = None,
             chat_template: str | None = None, chat_template_content_format: str = "auto",
             add_generation_prompt: bool = True, continue_final_message: bool = False, tools: Any = None,
             chat_template_kwargs: dict[str, Any] | None = None, tokenization_kwargs: dict[str, Any] | None = None,
             mm_processor_kwargs: dict[str, Any] | None = None) -> list[RequestOutput]:
        conversations = [messages] if messages and isinstance(messages[0], dict) else list(messages)
        for conv in conversations:
            if not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in conv):
                raise TypeError("each conversation is a list of {role, content} messages")
        CALLS.append(("chat", {"messages": conversations, "sampling_params": sampling_params,
                               "add_generation_prompt": add_generation_prompt, "use_tqdm": use_tqdm}))
        rendered = ["".join(f"<|{m['role']}|>{m['content']}" for m in conv) + "<|assistant|>" for conv in conversations]
        return self._run(rendered, sampling_params)

    def _run(self, prompts: list[str], sampling_params: Any) -> list[RequestOutput]:
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params or SamplingParams()]
        if len(params) == 1 and len(prompts) > 1:
            params = params * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        outputs = []
        for r, (prompt, sp) in enumerate(zip(prompts, params, strict=True)):
            outs = []
            for i in range(sp.n):
                digest = hashlib.sha256(json.dumps([prompt, sp.seed, i, sp.temperature]).encode()).hexdigest()
                text = f"{digest[:8]} <STOP> tail" if sp.stop else digest[:8]
                reason = "length"
                for s in sp.stop:
                    if s in text:
                        text, reason = text[:text.index(s)], "stop"
                outs.append(CompletionOutput(index=i, text=text, token_ids=list(range(len(text.split()) + 1)),
                                             cumulative_logprob=None, logprobs=None, finish_reason=reason))
            outputs.append(RequestOutput(request_id=str(r), prompt=prompt, outputs=list(reversed(outs))))
        return outputs


class _EngineCore:
    def __init__(self) -> None:
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True
        CALLS.append(("shutdown", {}))


class _Engine:
    def __init__(self) -> None:
        self.engine_core = _EngineCore()
