"""Backends: the protocol helpers, load_backend, the fake backend, transformers on a tiny model, vllm on a stand-in.

The openai backend, which needs HTTP servers, is tested in test_backends_openai.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from giftgen.backends import BACKENDS, BackendSettings, load_backend
from giftgen.backends.base import Backend, Completion, Sampling, cut_at_stop, derive_seed, occurrences
from giftgen.errors import ConfigError, GiftgenError, InputError

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------------- base


def test_sampling_rejects_bad_values():
    for bad in ({"n": 0}, {"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1},
                {"max_new_tokens": 0}):
        with pytest.raises(ConfigError):
            Sampling(**bad)
    assert Sampling(stop="\n").stop == ["\n"]
    assert Sampling(stop=["", "x"]).stop == ["x"]
    assert Sampling(temperature=0).greedy and not Sampling().greedy


def test_cut_at_stop_takes_the_earliest_stop_string():
    assert cut_at_stop("a = 1\ndef g():\nif x", ["\nif", "\ndef"]) == ("a = 1", True)
    assert cut_at_stop("no stop here", ["\n"]) == ("no stop here", False)
    assert cut_at_stop("x", []) == ("x", False)


def test_occurrences_and_derived_seeds():
    assert occurrences(["a", "b", "a", "a", "b"]) == [0, 0, 1, 2, 1]
    assert derive_seed(1, "p", 0) == derive_seed(1, "p", 0)
    assert len({derive_seed(1, "p", k) for k in range(100)}) == 100
    assert derive_seed(1, "p", 0) != derive_seed(2, "p", 0)
    assert 0 <= derive_seed(7, "x", bits=31) < 2**31


def test_load_backend_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        load_backend(BackendSettings(backend="tgi", model="m"))
    for name in BACKENDS:
        assert name in str(e.value)


@pytest.mark.parametrize("backend", ["transformers", "vllm", "fake"])
def test_load_backend_needs_a_model(backend):
    with pytest.raises(ConfigError, match="model|script"):
        load_backend(BackendSettings(backend=backend, model=None))


def test_load_backend_openai_needs_a_server():
    with pytest.raises(ConfigError, match="--base-url"):
        load_backend(BackendSettings(backend="openai", model="m", base_url=[]))


def test_transformers_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nothing-here does not exist"):
        load_backend(BackendSettings(model=str(tmp_path / "nothing-here"), device="cpu"))
    (tmp_path / "config.json").write_text("{}")  # past the check, a broken folder is the loader's first line
    with pytest.raises(ConfigError, match="could not load the tokenizer of"):
        load_backend(BackendSettings(model=str(tmp_path), device="cpu"))


def test_backend_modules_import_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        import giftgen.backends, giftgen.backends.base, giftgen.backends.fake, giftgen.backends.openai
        import giftgen.backends.hf, giftgen.backends.vllm
        heavy = {"torch", "transformers", "vllm", "httpx", "datasets"} & set(sys.modules)
        print(sorted(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------- fake


def test_fake_rules_cycle_and_queue_answers_the_rest():
    from giftgen.backends.fake import FakeBackend

    fake = FakeBackend(script=[
        {"match": "def add", "reply": ["return a - b", "return a + b"]},
        {"match": "###Description", "reply": "Add two numbers."},
        "first queued", "second queued",
    ])
    assert isinstance(fake, Backend)
    out = fake.generate(["def add(a, b):", "###Description of the given code:\n"], Sampling(n=3))
    assert [c.text for c in out[0]] == ["return a - b", "return a + b", "return a - b"]
    assert [c.text for c in out[1]] == ["Add two numbers."] * 3
    [queued] = fake.generate(["unmatched"], Sampling(n=2))
    assert [c.text for c in queued] == ["first queued", "second queued"]
    with pytest.raises(GiftgenError, match="no scripted reply"):
        fake.generate(["still unmatched"], Sampling(n=1))
    # The cycle goes on across calls, in call order.
    assert fake.generate(["def add"], Sampling(n=1))[0][0].text == "return a + b"
    assert len(fake.calls) == 4


def test_fake_from_jsonl_file_with_chat_stop_and_length(tmp_path):
    from giftgen.backends.fake import FakeBackend

    script = tmp_path / "replies.jsonl"
    script.write_text('{"match": "summarise", "reply": "It adds.\\n###Code: more"}\n\n"one two three four five"\n')
    fake = load_backend(BackendSettings(backend="fake", model=str(script)))
    assert isinstance(fake, FakeBackend) and fake.model == str(script)
    chat = [{"role": "system", "content": "You write."}, {"role": "user", "content": "summarise this"}]
    [[c]] = fake.generate([chat], Sampling(stop=["\n###"]))
    assert c == Completion("It adds.", 4, "stop")
    [[c]] = fake.generate(["other"], Sampling(max_new_tokens=3))
    assert c == Completion("one two", 3, "length")


def test_fake_script_errors(tmp_path):
    from giftgen.backends.fake import FakeBackend

    with pytest.raises(InputError, match="no such script"):
        FakeBackend(path=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"match": "x"}')
    with pytest.raises(InputError, match="JSON list"):
        FakeBackend(path=bad)
    with pytest.raises(InputError, match="entry 1"):
        FakeBackend(script=[{"match": "x", "reply": 3}])
    with pytest.raises(InputError, match="entry 1"):
        FakeBackend(script=[{"match": "x", "reply": "y", "typo": 1}])


# --------------------------------------------------------------------------------------------------- transformers

PROMPTS = [
    "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n",
    "import math\ndef f(x):\n",
    [{"role": "user", "content": "Write a function that reverses a list."}],
    "def g(",
]


@pytest.fixture(scope="module")
def hf(tiny_model):
    from giftgen.backends.hf import TransformersBackend

    backend = load_backend(BackendSettings(model=str(tiny_model), device="cpu", batch_size=16))
    assert isinstance(backend, TransformersBackend) and isinstance(backend, Backend)
    yield backend
    backend.close()


def _texts(out):
    return [[c.text for c in cs] for cs in out]


def test_hf_shapes_and_token_counts(hf):
    out = hf.generate(PROMPTS, Sampling(n=3, max_new_tokens=12, seed=0))
    assert len(out) == len(PROMPTS) and all(len(cs) == 3 for cs in out)
    for cs in out:
        for c in cs:
            assert 1 <= c.tokens <= 12 and c.finish_reason in ("stop", "length")
            if c.finish_reason == "length":
                assert c.tokens == 12
    assert len({c.text for c in out[0]}) > 1  # n samples are not copies
    assert hf.generate([], Sampling()) == []


def test_hf_same_seed_same_texts_whatever_the_batching(hf):
    s = Sampling(n=2, max_new_tokens=10, seed=123, top_k=50)
    first = hf.generate(PROMPTS, s)
    assert hf.generate(PROMPTS, s) == first
    hf.batch_size = 1
    try:
        assert hf.generate(PROMPTS, s) == first
    finally:
        hf.batch_size = 16
    # A prompt's samples (texts and token counts) do not depend on the other prompts in the call, nor on the
    # padding they bring: "def g(" is the shortest prompt, the most padded in a batch, and alone has none.
    assert hf.generate([PROMPTS[3]], s) == [first[3]]
    assert hf.generate(list(reversed(PROMPTS)), s) == list(reversed(first))
    assert _texts(hf.generate(PROMPTS, Sampling(n=2, max_new_tokens=10, seed=124, top_k=50))) != _texts(first)


def test_hf_identical_prompts_get_different_samples(hf):
    out = hf.generate([PROMPTS[0]] * 3, Sampling(n=1, max_new_tokens=10, seed=5))
    assert len({cs[0].text for cs in out}) == 3


def test_hf_greedy_is_n_copies_and_equal_across_batch_sizes(hf):
    s = Sampling(n=2, temperature=0, max_new_tokens=10)
    big = hf.generate(PROMPTS, s)
    assert all(cs[0] == cs[1] for cs in big)
    hf.batch_size = 1
    try:
        assert hf.generate(PROMPTS, s) == big
    finally:
        hf.batch_size = 16
    # top_k 1 leaves one token to sample: the greedy one, whatever the seed.
    assert hf.generate(PROMPTS, Sampling(n=2, top_k=1, max_new_tokens=10, seed=9)) == big


def test_hf_stop_strings_cut_the_text_and_stop_generation(hf):
    free = hf.generate(PROMPTS, Sampling(n=3, max_new_tokens=16, seed=1))
    stopped = hf.generate(PROMPTS, Sampling(n=3, max_new_tokens=16, seed=1, stop=[" ", "\n"]))
    early = 0
    for cs_free, cs_stop in zip(free, stopped, strict=True):
        for a, b in zip(cs_free, cs_stop, strict=True):
            assert " " not in b.text and "\n" not in b.text
            # Same seed, same noise: the stopped text is the free text up to its first stop string.
            assert b.text == cut_at_stop(a.text, [" ", "\n"])[0]
            if b.finish_reason == "stop" and b.tokens < a.tokens:
                early += 1
    assert early > 0


def test_hf_chat_prompt_uses_the_chat_template(hf):
    messages = PROMPTS[2]
    rendered = hf.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|assistant|>\n")
    greedy = Sampling(temperature=0, max_new_tokens=8)
    assert hf.generate([messages], greedy) == hf.generate([rendered], greedy)


def test_sampler_draws_from_the_softmax():
    """The hash-driven inverse-CDF sampler is exact: frequencies match softmax(logits), -inf never wins."""
    import torch

    from giftgen.backends.hf import sample_rows, uniforms

    probs = torch.tensor([0.5, 0.25, 0.0, 0.15, 0.07, 0.03], dtype=torch.float64)
    rows = 40000
    keys = torch.randint(-(2**63), 2**63 - 1, (rows,), generator=torch.Generator().manual_seed(0))
    logits = probs.log().float().expand(rows, -1)  # log(0) = -inf: a token top-k/top-p removed
    expected = probs[probs > 0] * rows
    for step in (0, 7):
        counts = torch.bincount(sample_rows(logits, uniforms(keys, step)), minlength=6).double()
        assert counts[2] == 0
        chi2 = float((((counts[probs > 0] - expected) ** 2) / expected).sum())
        assert chi2 < 18.5, chi2  # 4 degrees of freedom: p < 0.001
    # One row over many steps: also the right frequencies, and no correlation between consecutive steps.
    u = uniforms(torch.full((20000,), 12345, dtype=torch.int64), torch.arange(20000))
    assert torch.equal(u[[0, 9]], torch.cat([uniforms(torch.tensor([12345]), s) for s in (0, 9)]))
    assert abs(float(u.mean()) - 0.5) < 0.01 and 0 < float(u.min()) and float(u.max()) < 1
    assert abs(float(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1])) < 0.03
    picks = sample_rows(probs.log().float().expand(20000, -1), u)
    assert abs(float((picks == 0).double().mean()) - 0.5) < 0.02
    # Pure function of its inputs; steps and keys differ.
    assert torch.equal(uniforms(keys[:3], 2), uniforms(keys[:3], 2))
    assert not torch.equal(uniforms(keys[:3], 2), uniforms(keys[:3], 3))
    assert len(set(uniforms(keys[:1000], 0).tolist())) == 1000


# --------------------------------------------------------------------------------------------------- vllm


@pytest.fixture()
def standin(monkeypatch):
    import io

    import giftgen.records
    from tests import vllm_standin

    vllm_standin.CALLS.clear()
    monkeypatch.setitem(sys.modules, "vllm", vllm_standin)
    monkeypatch.delenv("VLLM_LOGGING_STREAM", raising=False)
    # The backend opens giftgen's record stream (fd 1 -> stderr); in-process, give it a buffer instead.
    monkeypatch.setattr(giftgen.records, "_records_stream", io.BytesIO())
    return vllm_standin


def _vllm(**overrides):
    settings = BackendSettings(backend="vllm", model="deepseek-ai/deepseek-coder-6.7b-base", dtype="bfloat16",
                               tensor_parallel_size=2, gpu_memory_utilization=0.8, max_model_len=4096)
    for k, v in overrides.items():
        setattr(settings, k, v)
    return load_backend(settings)


def test_vllm_engine_arguments(standin):
    import os

    backend = _vllm()
    assert backend.name == "vllm" and isinstance(backend, Backend)
    name, kwargs = standin.CALLS[0]
    assert name == "LLM"
    assert kwargs == {"model": "deepseek-ai/deepseek-coder-6.7b-base", "tensor_parallel_size": 2,
                      "dtype": "bfloat16", "seed": 0, "gpu_memory_utilization": 0.8, "max_model_len": 4096}
    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"
    standin.CALLS.clear()
    _vllm(max_model_len=None)
    assert "max_model_len" not in standin.CALLS[0][1]


def test_vllm_generate_and_chat_in_prompt_order(standin):
    backend = _vllm()
    prompts = ["def a():", [{"role": "user", "content": "hi"}], "def a():", "def b():"]
    s = Sampling(n=3, temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=64, seed=7, stop=["\nclass"])
    out = backend.generate(prompts, s)
    calls = {name: kw for name, kw in standin.CALLS}
    assert calls["generate"]["prompts"] == ["def a():", "def a():", "def b():"]
    assert calls["generate"]["use_tqdm"] is False
    assert calls["chat"]["messages"] == [[{"role": "user", "content": "hi"}]]
    assert calls["chat"]["add_generation_prompt"] is True
    params = calls["generate"]["sampling_params"]
    assert [p.top_k for p in params] == [-1, -1, -1]  # 0 (off) becomes the portable -1
    assert {(p.n, p.temperature, p.top_p, p.max_tokens, tuple(p.stop)) for p in params} == {
        (3, 1.0, 0.95, 64, ("\nclass",))}
    # Per-prompt seeds: identical prompts get different ones; a prompt's seed depends on nothing else.
    assert params[0].seed != params[1].seed
    assert params[0].seed == derive_seed(7, "def a():", 0)
    assert [len(cs) for cs in out] == [3, 3, 3, 3]
    assert all(c.text and c.finish_reason == "length" and c.tokens >= 1 for cs in out for c in cs)
    assert out[0] != out[2]
    # Outputs come back sorted by index (the stand-in returns them reversed): sample 0 first.
    again = backend.generate(["def a():"], s)
    assert again[0] == out[0]


def test_vllm_top_k_greedy_stop_and_unseeded(standin):
    backend = _vllm()
    out = backend.generate(["x"], Sampling(n=4, temperature=0, top_k=50, stop=[" <STOP>"]))
    params = standin.CALLS[-1][1]["sampling_params"][0]
    assert (params.n, params.top_k, params.temperature, params.seed) == (1, 50, 0, None)
    assert len(out[0]) == 4 and len({c.text for c in out[0]}) == 1
    assert out[0][0].finish_reason == "stop" and "<STOP>" not in out[0][0].text


def test_vllm_close_shuts_the_engine_down(standin):
    backend = _vllm()
    backend.close()
    assert ("shutdown", {}) in standin.CALLS
    with pytest.raises(GiftgenError, match="closed"):
        backend.generate(["x"], Sampling())
    backend.close()  # twice is fine


def test_vllm_logs_go_to_stderr_and_records_stay_clean(tmp_path):
    """In a real process: vLLM's logger and its workers' fd-1 output land on stderr, records alone on stdout."""
    script = textwrap.dedent("""
        import sys
        from tests import vllm_standin
        sys.modules["vllm"] = vllm_standin
        from giftgen.backends import BackendSettings, load_backend
        from giftgen.backends.base import Sampling
        from giftgen.records import RowWriter
        backend = load_backend(BackendSettings(backend="vllm", model="m"))
        print("a stray print from library code")
        [[c]] = backend.generate(["p"], Sampling(seed=1))
        with RowWriter(None) as w:
            w.write({"text": c.text})
    """)
    env = {k: v for k, v in __import__("os").environ.items() if k != "VLLM_LOGGING_STREAM"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env,
                         check=True)
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 1 and set(records[0]) == {"text"}
    assert "Initializing an LLM engine" in out.stderr
    assert "worker output on fd 1" in out.stderr
    assert "a stray print" in out.stderr


def test_vllm_not_installed_is_a_config_error(monkeypatch):
    import giftgen.records

    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    monkeypatch.setattr(giftgen.records, "_records_stream", __import__("io").BytesIO())
    with pytest.raises(ConfigError, match="vLLM is not installed"):
        _vllm()


def test_vllm_says_what_is_wrong_with_a_local_model_before_starting(standin, tmp_path):
    from giftgen.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        _vllm(model=str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no model"):
        _vllm(model=str(tmp_path / "empty"))
    assert not [name for name, _ in standin.CALLS if name == "LLM"]  # the engine never started


# ------------------------------------------------------------------------------------------------ llamacpp


def test_llamacpp_sequence_step_finds_stops_across_tokens_counts_eos_and_cuts_at_length():
    """The per-token bookkeeping of llamacpp's multi-sequence decoding, without llama.cpp: a stop string that
    spans several tokens, one split inside a UTF-8 character, EOS counted but not written, the length limit.
    (The decoding itself runs on real GGUFs in tests/test_real_models.py, marker ``real``.)"""
    from giftgen.backends.llamacpp import LlamaCppBackend, _Job, _Seq

    pieces = {1: b"ret", 2: b"ur", 3: b"n x", 4: b"\n", 5: "é".encode()[:1], 6: "é".encode()[1:] + b"!"}
    EOS = 9

    class Cpp:
        @staticmethod
        def llama_vocab_is_eog(vocab, token):
            return token == EOS

    backend = LlamaCppBackend.__new__(LlamaCppBackend)
    backend._cpp, backend._vocab, backend._piece = Cpp, None, pieces.__getitem__

    def run(tokens, stops, limit=10):
        seq = _Seq(_Job((0, 0), [0], 0, limit), sampler=None)
        for n, t in enumerate(tokens, 1):
            done = backend._step(seq, t, stops)
            if done is not None:
                return done, n
        return None, len(tokens)

    assert run([4, 1, 2, 3, 4], ["return"]) == (Completion("\n", 4, "stop"), 4)  # "ret"+"ur"+"n x": found at 4
    assert run([4, 1, 2, 3], ["n x\n", "ur"]) == (Completion("\nret", 3, "stop"), 3)
    assert run([5, 6, 4], ["é!"]) == (Completion("", 2, "stop"), 2)  # the split character, then its stop
    assert run([1, 2, EOS, 3], ["zz"]) == (Completion("retur", 3, "stop"), 3)  # EOS counted, not written
    assert run([1, 2, 3, 4], [], limit=3) == (Completion("return x", 3, "length"), 3)
    assert run([1, 2, 3], ["return x"], limit=3) == (Completion("", 3, "stop"), 3)  # a stop at the limit is a stop


@pytest.mark.parametrize("parallel", [0, 257])
def test_llamacpp_refuses_a_parallel_llama_cpp_cannot_hold(tmp_path, parallel):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="parallel must be between 1 and 256"):
        load_backend(BackendSettings(backend="llamacpp", model=str(model), parallel=parallel))


@pytest.fixture
def amx_build(tmp_path, monkeypatch):
    """A stand-in llama-cpp-python built with AMX (its library a file whose size and time name the build), the
    probe's child a given script, and a cache folder of its own; ``runs`` counts the children started."""
    import types

    import giftgen.backends.llamacpp as llamacpp

    package = tmp_path / "site" / "llama_cpp"
    (package / "lib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lib" / "libggml-cpu.so").write_bytes(b"build 1")
    module = types.ModuleType("llama_cpp")
    module.__file__ = str(package / "__init__.py")
    module.llama_print_system_info = lambda: b"CPU : AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(llamacpp, "_amx_verdicts", {})
    runs = tmp_path / "runs"

    def child(body: str) -> None:
        monkeypatch.setattr(llamacpp, "_AMX_PROBE", f"open({str(runs)!r}, 'a').write('x')\n{body}")

    class Build:
        def __init__(self):
            self.package, self.child, self.module = package, child, module

        @property
        def runs(self) -> int:
            return len(runs.read_text()) if runs.exists() else 0

        def verdict(self, forget: bool = True):
            if forget:  # a new process: only the cache file remembers
                llamacpp._amx_verdicts.clear()
            return llamacpp.amx_kernels_work(tmp_path / "m.gguf")

    return Build()


