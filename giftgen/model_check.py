"""Check what ``--model`` names before a library loads it, so that a wrong name is a one-line error that says why.

``check_model(name)`` is called at the start of every path that loads a model or tokenizer (``giftgen.models``'
loaders, which the transformers backend, ``score`` and ``finetune`` use). It raises ``ConfigError`` when

- ``name`` looks like a local path (absolute, ``./``, ``../``, ``~``, or an existing file or folder) that does not
  exist (transformers would say "Repo id must be in the form ...");
- ``name`` is a folder that holds no model: no ``config.json`` (a tokenizer: nor ``tokenizer_config.json`` or
  ``tokenizer.json``) and no ``.gguf`` file (transformers ends with "... from one of: ");
- ``name`` is a file other than a ``.gguf`` file;
- ``name`` is a Hub id that is not in the local Hugging Face cache, and either ``HF_HUB_OFFLINE=1`` forbids
  downloading it or the Hub cannot be reached (a 3 s connection to the endpoint, instead of the clients' retries
  of half a minute and more).

A cached Hub id while the Hub cannot be reached passes, with a hint on stderr to set ``HF_HUB_OFFLINE=1`` (the
clients retry before they fall back to the cache). Not covered: private or gated repos, revisions, a repo without
weights: the loader's own error (its first line) reports those. Nothing heavy is imported here.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from giftgen.errors import ConfigError
from giftgen.progress import log

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
_NEXT = "give a folder saved with save_pretrained (e.g. by `giftgen finetune` or `giftgen pretrain`) or a Hub id"


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a Hub repository id rather than a local path (a path that exists is local)."""
    return not Path(name).expanduser().exists() and not name.startswith(_LOCAL_PREFIXES) and bool(_HUB_ID.match(name))


def check_model(name: str, *, what: str = "model") -> None:
    """Raise a ``ConfigError`` that says what is wrong with ``name`` (see the module docstring), else return."""
    path = Path(name).expanduser()
    if path.exists():
        _check_local(path, name, what)
        return
    if name.startswith(_LOCAL_PREFIXES) or not _HUB_ID.match(name):
        raise ConfigError(f"the {what} folder {name} does not exist", hint=_NEXT)
    _check_hub(name, what)


def _check_local(path: Path, name: str, what: str) -> None:
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(f"the {what} {name} is a file, not a model folder", hint=_NEXT)
        return
    markers = ("config.json", "tokenizer_config.json", "tokenizer.json") if what == "tokenizer" else ("config.json",)
    if not any((path / m).is_file() for m in markers) and not any(path.glob("*.gguf")):
        raise ConfigError(f"the folder {name} holds no {what}: it has no {' or '.join(markers)} (nor a .gguf file)",
                          hint=_NEXT)


def _check_hub(repo_id: str, what: str) -> None:
    from huggingface_hub import constants

    cached = (Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots").is_dir()
    local = f"no folder {repo_id} exists here either"
    if constants.HF_HUB_OFFLINE:
        if not cached:
            raise ConfigError(f"the {what} {repo_id!r} is not in the Hugging Face cache, and HF_HUB_OFFLINE=1 forbids "
                              f"downloading it ({local})",
                              hint="download it once with network (`hf download ID`), or give a local folder")
        return
    if _hub_reachable(constants.ENDPOINT):
        return
    if cached:
        log(f"Hint: the Hugging Face Hub cannot be reached; {repo_id!r} loads from the cache after the client's "
            "retries. Set HF_HUB_OFFLINE=1 to skip them.")
        return
    raise ConfigError(f"cannot reach the Hugging Face Hub ({constants.ENDPOINT}) to download the {what} {repo_id!r}, "
                      f"and it is not in the cache ({local})",
                      hint="check the network, or give a local folder; with the model in the cache, set "
                           "HF_HUB_OFFLINE=1")


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the endpoint opens within ``timeout``; True behind a proxy (the client's job)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return True
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False
