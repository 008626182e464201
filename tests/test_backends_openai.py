"""The openai backend against real HTTP servers on 127.0.0.1, all started and stopped by these tests.

- ``ScriptedServer``: a FastAPI app under uvicorn, in a thread, that fails the requests it is told to fail
  (429, 500, a slow answer), answers one choice whatever ``n`` asks (unless told to honour it), and records every
  request with its headers.
- ``transformers serve`` on the tiny model, in a subprocess: a real OpenAI-compatible server that ignores ``n``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from giftgen.backends import BackendSettings, load_backend
from giftgen.backends.base import Sampling
from giftgen.backends.openai import OpenAIBackend, split_tokens
from giftgen.errors import ConfigError, GiftgenError

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
from fastapi import FastAPI, Request  # noqa: E402  (module level: FastAPI resolves handler annotations here)
from fastapi.responses import JSONResponse  # noqa: E402

SECRET = "sk-test-0123456789-do-not-leak"


def reply_text(prompt: Any, seed: Any, i: int) -> str:
    return hashlib.sha256(json.dumps([prompt, seed, i]).encode()).hexdigest()[:12]


class ScriptedServer:
    """An OpenAI-compatible server whose failures are scripted by request number (1-based, per server)."""

    def __init__(self, name: str, fail: Callable[[int], int | None] = lambda k: None, honour_n: bool = False,
                 delay: Callable[[int], float] = lambda k: 0.0, model: str = "scripted-model"):
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.failed = 0
        self.in_flight = self.max_in_flight = 0
        app = FastAPI()

        async def handle(request: Request, chat: bool) -> Any:
            body = await request.json()
            self.requests.append({"body": body, "auth": request.headers.get("authorization"), "chat": chat})
            k = len(self.requests)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(delay(k))
            finally:
                self.in_flight -= 1
            status = fail(k)
            if status is not None:
                self.failed += 1
                # Echo the Authorization header, as a careless proxy might: the client must scrub it.
                return JSONResponse({"error": f"scripted failure; auth was {request.headers.get('authorization')}"},
                                    status_code=status)
            if "top_k" in body and name == "no-top-k":
                return JSONResponse({"detail": "Unexpected fields in the request: {'top_k'}"}, status_code=422)
            n = body.get("n", 1) if honour_n else 1
            prompt = body["messages"] if chat else body["prompt"]
            texts = [reply_text(prompt, body.get("seed"), i) for i in range(n)]
            stop = body.get("stop") or []
            choices = []
            for i, t in enumerate(texts):
                reason = "length"
                for s in stop:
                    if s in t:
                        t, reason = t[:t.index(s)], "stop"
                choices.append({"index": i, "finish_reason": reason,
                                **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})})
            return {"object": "chat.completion" if chat else "text_completion", "model": body["model"],
                    "choices": list(reversed(choices)), "usage": {"completion_tokens": 5 * n, "prompt_tokens": 3}}

        @app.post("/v1/completions")
        async def completions(request: Request) -> Any:
            return await handle(request, chat=False)

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            return await handle(request, chat=True)

        @app.get("/v1/models")
        async def models() -> Any:
            return {"object": "list", "data": [{"id": model, "object": "model"}]}

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def backend(*servers: ScriptedServer, **kw: Any) -> OpenAIBackend:
    kw = {"model": "scripted-model", "retry_backoff": 0.01, "request_timeout": 5.0, **kw}
    return OpenAIBackend([s.url for s in servers], **kw)


PROMPTS = ["def add(a, b):", [{"role": "user", "content": "Reverse a list."}], "def add(a, b):", "def g():"]


def test_fleet_with_failures_tops_up_n_round_robin_and_keeps_the_key_secret(monkeypatch, caplog, capfd):
    monkeypatch.setenv("GIFTGEN_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    slow = lambda k: 0.02  # noqa: E731  (lets requests overlap, so the concurrency bound is exercised)
    with ScriptedServer("a", fail=lambda k: 429 if k % 3 == 0 else None, delay=slow) as a, \
            ScriptedServer("b", fail=lambda k: 500 if k % 4 == 0 else None, delay=slow) as b:
        client = backend(a, b, api_key_env="GIFTGEN_TEST_KEY", concurrency=2)
        s = Sampling(n=3, temperature=0.8, top_p=0.95, top_k=50, max_new_tokens=32, seed=11)
        out = client.generate(PROMPTS, s)
        # n completions per prompt, although every answer held one choice.
        assert [len(cs) for cs in out] == [3, 3, 3, 3]
        for cs in out:
            assert len({c.text for c in cs}) == 3  # each top-up request had its own seed
            assert all(c.tokens == 5 and c.finish_reason == "length" for c in cs)
        assert out[0] != out[2]  # identical prompts, different samples
        # Failures happened on both servers and were retried.
        assert a.failed > 0 and b.failed > 0
        ok = len(a.requests) + len(b.requests) - a.failed - b.failed
        assert ok == 12 and client.requests_sent == len(a.requests) + len(b.requests)
        # Round-robin: the load is spread evenly over the two servers, at most `concurrency` at once on each.
        assert abs(len(a.requests) - len(b.requests)) <= 2
        assert max(a.max_in_flight, b.max_in_flight) == 2
        # The key reached every server in the Authorization header.
        assert {r["auth"] for r in a.requests + b.requests} == {f"Bearer {SECRET}"}
        bodies = [r["body"] for r in a.requests + b.requests]
        assert {(x["top_k"], x["top_p"], x["temperature"], x["max_tokens"]) for x in bodies} == {(50, 0.95, 0.8, 32)}
        assert all(("messages" in x) == r["chat"] for x, r in zip(bodies, a.requests + b.requests, strict=True))
        # Same seed, same completions (the servers' replies depend on the seed they are sent).
        assert client.generate(PROMPTS, s) == out
    assert "retry" in caplog.text  # retries were logged...
    captured = capfd.readouterr()
    assert SECRET not in caplog.text + captured.out + captured.err  # ...without the key


def test_server_that_honours_n_gets_one_request_per_prompt():
    with ScriptedServer("n", honour_n=True) as srv:
        out = backend(srv).generate(["p1", "p2"], Sampling(n=4, seed=1, stop=["a"]))
        assert len(srv.requests) == 2
        for cs in out:
            assert len(cs) == 4 and sum(c.tokens for c in cs) == 20  # usage total split across the choices
            assert all("a" not in c.text for c in cs)
        # Choices come back sorted by index (the server sends them reversed).
        seed = next(r["body"]["seed"] for r in srv.requests if r["body"]["prompt"] == "p1")
        assert [c.text for c in out[0]] == [reply_text("p1", seed, i).split("a")[0] for i in range(4)]


def test_greedy_asks_for_one_sample_and_copies_it():
    with ScriptedServer("greedy", honour_n=True) as srv:
        [cs] = backend(srv).generate(["p"], Sampling(n=3, temperature=0))
        assert len(srv.requests) == 1 and srv.requests[0]["body"]["n"] == 1
        assert len(cs) == 3 and cs[0] == cs[1] == cs[2]


def test_timeouts_are_retried():
    with ScriptedServer("slow", delay=lambda k: 1.0 if k == 1 else 0.0) as srv:
        [[c]] = backend(srv, request_timeout=0.3).generate(["p"], Sampling(seed=3))
        assert c.text == reply_text("p", srv.requests[-1]["body"]["seed"], 0)
        assert len(srv.requests) == 2


def test_retries_run_out_with_a_clean_error(monkeypatch):
    monkeypatch.setenv("GIFTGEN_TEST_KEY", SECRET)
    with ScriptedServer("down", fail=lambda k: 503) as srv:
        with pytest.raises(GiftgenError, match="failed after 2 retries") as e:
            backend(srv, max_retries=2, api_key_env="GIFTGEN_TEST_KEY").generate(["p"], Sampling())
        assert len(srv.requests) == 3
        assert SECRET not in str(e.value)


def test_client_errors_fail_at_once_with_the_key_scrubbed(monkeypatch):
    monkeypatch.setenv("GIFTGEN_TEST_KEY", SECRET)
    with ScriptedServer("bad", fail=lambda k: 401) as srv:
        with pytest.raises(GiftgenError, match="HTTP 401") as e:
            backend(srv, api_key_env="GIFTGEN_TEST_KEY").generate(["p"], Sampling())
        assert len(srv.requests) == 1
        assert SECRET not in str(e.value) and "***" in str(e.value)
        assert "GIFTGEN_TEST_KEY" in str(e.value)  # the hint names the variable, never its value


def test_a_server_without_top_k_gets_a_hint():
    with ScriptedServer("no-top-k") as srv:
        with pytest.raises(GiftgenError, match="--top-k 0"):
            backend(srv).generate(["p"], Sampling(top_k=50))
        [[c]] = backend(srv).generate(["p"], Sampling(top_k=0))
        assert "top_k" not in srv.requests[-1]["body"]


def test_no_key_no_header_and_model_discovery(monkeypatch):
    monkeypatch.delenv("GIFTGEN_ABSENT_KEY", raising=False)
    with ScriptedServer("disco", model="served/name") as srv:
        client = load_backend(BackendSettings(backend="openai", model=None, base_url=[srv.url],
                                              api_key_env="GIFTGEN_ABSENT_KEY"))
        assert client.model == "served/name"
        client.generate(["p"], Sampling())
        assert srv.requests[0]["auth"] is None and srv.requests[0]["body"]["model"] == "served/name"


def test_unreachable_server_for_discovery_is_a_config_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ConfigError, match="--model"):
            OpenAIBackend([f"http://127.0.0.1:{port}/v1"])


def test_generate_works_inside_a_running_event_loop():
    with ScriptedServer("loop") as srv:
        client = backend(srv)

        async def main() -> Any:
            return client.generate(["p"], Sampling(n=2, seed=0))

        out = asyncio.run(main())
        assert len(out[0]) == 2


def test_split_tokens_adds_up():
    assert split_tokens(10, ["a"]) == [10]
    assert sum(split_tokens(7, ["aa", "b", "cccc"])) == 7
    assert split_tokens(0, ["x", "y"]) == [0, 0]
    assert split_tokens(5, []) == []


# --------------------------------------------------------------------------------------------------- transformers serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def transformers_serve(tiny_model):
    exe = shutil.which("transformers")
    if exe is None:
        pytest.skip("transformers serve is not installed (pip install 'transformers[serving]')")
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [exe, "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # its imports alone took 44 s on a loaded 2-core machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not start within 180 s")
            time.sleep(0.2)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_transformers_serve_completions_and_chat(transformers_serve, tiny_model):
    client = load_backend(BackendSettings(backend="openai", model=None, base_url=[transformers_serve],
                                          retry_backoff=0.01))
    assert client.model == str(tiny_model)
    prompts = ["def add(a, b):\n", [{"role": "user", "content": "Write a function."}]]
    # transformers serve rejects top_k and ignores n: the backend tops up with one-sample requests.
    out = client.generate(prompts, Sampling(n=3, max_new_tokens=8, seed=0, top_k=0, stop=["\n\n"]))
    assert [len(cs) for cs in out] == [3, 3]
    for cs in out:
        for c in cs:
            assert 1 <= c.tokens <= 8 and c.finish_reason in ("stop", "length") and "\n\n" not in c.text
    assert client.requests_sent >= 6
    with pytest.raises(GiftgenError, match="--top-k 0"):
        client.generate(prompts[:1], Sampling(top_k=50, max_new_tokens=4))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
