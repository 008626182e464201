"""`giftgen score`: perplexities from the tiny model against a hand computation, for every backend and batch size."""

from __future__ import annotations

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import GiftgenError, InputError
from giftgen.prompts import encode_pair, training_pair
from giftgen.score import ScoreConfig, score_rows
from tests.rows import chain_rows, seed_rows, variants


@pytest.fixture(scope="module")
def lm(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)


def hand_nll(lm, prompt: str, completion: str) -> tuple[float, int]:
    """Mean NLL of completion + EOS after the prompt: one sequence, no padding, float64 log-softmax.

    The prompt is tokenised alone (as the model sees it when it generates), the completion after it.
    """
    import torch

    model, tok = lm
    prompt_ids = tok(prompt)["input_ids"]
    full = prompt_ids + tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert tok.decode(full) == prompt + completion + tok.eos_token
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), dim=-1)
    nll = -sum(float(logp[t - 1, full[t]]) for t in range(len(prompt_ids), len(full)))
    return nll / (len(full) - len(prompt_ids)), len(full) - len(prompt_ids)


@pytest.fixture(scope="module")
def rows(data_dir) -> list[dict]:
    """Verified rows of very different lengths, two of them failed."""
    seeds = seed_rows(data_dir, 4)
    out = []
    for s in seeds:
        out += chain_rows(s, [s["reference"], variants(s, 1)[0] * 3], passed=[True, s is not seeds[2]])
    return out


def config(tiny_model: Path, **kw) -> ScoreConfig:
    return ScoreConfig(model=str(tiny_model), device="cpu", **kw)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_ppl_equals_hand_computation_whatever_the_batch(lm, rows, tiny_model, batch_size):
    out = list(score_rows(rows, config(tiny_model, batch_size=batch_size, window=5)))
    assert [r["code"] for r in out] == [r["code"] for r in rows]  # input order, every row
    for row, scored in zip(rows, out, strict=True):
        if not row["passed"]:
            assert scored["ppl"] is None and scored["nll"] is None and scored["ppl_tokens"] is None
            continue
        pair = training_pair({**row, "description": row["gen_description"]}, row["code"])
        nll, count = hand_nll(lm, pair["prompt"], pair["completion"])
        assert scored["nll"] == pytest.approx(nll, rel=1e-4)
        assert scored["ppl"] == pytest.approx(2.718281828459045 ** nll, rel=1e-4)
        assert scored["ppl_tokens"] == count
        assert scored["score_model"] == str(tiny_model) and scored["score_condition"] == "generating"


def test_the_prompt_is_tokenised_as_at_inference(lm, rows):
    _, tok = lm
    pair = training_pair(rows[0], rows[0]["code"])
    assert pair["prompt"].endswith("\n") and pair["completion"].startswith(" ")  # a boundary BPE would merge
    ids, start = encode_pair(tok, pair["prompt"], pair["completion"])
    assert ids[:start] == tok(pair["prompt"])["input_ids"]
    assert tok.decode(ids[start:]) == pair["completion"] + tok.eos_token
    joint = tok(pair["prompt"] + pair["completion"])["input_ids"]
    assert joint[:start] != ids[:start]  # tokenising jointly would have changed the context


