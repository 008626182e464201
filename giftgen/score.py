"""`giftgen score`: perplexity of each code under a model (the student, in distillation).

Contract (METHOD.md, step 2): PPL = exp(mean NLL over the completion tokens plus EOS), prompt tokens masked. The
prompt/completion split is exactly the one ``prompts.training_pair`` gives fine-tuning; the prompt is built from
the description that generated the code (``gen_description``, ``--condition generating``, the release's choice)
or from the seed description d0 (``--condition seed``). Tokenisation (``encode_pair``) is the one
``giftgen finetune`` trains on, so with ``--condition seed`` a code's NLL is the per-token loss of its training
pair.

Rows: every input row comes out, in input order, with ``nll`` (mean NLL per scored token), ``ppl``,
``ppl_tokens`` (how many tokens the mean is over: completion + EOS), ``score_model`` and ``score_condition``.
Only selection candidates are scored, rows with ``passed`` true that the chain did not mark ``kept: false``;
the others get null in these columns, unless ``--all`` (scoring is the expensive part).

Backends: ``transformers`` (rows read ``--window`` at a time, sorted by length, batched with dynamic padding:
one forward per batch, never padding to a fixed length), ``vllm`` (prompt log-probs of the token ids,
``SamplingParams(prompt_logprobs=0, max_tokens=1)``), ``openai`` (legacy completions on token ids with
``echo=True, logprobs=0, max_tokens=0``; vLLM's server supports it, most others do not, and then this is an error
that says so). All three tokenise locally with the model's Hugging Face tokenizer, so they score the same tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from giftgen.backends import BackendSettings
from giftgen.config import command_config, setting
from giftgen.errors import ConfigError, GiftgenError
from giftgen.models import load_causal_lm, load_tokenizer
from giftgen.records import require

# A scorer takes token sequences and, per sequence, the index of its first scored token; it returns the summed
# NLL (natural log) of tokens ``ids[start:]``, each predicted from all tokens before it.
Scorer = Callable[[Sequence[Sequence[int]], Sequence[int]], list[float]]


@command_config("score")
class ScoreConfig(BackendSettings):
    condition: str = setting("generating", "Condition on the description that generated the code, or the seed one.",
                             choices=("generating", "seed"))
    all: bool = setting(False, "Score every row; by default only passed rows the chain kept (others get null).")
    prompt_style: str = setting("base", "Prompt format: base (plain text) or chat (the tokenizer's chat template).",
                                choices=("base", "chat", "release"))
    batch_size: int = setting(16, "transformers: codes scored per forward pass (rows are sorted by length within "
                                  "--window first, so a batch pads little).")
    window: int = setting(4096, "transformers: rows read ahead and sorted by length before batching (bounds memory).")
    tokenizer: str | None = setting(None, "Tokenizer to use (default: the model's; for openai, give a local one).")

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.window < 1:
            raise ConfigError(f"window must be >= 1, got {self.window}")


# --------------------------------------------------------------------------------------------------- tokenisation


def score_pair(row: dict[str, Any], condition: str, style: str = "base") -> dict[str, Any]:
    """The prompt-completion pair whose completion is scored: ``training_pair``, with the conditioning description."""
    from giftgen.prompts import training_pair

    if condition == "generating":
        row = {**row, "description": row["gen_description"]}
    return training_pair(row, row["code"], style=style)


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_pair(tokenizer: Any, prompt: str | list[dict], completion: str | list[dict]) -> tuple[list[int], int]:
    """Token ids of prompt + completion + EOS and the index of the first completion token.

    Base style: the prompt is tokenised alone, as it is at inference, and the completion after it, then EOS.
    Tokenising the two jointly (what TRL does with raw prompt-completion text) would merge the prompt's last
    newline with the body's indentation (``"\\n" + "    "`` is one token in byte-level BPE), so the model would
    be trained on a context it never sees when it generates. Tokenizers that change a text when it starts it
    (SentencePiece's dummy-prefix space) cannot be split so; for them the joint tokenisation is used, with TRL's
    rule: the completion starts where the tokenised prompt and prompt + completion diverge.
    Chat style: the chat template renders both, and that rule splits them; the template closes the assistant
    turn, which is the completion's end.
    """
    if isinstance(prompt, list):
        prompt_ids = _ids(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                                        return_dict=True))
        full = _ids(tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True))
        return full, max(1, common_prefix_length(prompt_ids, full))
    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if eos is None or eos_id is None:
        raise GiftgenError("the tokenizer has no EOS token, so the end of a code cannot be scored or learnt")
    text = completion[: -len(eos)] if completion.endswith(eos) else completion
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    ids = prompt_ids + list(tokenizer(text, add_special_tokens=False)["input_ids"])
    joint = list(tokenizer(prompt + text)["input_ids"])
    if ids != joint and tokenizer.decode(ids) != tokenizer.decode(joint):
        # the separate tokenisation does not spell prompt + completion: fall back to the joint one
        return joint + [eos_id], max(1, common_prefix_length(prompt_ids, joint))
    # The first token is never predicted, so at least one token is context.
    return ids + [eos_id], max(1, len(prompt_ids))


def _ids(encoded: Any) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


# --------------------------------------------------------------------------------------------------- rows


def score_rows(rows: Iterable[dict[str, Any]], config: ScoreConfig, *, scorer: Scorer | None = None,
               tokenizer: Any = None, progress: Any = None) -> Iterator[dict[str, Any]]:
    """Add ``nll``, ``ppl``, ``ppl_tokens``, ``score_model``, ``score_condition`` to each row, in input order.

    ``scorer`` and ``tokenizer`` default to the configured backend's (loaded on the first row that needs them).
    """
    if config.model is None:
        raise ConfigError("`giftgen score` needs a model", hint="give --model (a Hub id or a local folder)")
    state: dict[str, Any] = {"scorer": scorer, "tokenizer": tokenizer}

    def ensure() -> tuple[Scorer, Any]:
        if state["tokenizer"] is None:
            state["tokenizer"] = load_tokenizer(config.tokenizer or config.model)
        if state["scorer"] is None:
            state["scorer"] = make_scorer(config, state["tokenizer"])
        return state["scorer"], state["tokenizer"]

    window: list[dict[str, Any]] = []
    index = 0
    for row in rows:
        index += 1
        window.append(row)
        _check(row, index, config)
        if len(window) >= config.window:
            yield from _score_window(window, config, ensure, progress)
            window = []
    if window:
        yield from _score_window(window, config, ensure, progress)


def _wanted(row: dict[str, Any], config: ScoreConfig) -> bool:
    if config.all:
        # a row without code (a sample the chain could not extract) still passes through unscored
        return isinstance(row.get("code"), str)
    # the selection candidates: passed, and kept by the chain (rows without the mark count as kept)
    return row.get("passed") is True and row.get("kept", True) is not False


def _check(row: dict[str, Any], index: int, config: ScoreConfig) -> None:
    if not config.all:
        require(row, {"passed": (bool, type(None))}, index, "score")
    if not _wanted(row, config):
        return
    require(row, {"code": str, "description": str, "prompt_head": str}, index, "score")
    if config.condition == "generating":
        require(row, {"gen_description": str}, index, "score")


def _score_window(window: list[dict[str, Any]], config: ScoreConfig,
                  ensure: Callable[[], tuple[Scorer, Any]], progress: Any) -> Iterator[dict[str, Any]]:
    todo = [i for i, row in enumerate(window) if _wanted(row, config)]
    results: dict[int, tuple[float, int]] = {}
    if todo:
        scorer, tokenizer = ensure()
        encoded = {}
        for i in todo:
            pair = score_pair(window[i], config.condition, config.prompt_style)
            encoded[i] = encode_pair(tokenizer, pair["prompt"], pair["completion"])
        # Longest first: similar lengths share a batch (little padding), and an out-of-memory shows up at once.
        order = sorted(todo, key=lambda i: -len(encoded[i][0]))
        for b in range(0, len(order), config.batch_size):
            batch = order[b:b + config.batch_size]
            sums = scorer([encoded[i][0] for i in batch], [encoded[i][1] for i in batch])
            for i, total in zip(batch, sums, strict=True):
                results[i] = (total, len(encoded[i][0]) - encoded[i][1])
            if progress is not None:
                progress.advance(len(batch))
    for i, row in enumerate(window):
        if i in results:
            total, count = results[i]
            nll = total / count
            yield {**row, "nll": nll, "ppl": math.exp(nll), "ppl_tokens": count, "score_model": config.model,
                   "score_condition": config.condition}
        else:
            yield {**row, "nll": None, "ppl": None, "ppl_tokens": None, "score_model": None,
                   "score_condition": None}


# --------------------------------------------------------------------------------------------------- backends


def make_scorer(config: ScoreConfig, tokenizer: Any) -> Scorer:
    if config.backend == "transformers":
        return transformers_scorer(config.model, device=config.device, dtype=config.dtype,
                                   pad_id=_pad_id(tokenizer))
    if config.backend == "vllm":
        return vllm_scorer(config)
    if config.backend == "openai":
        return openai_scorer(config)
    raise ConfigError(f"`giftgen score` cannot use the {config.backend!r} backend: it gives no prompt log-probs",
                      hint="score with --backend transformers (a GGUF file loads there too), vllm or openai")


def _pad_id(tokenizer: Any) -> int:
    # Any id will do: padded positions are masked out of attention and never scored.
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def transformers_scorer(model_name: str, *, device: str = "auto", dtype: str = "auto", pad_id: int = 0) -> Scorer:
    """Batched scoring with transformers: right padding plus an attention mask, one forward per batch."""
    import torch

    from giftgen.backends.hf import resolve_device

    device = resolve_device(device)
    if dtype == "auto":
        # The checkpoint's dtype on an accelerator; float32 on CPU, where half precision is slow and coarse.
        torch_dtype: Any = torch.float32 if device == "cpu" else "auto"
    else:
        torch_dtype = getattr(torch, dtype)
    model = load_causal_lm(model_name, torch_dtype)
    model.to(device).eval()

    @torch.inference_mode()
    def score(seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> list[float]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[b, : len(s)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        out = []
        for b, (s, start) in enumerate(zip(seqs, starts, strict=True)):
            # position t predicts token t + 1; log-softmax in float32 one row at a time keeps memory flat
            pred = logits[b, start - 1 : len(s) - 1].float()
            target = ids[b, start : len(s)].to(pred.device)
            out.append(float(torch.nn.functional.cross_entropy(pred, target, reduction="sum")))
        return out

    return score


def vllm_scorer(config: ScoreConfig) -> Scorer:
    """Prompt log-probs from vLLM: each sequence is a prompt of token ids; one token is generated and ignored."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise ConfigError("the vllm backend needs vLLM", hint="pip install 'giftgen[vllm]' on a GPU machine") from None
    kwargs: dict[str, Any] = {"model": config.model, "tensor_parallel_size": config.tensor_parallel_size,
                              "gpu_memory_utilization": config.gpu_memory_utilization, "dtype": config.dtype}
    if config.tokenizer:
        kwargs["tokenizer"] = config.tokenizer
    if config.max_model_len:
        kwargs["max_model_len"] = config.max_model_len
    llm = LLM(**kwargs)
    params = SamplingParams(prompt_logprobs=0, max_tokens=1)

    def score(seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> list[float]:
        outputs = llm.generate([{"prompt_token_ids": list(s)} for s in seqs], params, use_tqdm=False)
        out = []
        for output, s, start in zip(outputs, seqs, starts, strict=True):
            lps = output.prompt_logprobs
            if lps is None or len(lps) < len(s):
                raise GiftgenError("vLLM returned no prompt log-probs for a sequence")
            out.append(-sum(_logprob(lps[t][s[t]]) for t in range(start, len(s))))
        return out

    return score


def _logprob(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def openai_scorer(config: ScoreConfig) -> Scorer:
    """Echoed prompt log-probs from an OpenAI-compatible completions endpoint (vLLM's server), on token ids."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    if not config.base_url:
        raise ConfigError("the openai backend needs a server", hint="give --base-url http://127.0.0.1:8000/v1")
    headers = {}
    key = os.environ.get(config.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    clients = [httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=config.request_timeout)
               for url in config.base_url]

    def one(job: tuple[int, Sequence[int], int]) -> float:
        n, seq, start = job
        client = clients[n % len(clients)]
        body = {"model": config.model, "prompt": list(seq), "echo": True, "logprobs": 0, "max_tokens": 0,
                "temperature": 0.0}
        data = _post(client, body, config.max_retries, config.retry_backoff)
        try:
            lps = data["choices"][0]["logprobs"]["token_logprobs"]
        except (KeyError, IndexError, TypeError):
            lps = None
        if not lps or len(lps) < len(seq) or any(lp is None for lp in lps[start : len(seq)]):
            raise GiftgenError(
                f"the server at {client.base_url} returned no prompt log-probs (completions with echo=True, "
                "logprobs=0 on token ids)",
                hint="serve the model with vLLM (`vllm serve M`), or score with --backend transformers or vllm",
            )
        return -sum(float(lp) for lp in lps[start : len(seq)])

    def score(seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> list[float]:
        # A batch (--batch-size sequences) is in flight at once, up to --concurrency requests per server.
        jobs = [(n, s, st) for n, (s, st) in enumerate(zip(seqs, starts, strict=True))]
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), config.concurrency * len(clients)))) as pool:
            return list(pool.map(one, jobs))

    return score


def _post(client: Any, body: dict[str, Any], retries: int, backoff: float) -> dict[str, Any]:
    import httpx

    attempt = 0
    while True:
        try:
            response = client.post("/completions", json=body)
        except httpx.TransportError as e:
            if attempt >= retries:
                raise GiftgenError(f"cannot reach {client.base_url}: {type(e).__name__}") from None
        else:
            if response.status_code == 400 and body.get("max_tokens") == 0:
                # Some servers refuse max_tokens=0; one generated token costs little and is ignored.
                body = {**body, "max_tokens": 1}
                continue
            if response.status_code < 400:
                return response.json()
            retryable = response.status_code in (408, 409, 429) or response.status_code >= 500
            if not retryable or attempt >= retries:
                raise GiftgenError(f"{client.base_url}/completions answered {response.status_code}: "
                                   f"{response.text[:200]}")
        time.sleep(min(60.0, backoff * 2**attempt))
        attempt += 1
