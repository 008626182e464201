"""Generation backends behind one small protocol; one module per backend, imported only when chosen.

See ``giftgen.backends.base`` for the protocol. ``BackendSettings`` holds the settings every command that loads
a model shares (chain, score, eval); command configs inherit from it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from giftgen.config import setting
from giftgen.errors import ConfigError

if TYPE_CHECKING:
    from giftgen.backends.base import Backend

BACKENDS: dict[str, str] = {
    "transformers": "giftgen.backends.hf",
    "vllm": "giftgen.backends.vllm",
    "openai": "giftgen.backends.openai",
    "llamacpp": "giftgen.backends.llamacpp",
    "fake": "giftgen.backends.fake",
}


@dataclass
class BackendSettings:
    model: str | None = setting(None, "Model: a Hub id, a local folder or a GGUF file (for openai: the served "
                                "model name).",
                                flag="-m", envvar="GIFTGEN_MODEL")
    backend: str = setting("transformers", "Backend that runs the model.", choices=tuple(BACKENDS),
                           envvar="GIFTGEN_BACKEND")
    device: str = setting("auto", "transformers: device (auto, cpu, cuda, cuda:1, mps).")
    dtype: str = setting("auto", "transformers/vllm: weight dtype (a GGUF loads dequantized: float32 unless given).", choices=("auto", "bfloat16", "float16", "float32"))
    batch_size: int = setting(16, "transformers: prompts per generate() call (each expanded to n samples).")
    tensor_parallel_size: int = setting(1, "vllm: tensor-parallel GPUs.")
    gpu_memory_utilization: float = setting(0.9, "vllm: share of GPU memory to reserve.")
    max_model_len: int | None = setting(None, "vllm/llamacpp: context length (default: the model's; llamacpp 4096).")
    threads: int = setting(0, "llamacpp: CPU threads (0: every core).")
    parallel: int = setting(16, "llamacpp: sequences (samples) decoded together, one token each per step.")
    base_url: list[str] = setting([], "openai: server URL(s), e.g. http://127.0.0.1:8000/v1; several spread load.",
                                  envvar="GIFTGEN_BASE_URL")
    api_key_env: str = setting("OPENAI_API_KEY", "openai: name of the environment variable holding the API key.")
    concurrency: int = setting(16, "openai: requests in flight at once (per server).")
    request_timeout: float = setting(120.0, "openai: seconds before a request is retried.")
    max_retries: int = setting(5, "openai: retries on 429/5xx/timeouts, with exponential backoff.")
    retry_backoff: float = setting(1.0, "openai: seconds before the first retry; doubles with each retry.")


def load_backend(settings: BackendSettings) -> Backend:
    """Load the backend ``settings.backend`` names, importing its module only now."""
    module_name = BACKENDS.get(settings.backend)
    if module_name is None:
        raise ConfigError(
            f"unknown backend {settings.backend!r}; valid backends: {', '.join(BACKENDS)}"
        )
    module = importlib.import_module(module_name)
    return module.load(settings)