def test_dummy_prefix_tokenizers_fall_back_to_the_joint_tokenisation():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # SentencePiece-like: a space is prepended to every text, so the completion cannot be tokenised on its own
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    raw.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    raw.train_from_iterator(["x = 1\ny = 2\n"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>", unk_token="<unk>")
    separate = tok("x = 1\n")["input_ids"] + tok("y = 2\n", add_special_tokens=False)["input_ids"]
    assert tok.decode(separate) != "x = 1\ny = 2\n"
    ids, start = encode_pair(tok, "x = 1\n", "y = 2\n")
    assert tok.decode(ids) == "x = 1\ny = 2\n</s>" and ids[-1] == tok.eos_token_id
    assert ids[:start] == tok("x = 1\n")["input_ids"][:start] and 0 < start < len(ids) - 1


def test_eos_is_scored(lm, rows, tiny_model):
    model, tok = lm
    row = rows[0]
    pair = training_pair({**row, "description": row["gen_description"]}, row["code"])
    ids, start = encode_pair(tok, pair["prompt"], pair["completion"])
    assert ids[-1] == tok.eos_token_id and start < len(ids) - 1
    scored = next(score_rows([row], config(tiny_model)))
    assert scored["ppl_tokens"] == len(ids) - start
    # without the EOS term the mean would differ: the EOS really is in it
    import torch

    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    no_eos = -sum(float(logp[t - 1, ids[t]]) for t in range(start, len(ids) - 1)) / (len(ids) - 1 - start)
    assert abs(scored["nll"] - no_eos) > 1e-4


def test_score_is_the_sft_loss_of_the_training_pair(rows, tiny_model, tmp_path):
    """Scoring and fine-tuning tokenise a pair the same way: PPL = exp(TRL's per-token loss on it)."""
    import torch

    from giftgen.finetune import FinetuneConfig, build_trainer

    row = {**rows[2], "passed": True}
    pair = training_pair(row, row["code"])  # condition=seed: the pair fine-tuning sees
    scored = next(score_rows([row], config(tiny_model, condition="seed")))
    trainer, _ = build_trainer(FinetuneConfig(model=str(tiny_model), output_dir=str(tmp_path), device="cpu"), [pair])
    example = trainer.train_dataset[0]
    with torch.no_grad():
        out = trainer.model(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]]))
    assert sum(label != -100 for label in example["labels"]) == scored["ppl_tokens"]  # the model shifts them
    assert float(out.loss) == pytest.approx(scored["nll"], rel=1e-4)


def test_condition_seed_uses_the_seed_description(lm, rows, tiny_model):
    row = rows[0]
    seed = next(score_rows([row], config(tiny_model, condition="seed")))
    pair = training_pair(row, row["code"])
    assert seed["nll"] == pytest.approx(hand_nll(lm, pair["prompt"], pair["completion"])[0], rel=1e-4)
    generating = next(score_rows([row], config(tiny_model)))
    assert generating["nll"] != pytest.approx(seed["nll"], rel=1e-6)


def test_all_scores_failed_rows_too(rows, tiny_model):
    out = list(score_rows(rows, config(tiny_model, all=True, batch_size=4)))
    assert all(r["ppl"] is not None for r in out)
    default = list(score_rows(rows, config(tiny_model, batch_size=4)))
    for a, b in zip(out, default, strict=True):
        if b["ppl"] is not None:
            assert a["ppl"] == pytest.approx(b["ppl"], rel=1e-5)


def test_rows_the_chain_did_not_keep_are_not_scored(rows, tiny_model):
    unkept = [{**rows[0], "kept": False}, rows[0]]
    out = list(score_rows(unkept, config(tiny_model)))
    assert out[0]["ppl"] is None and out[1]["ppl"] is not None
    assert next(score_rows(unkept, config(tiny_model, all=True)))["ppl"] == pytest.approx(out[1]["ppl"])


def test_missing_columns_name_their_stage(rows, tiny_model):
    no_verdict = [{k: v for k, v in rows[0].items() if k != "passed"}]
    with pytest.raises(InputError, match="giftgen verify"):
        list(score_rows(no_verdict, config(tiny_model)))
    no_gen = [{k: v for k, v in rows[0].items() if k != "gen_description"}]
    with pytest.raises(InputError, match="giftgen chain"):
        list(score_rows(no_gen, config(tiny_model)))
    assert next(score_rows(no_gen, config(tiny_model, condition="seed")))["ppl"] > 1


# --------------------------------------------------------------------------------------------------- vllm stand-in


def fake_vllm(lm, calls: list) -> types.ModuleType:
    """A stand-in `vllm` module whose LLM computes prompt log-probs with the tiny model, in vLLM's output shape."""
    import torch

    model, _ = lm
    module = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class Logprob:
        def __init__(self, logprob: float):
            self.logprob = logprob

    class LLM:
        def __init__(self, model: str, **kw):
            calls.append(("init", model, kw))

        def generate(self, prompts, params, use_tqdm=True):
            calls.append(("generate", len(prompts), params.kw))
            outs = []
            for p in prompts:
                ids = p["prompt_token_ids"]
                with torch.no_grad():
                    logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
                lps = [None] + [{ids[t]: Logprob(float(logp[t - 1, ids[t]]))} for t in range(1, len(ids))]
                outs.append(types.SimpleNamespace(prompt_logprobs=lps))
            return outs

    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


