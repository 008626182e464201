"""The ``fake`` backend: scripted replies, for users' own CI and for testing chain logic without a model.

A script is a list of entries, given as a Python list (``FakeBackend(script=[...])``) or as a file named by
``--model``: a ``.json`` file holding the list, or a ``.jsonl`` file with one entry per line. An entry is either

- a **rule**, ``{"match": "substring", "reply": "text"}``: answers every prompt that contains ``match``.
  ``reply`` may be a list, used in turn (cycling) across all the completions the rule answers, in call order,
  prompt order and sample order; so ``{"match": "def add", "reply": ["bad", "good", "bad"]}`` answers ``n = 3``
  with one good code per call; or
- a **queued reply**, a plain string (or a rule without ``match``): queued replies answer, first in first out,
  the completions that no rule matches.

Rules are tried in script order; the first whose ``match`` occurs in the prompt wins. A chat prompt is matched
against its messages' contents joined by newlines. A completion that no rule matches when the queue is empty is
an error naming the prompt. Replies get the protocol's treatment: cut before the first stop string
(``finish_reason`` "stop"), and cut at ``max_new_tokens`` tokens, where a token is a word, a punctuation mark or
a run of whitespace (``finish_reason`` "length"). Seeds and temperatures are ignored: replies are the script's.
Every call is recorded in ``calls`` as ``(prompts, sampling)``.

Example script (``replies.jsonl``), used as ``giftgen chain seeds.jsonl --backend fake --model replies.jsonl``::

    {"match": "###Description of the given code:", "reply": "Return the sum of two numbers."}
    {"match": "def add(", "reply": ["    return a - b\\n", "    return a + b\\n"]}
    "    pass\\n"
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giftgen.backends import BackendSettings
from giftgen.backends.base import Completion, Prompt, Sampling, check_prompts, cut_at_stop
from giftgen.errors import ConfigError, GiftgenError, InputError

_TOKEN = re.compile(r"\w+|[^\w\s]|\s+")


def load(settings: BackendSettings) -> FakeBackend:
    if not settings.model:
        raise ConfigError("the fake backend needs a script", hint="pass --model replies.jsonl (see giftgen.backends.fake)")
    return FakeBackend(path=settings.model)


@dataclass
class _Rule:
    match: str
    replies: list[str]
    used: int = 0

    def next(self) -> str:
        reply = self.replies[self.used % len(self.replies)]
        self.used += 1
        return reply


def read_script(path: str | Path) -> list[Any]:
    """The entries of a script file (.json: a list; .jsonl: one entry per line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"fake backend: no such script file: {path}")
    text = path.read_text()
    if path.suffix == ".jsonl":
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{number}: invalid JSON ({e.msg})") from None
        return entries
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: a fake script is a JSON list of entries")
    return data


class FakeBackend:
    name = "fake"

    def __init__(self, script: Sequence[Any] | None = None, *, path: str | Path | None = None):
        if (script is None) == (path is None):
            raise ConfigError("fake backend: give either a script or a path")
        entries = read_script(path) if path is not None else list(script or [])
        self.model = str(path) if path is not None else "fake"
        self.rules: list[_Rule] = []
        self.queue: deque[str] = deque()
        for i, entry in enumerate(entries):
            where = f"fake script entry {i + 1}"
            if isinstance(entry, str):
                self.queue.append(entry)
                continue
            if not isinstance(entry, dict) or "reply" not in entry or set(entry) - {"match", "reply"}:
                raise InputError(f"{where}: expected a string or {{\"match\": ..., \"reply\": ...}}, got {entry!r}")
            reply = entry["reply"]
            replies = [reply] if isinstance(reply, str) else reply
            if not isinstance(replies, list) or not replies or not all(isinstance(r, str) for r in replies):
                raise InputError(f"{where}: reply must be a string or a non-empty list of strings")
            match = entry.get("match")
            if match is None:
                self.queue.extend(replies)
            elif isinstance(match, str) and match:
                self.rules.append(_Rule(match, list(replies)))
            else:
                raise InputError(f"{where}: match must be a non-empty string")
        self.calls: list[tuple[list[Prompt], Sampling]] = []

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = check_prompts(prompts)
        self.calls.append((list(prompts), sampling))
        return [[self._complete(self._text(p), sampling) for _ in range(sampling.n)] for p in prompts]

    def close(self) -> None:
        pass

    @staticmethod
    def _text(prompt: Prompt) -> str:
        return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)

    def _complete(self, text: str, sampling: Sampling) -> Completion:
        rule = next((r for r in self.rules if r.match in text), None)
        if rule is not None:
            reply = rule.next()
        elif self.queue:
            reply = self.queue.popleft()
        else:
            head = text[:80].replace("\n", "\\n")
            raise GiftgenError(f"fake backend: no scripted reply for the prompt starting {head!r}")
        reply, cut = cut_at_stop(reply, sampling.stop)
        pieces = _TOKEN.findall(reply)
        if len(pieces) > sampling.max_new_tokens:
            return Completion("".join(pieces[:sampling.max_new_tokens]), sampling.max_new_tokens, "length")
        return Completion(reply, len(pieces), "stop")