def test_llamacpp_amx_kernels_that_die_are_found_once_and_remembered(amx_build, tmp_path, capsys):
    """A build whose AMX kernels die with SIGILL (GCC 12's tile-configuration bug) is found by a child process,
    told once, and remembered for that build: the next process does not probe again; a rebuilt library does."""
    amx_build.child("import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    assert amx_build.verdict() is False and amx_build.runs == 1
    assert "AMX kernels fail in this build" in capsys.readouterr().err
    assert amx_build.verdict(forget=False) is False and amx_build.verdict() is False and amx_build.runs == 1
    assert capsys.readouterr().err == ""
    (amx_build.package / "lib" / "libggml-cpu.so").write_bytes(b"build 2, corrected")  # reinstalled
    amx_build.child("raise SystemExit(0)")
    assert amx_build.verdict() is True and amx_build.runs == 2
    assert amx_build.verdict() is True and amx_build.runs == 2
    stored = json.loads((tmp_path / "cache" / "giftgen" / "llamacpp-amx.json").read_text())
    assert sorted(stored.values()) == [False, True]


@pytest.mark.parametrize(("body", "verdict"), [
    ("raise SystemExit(2)", None),  # the model puts no tensor in AMX's layout: says nothing about the kernels
    ("raise SystemExit(3)", False),  # the model did not load: the safe layouts, and the backend's own error
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", False),  # another death: safe, not a finding
])
def test_llamacpp_amx_probe_keeps_only_findings_about_the_build(amx_build, tmp_path, body, verdict, capsys):
    amx_build.child(body)
    assert amx_build.verdict() is verdict
    assert amx_build.verdict() is verdict and amx_build.runs == 2  # asked again: nothing was stored
    assert not (tmp_path / "cache" / "giftgen" / "llamacpp-amx.json").exists()
    told = capsys.readouterr().err
    assert ("probe ended with exit" in told) is (verdict is False) and "fail in this build" not in told


def test_llamacpp_amx_probe_that_does_not_finish_is_told_and_not_stored(amx_build, tmp_path, monkeypatch, capsys):
    import giftgen.backends.llamacpp as llamacpp

    monkeypatch.setattr(llamacpp, "AMX_PROBE_SECONDS", 1)
    amx_build.child("import time; time.sleep(60)")
    assert amx_build.verdict() is False and amx_build.runs == 1
    assert "did not finish in 1 s" in capsys.readouterr().err
    assert not (tmp_path / "cache" / "giftgen" / "llamacpp-amx.json").exists()


def test_llamacpp_amx_probe_survives_a_damaged_cache_and_skips_builds_without_amx(amx_build, tmp_path):
    store = tmp_path / "cache" / "giftgen" / "llamacpp-amx.json"
    store.parent.mkdir(parents=True)
    for damaged in ("{not json", "[1, 2]", json.dumps({"x": "yes"})):
        store.write_text(damaged)
        amx_build.child("raise SystemExit(0)")
        assert amx_build.verdict() is True
    assert amx_build.runs == 3 and True in json.loads(store.read_text()).values()
    amx_build.module.llama_print_system_info = lambda: b"CPU : AVX2 = 1 | REPACK = 1 |"
    assert amx_build.verdict() is None and amx_build.runs == 3  # no AMX: no child