def test_vllm_backend_uses_prompt_logprobs(lm, rows, tiny_model, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(lm, calls))
    got = list(score_rows(rows, config(tiny_model, backend="vllm", batch_size=4)))
    want = list(score_rows(rows, config(tiny_model, batch_size=4)))
    for a, b in zip(got, want, strict=True):
        assert (a["ppl"] is None) == (b["ppl"] is None)
        if a["ppl"] is not None:
            assert a["nll"] == pytest.approx(b["nll"], rel=1e-4) and a["ppl_tokens"] == b["ppl_tokens"]
    assert calls[0][0] == "init" and calls[0][1] == str(tiny_model)
    assert all(c[2] == {"prompt_logprobs": 0, "max_tokens": 1} for c in calls[1:])


# --------------------------------------------------------------------------------------------------- openai stand-in


class CompletionsServer:
    """An OpenAI-style /v1/completions on 127.0.0.1 that echoes prompt log-probs of token-id prompts.

    mode "ok": answers max_tokens=0; "no-zero": refuses max_tokens=0 with 400 (as some servers do);
    "none": answers without log-probs (as servers that do not support echo do).
    """

    def __init__(self, lm, mode: str):
        import torch

        model, _ = lm
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if mode == "no-zero" and body["max_tokens"] == 0:
                    return self._send(400, {"error": {"message": "max_tokens must be at least 1"}})
                ids = body["prompt"]
                with torch.no_grad():
                    logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
                lps = [None] + [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]
                lps += [-0.5] * body["max_tokens"]  # generated tokens, which the scorer must ignore
                logprobs = None if mode == "none" else {"token_logprobs": lps, "tokens": [str(i) for i in ids]}
                self._send(200, {"choices": [{"text": "", "logprobs": logprobs}]})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.mark.parametrize("mode", ["ok", "no-zero"])
def test_openai_backend_uses_echoed_logprobs(lm, rows, tiny_model, mode):
    want = list(score_rows(rows, config(tiny_model, batch_size=4)))
    with CompletionsServer(lm, mode) as server:
        # max_retries=0: refusing max_tokens=0 is not a failure to retry, it is answered at once
        got = list(score_rows(rows, config(tiny_model, backend="openai", base_url=[server.url], batch_size=4,
                                           max_retries=0, tokenizer=str(tiny_model))))
    for a, b in zip(got, want, strict=True):
        if b["ppl"] is not None:
            assert a["nll"] == pytest.approx(b["nll"], rel=1e-4)
    first = server.requests[0]
    assert first["echo"] is True and first["logprobs"] == 0 and first["max_tokens"] == 0
    assert any(r["max_tokens"] == 1 for r in server.requests) == (mode == "no-zero")
    assert isinstance(first["prompt"], list) and all(isinstance(t, int) for t in first["prompt"])


def test_openai_backend_says_when_the_server_gives_no_logprobs(lm, rows, tiny_model):
    with CompletionsServer(lm, "none") as server:
        with pytest.raises(GiftgenError, match="no prompt log-probs"):
            list(score_rows(rows[:1], config(tiny_model, backend="openai", base_url=[server.url], max_retries=0)))


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_scores_a_file(rows, tiny_model, tmp_path):
    path = tmp_path / "verified.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(main, ["score", str(path), "--model", str(tiny_model), "--device", "cpu",
                                       "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(rows)
    assert [r["ppl"] is None for r in out] == [not r["passed"] for r in rows]
    assert all(r["ppl"] > 1 for r in out if r["passed"])
    missing = CliRunner().invoke(main, ["score", str(path)])
    assert missing.exit_code == 2 and "--model" in missing.output


def test_chat_style_scores_the_assistant_turn(lm, rows, tiny_model):
    import torch

    model, tok = lm
    row = rows[0]
    pair = training_pair({**row, "description": row["gen_description"]}, row["code"], style="chat")
    prompt_ids = tok.apply_chat_template(pair["prompt"], add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
    full = tok.apply_chat_template(pair["prompt"] + pair["completion"], tokenize=True, return_dict=True)["input_ids"]
    assert full[: len(prompt_ids)] == prompt_ids
    assert "<|end|>" in tok.decode(full[len(prompt_ids):])  # the template's end of turn is scored
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), dim=-1)
    nll = -sum(float(logp[t - 1, full[t]]) for t in range(len(prompt_ids), len(full))) / (len(full) - len(prompt_ids))
    scored = next(score_rows([row], config(tiny_model, prompt_style="chat")))
    assert scored["nll"] == pytest.approx(nll, rel=1e-4)
    assert scored["ppl_tokens"] == len(full) - len(prompt_ids)
