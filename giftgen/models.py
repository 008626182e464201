"""Where a model comes from: a Hub id, a local folder, or a GGUF file, loaded the same way by every stage.

``--model`` names a Hub id (``org/name``), a local Hugging Face folder, or a GGUF file (``path/to/model.gguf``,
the file itself: a folder holding several GGUFs is ambiguous, so name the one to use). transformers loads
a GGUF with ``gguf_file=`` (it needs the ``gguf`` package) and dequantizes it to float, so chain, score, eval and
finetune all work from one; finetune then writes an ordinary Hugging Face folder that the next round loads.

``fingerprint`` is what provenance records for a model: the sha256 of a GGUF file (a GGUF carries no Hub
revision), None otherwise (``giftgen.card.model_revision`` records a Hub model's commit).

Nothing here imports transformers at module level.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from giftgen.errors import ConfigError
from giftgen.model_check import check_model

GGUF_SUFFIX = ".gguf"


@dataclass(frozen=True)
class ModelSource:
    """What ``from_pretrained`` takes: ``path`` (a Hub id or a folder) and, for a GGUF, the file inside it."""

    path: str
    gguf_file: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def is_gguf(name: str | None) -> bool:
    return bool(name) and str(name).lower().endswith(GGUF_SUFFIX)


def model_source(name: str) -> ModelSource:
    """The source of model ``name`` (module docstring); a GGUF file that does not exist is an error here."""
    if is_gguf(name):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"GGUF file {name!r} does not exist")
        return ModelSource(str(path.parent), path.name)
    return ModelSource(name)


def gguf_path(name: str | None) -> Path | None:
    """The GGUF file model ``name`` is, or None when it is a Hub id or a folder."""
    return Path(name) if is_gguf(name) and Path(str(name)).is_file() else None


def fingerprint(name: str | None) -> str | None:
    """``sha256:<hex>`` of a GGUF model file, None for anything else."""
    path = gguf_path(name)
    if path is None:
        return None
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _load_error(name: str, what: str, e: Exception) -> ConfigError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    hint = "install the gguf package: pip install gguf" if "gguf" in first.lower() and "install" in first.lower() else None
    return ConfigError(f"could not load the {what} of {name!r}: {first}", hint=hint)


def load_tokenizer(name: str) -> Any:
    """The tokenizer of model ``name`` (a Hub id, a folder or a GGUF file)."""
    from transformers import AutoTokenizer

    check_model(name, what="tokenizer")
    source = model_source(name)
    try:
        return AutoTokenizer.from_pretrained(source.path, **source.kwargs())
    except (OSError, ValueError, ImportError) as e:
        raise _load_error(name, "tokenizer", e) from None


def use_cpu_threads(threads: int) -> None:
    """Run torch's CPU operators on ``threads`` threads in this process (0: leave torch's default, the cores or
    ``OMP_NUM_THREADS``). A CPU result depends on it: float sums split over other threads round differently."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def load_causal_lm(name: str, dtype: Any) -> Any:
    """The causal LM of model ``name`` in ``dtype`` (a torch dtype or "auto"); a GGUF is dequantized to it."""
    import torch
    from transformers import AutoModelForCausalLM

    check_model(name)
    source = model_source(name)
    if source.gguf_file and dtype == "auto":
        dtype = torch.float32  # a GGUF's weights are quantized: "auto" has no float dtype to pick
    try:
        model = AutoModelForCausalLM.from_pretrained(source.path, dtype=dtype, **source.kwargs())
    except (OSError, ValueError, ImportError) as e:
        raise _load_error(name, "model", e) from None
    if source.gguf_file:
        # The weights are dequantized floats now, but the model still says "GGUF-quantized", which the Trainer
        # refuses to train and save_pretrained would write into config.json: it is an ordinary model.
        model.hf_quantizer = None
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model
