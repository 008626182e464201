"""The ``openai`` backend: any OpenAI-compatible server (``vllm serve``, SGLang, TGI, hosted APIs), over httpx.

String prompts go to ``POST {base_url}/completions``, chat prompts to ``POST {base_url}/chat/completions``, with
``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed`` and, only when it is on, ``top_k`` (an extra
field that vLLM and SGLang accept and hosted APIs reject: use ``--top-k 0`` there).

- **Fleet.** Requests go round-robin over the ``base_url``s, at most ``concurrency`` in flight per server; a retry
  goes to the next server, so a dead server slows a run down but does not stop it.
- **Retries.** 429, 5xx, timeouts and connection errors are retried up to ``max_retries`` times with exponential
  backoff (``retry_backoff`` seconds, doubling, with jitter; a server's ``Retry-After`` is honoured up to 60 s).
  Other errors (400, 401, 404, 422) fail at once with the server's message.
- **n.** Servers that ignore ``n`` (``transformers serve``) return fewer choices: the backend asks again for the
  rest until it has ``n``, and after the first such answer sends the rest as parallel one-sample requests.
  Each request carries its own seed, derived from (seed, prompt, occurrence, request number), so topped-up
  samples differ and a seeded run is repeatable on servers that honour seeds. Greedy (temperature 0) asks
  for one sample and copies it.
- **Key.** Read from the environment variable named by ``api_key_env`` and sent as ``Authorization: Bearer``;
  never logged, never in an error (error text from servers is scrubbed of it too). No key: no header.
- **Token counts.** ``usage.completion_tokens`` is exact for a one-choice response. With several choices the
  server reports only the total, which is split across them in proportion to their text length; 0 when a
  server reports no usage. Stop strings are also applied here, in case a server ignores them.

``generate`` is synchronous; it runs its own event loop (in a worker thread when called from a running loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
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
from giftgen.errors import ConfigError, GiftgenError

logger = logging.getLogger("giftgen.backends.openai")

_RETRY_STATUS = {408, 409, 425, 429}
_MAX_ROUNDS = 50  # per prompt: a server that keeps answering with no choice is broken, not slow


def load(settings: BackendSettings) -> OpenAIBackend:
    return OpenAIBackend(
        settings.base_url, settings.model, api_key_env=settings.api_key_env, concurrency=settings.concurrency,
        request_timeout=settings.request_timeout, max_retries=settings.max_retries,
        retry_backoff=settings.retry_backoff,
    )


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_urls: Sequence[str] | str, model: str | None = None, *,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 16, request_timeout: float = 120.0,
                 max_retries: int = 5, retry_backoff: float = 1.0):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        urls = [u.rstrip("/") for u in urls if u and u.strip()]
        if not urls:
            raise ConfigError("the openai backend needs a server", hint="pass --base-url http://HOST:PORT/v1")
        if concurrency < 1 or max_retries < 0 or request_timeout <= 0 or retry_backoff < 0:
            raise ConfigError("openai: concurrency must be >= 1, max_retries >= 0, request_timeout > 0, "
                              "retry_backoff >= 0")
        self.base_urls = urls
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.api_key_env = api_key_env
        self.__key = os.environ.get(api_key_env) or None
        self._turn = itertools.count()
        self._n_ignored = False  # set once a server answers n > 1 with one choice
        self.requests_sent = 0  # attempts, retries included: for logs and tests
        self.model = model or self._discover_model()

    # ----------------------------------------------------------------------------------------------- public

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = check_prompts(prompts)
        if not prompts:
            return []
        return _run(self._generate(prompts, sampling))

    def close(self) -> None:
        pass  # nothing held between calls: each generate() opens and closes its own connection pool

    # ----------------------------------------------------------------------------------------------- requests

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.__key}"} if self.__key else {}

    def _scrub(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key else text

    def _discover_model(self) -> str:
        import httpx

        url = self.base_urls[0] + "/models"
        try:
            r = httpx.get(url, headers=self._headers(), timeout=min(self.request_timeout, 30.0))
            r.raise_for_status()
            return str(r.json()["data"][0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
            raise ConfigError(f"openai: no --model given and {url} did not name one ({self._scrub(str(e))})",
                              hint="pass --model with the served model's name") from None

    async def _generate(self, prompts: list[Prompt], sampling: Sampling) -> list[list[Completion]]:
        import httpx

        keys = [prompt_key(p) for p in prompts]
        occ = occurrences(keys)
        slots = {url: asyncio.Semaphore(self.concurrency) for url in self.base_urls}
        limits = httpx.Limits(max_connections=self.concurrency * len(self.base_urls), max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.request_timeout), limits=limits) as client:
            tasks = [self._one_prompt(client, slots, p, sampling, keys[i], occ[i]) for i, p in enumerate(prompts)]
            return list(await asyncio.gather(*tasks))

    async def _one_prompt(self, client: Any, slots: dict[str, asyncio.Semaphore], prompt: Prompt,
                          sampling: Sampling, key: str, occurrence: int) -> list[Completion]:
        chat = not isinstance(prompt, str)
        # Greedy: one sample, copied (servers may reject n > 1 at temperature 0, and it would be wasted work).
        target = 1 if sampling.greedy else sampling.n
        collected: list[Completion] = []
        request_no = 0
        while len(collected) < target:
            if request_no >= _MAX_ROUNDS:
                raise GiftgenError(f"openai: the server returned no choices after {request_no} requests for a prompt")
            want = target - len(collected)
            # Once a server is known to ignore n, ask for the rest in parallel one-sample requests.
            sizes = [1] * want if (self._n_ignored and want > 1) else [want]
            bodies = []
            for size in sizes:
                seed = None if sampling.seed is None else derive_seed(sampling.seed, key, occurrence, request_no)
                bodies.append(self._body(prompt, sampling, size, seed))
                request_no += 1
            path = "/chat/completions" if chat else "/completions"
            answers = await asyncio.gather(*(self._post(client, slots, path, b) for b in bodies))
            for size, data in zip(sizes, answers, strict=True):
                got = self._parse(data, chat, sampling)
                if size > 1 and len(got) == 1:
                    self._n_ignored = True
                collected.extend(got[:size])
        if sampling.greedy:
            return [replace(collected[0]) for _ in range(sampling.n)]
        return collected[:sampling.n]

    def _body(self, prompt: Prompt, sampling: Sampling, n: int, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "n": n, "max_tokens": sampling.max_new_tokens,
                                "temperature": sampling.temperature, "top_p": sampling.top_p}
        body["messages" if not isinstance(prompt, str) else "prompt"] = prompt
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if seed is not None:
            body["seed"] = seed
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k
        return body

    async def _post(self, client: Any, slots: dict[str, asyncio.Semaphore], path: str,
                    body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        attempt = 0
        while True:
            url = self.base_urls[next(self._turn) % len(self.base_urls)]
            try:
                async with slots[url]:
                    self.requests_sent += 1
                    r = await client.post(url + path, json=body, headers=self._headers())
                return self._check(r, url + path, body)
            except (_Retryable, httpx.TimeoutException, httpx.TransportError) as e:
                reason = str(e) if isinstance(e, _Retryable) else f"{type(e).__name__}"
                retry_after = e.retry_after if isinstance(e, _Retryable) else None
            attempt += 1
            if attempt > self.max_retries:
                raise GiftgenError(
                    f"openai: POST {url + path} failed after {self.max_retries} retries: {self._scrub(reason)}",
                    hint="check the servers (--base-url) or raise --max-retries / --request-timeout",
                )
            delay = self.retry_backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, 60.0))
            logger.warning("openai: %s from %s; retry %d/%d in %.2fs", self._scrub(reason), url + path, attempt,
                           self.max_retries, delay)
            await asyncio.sleep(delay)

    def _check(self, r: Any, where: str, body: dict[str, Any]) -> dict[str, Any]:
        if r.status_code in _RETRY_STATUS or r.status_code >= 500:
            after = r.headers.get("retry-after")
            try:
                retry_after = float(after) if after is not None else None
            except ValueError:
                retry_after = None
            raise _Retryable(f"HTTP {r.status_code}", retry_after)
        if r.status_code != 200:
            detail = self._scrub(r.text.strip().replace("\n", " ")[:300])
            hint = None
            if "top_k" in body and "top_k" in r.text:
                hint = "this server does not take top_k: pass --top-k 0"
            elif r.status_code in (401, 403):
                hint = f"set the API key in ${self.api_key_env} (or --api-key-env NAME)"
            raise GiftgenError(f"openai: POST {where}: HTTP {r.status_code}: {detail}", hint=hint)
        try:
            data = r.json()
        except ValueError:
            raise _Retryable("a response that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise _Retryable("a response without choices")
        return data

    def _parse(self, data: dict[str, Any], chat: bool, sampling: Sampling) -> list[Completion]:
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        texts, reasons = [], []
        for c in choices:
            if not isinstance(c, dict):
                continue
            text = ((c.get("message") or {}).get("content") if chat else c.get("text")) or ""
            text, cut = cut_at_stop(text, sampling.stop)
            texts.append(text)
            reasons.append("length" if c.get("finish_reason") == "length" and not cut else "stop")
        usage = data.get("usage") or {}
        total = usage.get("completion_tokens") if isinstance(usage, dict) else None
        tokens = split_tokens(total if isinstance(total, int) else 0, texts)
        return [Completion(text=t, tokens=k, finish_reason=f) for t, k, f in zip(texts, tokens, reasons, strict=True)]


def split_tokens(total: int, texts: list[str]) -> list[int]:
    """Split a response's total token count over its choices, in proportion to text length (exact for one)."""
    if not texts:
        return []
    weights = [len(t) + 1 for t in texts]
    shares = [total * w / sum(weights) for w in weights]
    out = [int(s) for s in shares]
    # Largest remainders get the leftover tokens, so that the parts add up to the total.
    for i in sorted(range(len(texts)), key=lambda i: out[i] - shares[i])[: total - sum(out)]:
        out[i] += 1
    return out


def _run(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a notebook, an async caller): run ours in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
