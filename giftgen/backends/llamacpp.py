"""The ``llamacpp`` backend: a GGUF model run natively by llama.cpp (``llama-cpp-python``) on CPUs, no torch.

Install with ``pip install 'giftgen[llamacpp]'`` (it builds llama.cpp from source: 10-15 minutes on 2 cores,
cached by pip afterwards), or, on a processor with AMX, with the repository's ``scripts/install-llamacpp.sh``
(below). ``--model`` is the GGUF file.

- **Many sequences at once.** Every sample of every prompt in a ``generate`` call is a sequence; up to
  ``parallel`` of them are decoded together, one token each per ``llama_decode`` (continuous batching: a finished
  sequence's slot takes the next waiting one, whose prompt is read in the same batches as the others' decoding).
  Each sequence has its own KV-cache stream and its own sampler.
- **A prompt is read once.** The samples of a prompt (and its other occurrences in the call) share one read of
  it: the first to get a slot reads it; when the read ends, each other sample draws its first token from the same
  logits with its own sampler and starts from a copy of the reader's KV stream (``llama_memory_seq_cp``, a buffer
  copy between streams). A sample that gets a slot later copies the prompt's cells from any live sample of its
  prompt (that one's generated cells dropped), or reads the prompt again when none is left (at ``parallel`` 1,
  always). The samples are those that reading the prompt once per sample gives wherever llama.cpp computes a
  prompt's cells the same whatever shares the batch (below; tested on SmolLM2 at ``parallel`` 16 and 2, Qwen at
  1, with and without AMX's kernels). ``share_prompts = False`` reads it per sample; ``prompt_tokens_read``
  counts the last call's prompt tokens.
- **Prompts.** A string prompt is tokenized as is (the model's BOS added as its metadata says); a chat prompt is
  rendered with the chat template the GGUF carries (its generation prompt added), as llama-cpp-python's chat
  completion does; a GGUF without one refuses chat prompts.
- **Sampling.** ``temperature``, then ``top_k`` and ``top_p`` (0 / 1.0 are off, as everywhere in giftgen), then a
  draw: the order of the transformers and vllm backends; no other sampler (no min-p, no repeat penalty).
  Temperature 0 is greedy, decoded once per prompt and copied ``n`` times.
- **Seeds.** Each sample draws from its own generator, seeded from (seed, prompt, occurrence of the prompt in the
  call, sample index), and has its own KV-cache stream, filled in order, which its attention reads alone. So
  what decides a sample is its prompt and seed, not the other prompts nor ``n``'s neighbours, as far as llama.cpp
  computes a row of a batch the same whatever else is in it. That holds exactly for SmolLM2's Q4_1 GGUF at any
  ``parallel``, and for Qwen2.5-Coder's Q4_K_M file with AMX's kernels (tested at 16, 2 and 1); without them it
  does not hold for Qwen (measured: 8 of 15 samples differ between ``parallel`` 16 and 1; likely the kernels
  that multiply its Q4_K, Q6_K and Q8_0 tensors where AMX's do not, whose rounding depends on the batch's
  size): there a prompt's samples can change with what shares its batch, as with vLLM. ``parallel`` 1 (one
  sequence at a time) is exact for every GGUF (tested on both). A seeded run is repeatable on one machine and
  llama.cpp build.
- **Stops and counts.** Decoding stops at an end-of-generation token, at a stop string (the text is cut before
  it) or after ``max_new_tokens``; ``tokens`` counts the generated tokens, the EOS and a stop string's tokens
  included; ``finish_reason`` is ``stop`` or ``length``. A prompt plus ``max_new_tokens`` longer than the context
  (``max_model_len``, default 4096 tokens a sequence) is cut at the context's end (``length``).
- **Threads.** ``threads`` (0: every core) work on each batch together. llama.cpp's threads wait at OpenMP
  barriers, spinning: fastest on a quiet machine (1.23x ``PASSIVE`` at batch 16), but on a machine shared with
  other jobs set ``OMP_WAIT_POLICY=PASSIVE`` (measured 4-5x faster at 2 threads under a load average of 8 on 2
  cores).
- **Weights and kernels.** The GGUF runs as it is, in llama.cpp's extra weight layouts where it has them: AMX's
  tiles on a processor with AMX (its Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K and IQ4_XS tensors), the repacked ones
  elsewhere. A llama.cpp built by GCC 12 for a processor with AMX dies in its AMX kernels (see
  ``amx_kernels_work``: found once per build, in a child process, and cached); such a build runs without the extra
  layouts (``extra_layouts``), and multiplies Q4_1 weights with per-token dot products, reading a prompt about as
  slowly per token as it decodes. ``scripts/install-llamacpp.sh`` builds one whose AMX kernels work. Where they
  work, a file's Q5_0 tensors, which they do not take, run as Q8_0 ones: the same weights, value for value, from
  a copy made once and cached (``giftgen.backends.widen``; ``widen``; ``weights`` is the file llama.cpp runs).
  Attention runs without llama.cpp's flash attention, which on a CPU walks the cache one position at a time.
- **Slots.** llama.cpp splits a batch of several KV streams into one sub-batch per run of consecutive sequence
  ids, each a pass over the weights. So the batch lists the slots in order, and once no job waits for a slot,
  a finished sequence's slot takes the last decoding one's stream (``_compact``), which keeps the busy slots
  consecutive.

Measured (``benchmarks/bench_generate.py``, MBPP chat prompts, 2 threads, T = 1, a quiet 2-core machine with AMX
and a build whose AMX kernels work; docs/backends.md has the table): against the transformers backend on the same
file, SmolLM2-135M-Instruct Q4_1 4.21x at batch 1; at the chain's batch of 16, 1.95x with one sample a prompt and
64 new tokens (reading the prompts is half the time there), 3.04x with the code step's 3 samples a prompt, 2.70x
on the summary step's prompts. Qwen2.5-Coder-0.5B-Instruct Q4_K_M (its Q5_0 tensors widened) 2.22x, 3.09x and
2.52x; as it is, 0.93x. Without the extra weight layouts (a build whose AMX kernels fail), SmolLM2 1.64x at batch 1
and 0.68x at 16. Sharing a prompt's read between its 3 samples made llamacpp 1.50x faster than one read per sample;
keeping the busy slots consecutive, 1.09x at 16 with 64 new tokens.

Not covered: scoring (``giftgen score`` refuses this backend and names the ones that score), GPUs (use vllm), and
models other than GGUF files.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import random
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
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
from giftgen.backends.widen import GGUFError, widened_copy
from giftgen.errors import ConfigError
from giftgen.models import fingerprint, gguf_path, is_gguf
from giftgen.progress import log

DEFAULT_CONTEXT = 4096  # tokens a sequence may hold (prompt + completion) unless max_model_len says otherwise
BATCH_TOKENS = 512  # tokens per llama_decode call: every decoding sequence's next one, then prompt chunks
MAX_PARALLEL = 256  # llama.cpp's limit on sequences in one context (below BATCH_TOKENS)
AMX_PROBE_SECONDS = 300  # the AMX probe's child: about 1 s on a quiet machine


def load(settings: BackendSettings) -> LlamaCppBackend:
    if not settings.model:
        raise ConfigError("the llamacpp backend needs a model", hint="pass --model path/to/model.gguf")
    return LlamaCppBackend(settings.model, threads=settings.threads, n_ctx=settings.max_model_len,
                           parallel=settings.parallel)


@dataclass
class _Job:
    """One sequence to decode: where its completion goes, its prompt tokens, its seed and its token budget."""

    where: tuple[int, int]
    ids: list[int]
    seed: int
    limit: int


@dataclass
class _Seq:
    """A job in a slot: its sampler, how much of its prompt is in the cache, and what it generated so far."""

    job: _Job
    sampler: Any
    fed: int = 0
    tokens: list[int] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    searched: int = 0  # characters of the decoded text already searched for stop strings
    waiting: bool = False  # in a slot, waiting for its group's prompt, which another slot reads

    @property
    def decoding(self) -> bool:
        """Its prompt is in the cache: each step feeds its last token."""
        return self.fed == len(self.job.ids)


@dataclass
class _Group:
    """The jobs of one prompt (its samples, and its other occurrences): their prompt is read once."""

    jobs: list[_Job]
    unstarted: set[tuple[int, int]]  # jobs not yet taken from the queue
    reader: int | None = None  # the slot reading the prompt, until it is read
    read: bool = False
    first: dict[tuple[int, int], _Seq] = field(default_factory=dict)  # unstarted jobs, their first token drawn


# ----------------------------------------------------------------------------------------------------- AMX

_AMX_PROBE = """
import ctypes, sys
import llama_cpp
log = []
@llama_cpp.llama_log_callback
def keep(level, text, user):
    log.append(text.decode("utf-8", "replace"))
llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
params = llama_cpp.llama_model_default_params()
params.n_gpu_layers, params.use_extra_bufts = 0, True
model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), params)
if not model:
    sys.exit(3)
if not any("AMX model buffer" in line for line in log):
    sys.exit(2)  # no tensor of this model in AMX's layout: nothing to learn about its kernels
cparams = llama_cpp.llama_context_default_params()
cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = 64
cparams.n_threads = cparams.n_threads_batch = 1
ctx = llama_cpp.llama_init_from_model(model, cparams)
batch = llama_cpp.llama_batch_init(32, 0, 1)
vocab = llama_cpp.llama_model_get_vocab(model)
token = max(llama_cpp.llama_vocab_bos(vocab), 0)
for i in range(32):  # a batch of more than one token: AMX's tile kernels (one token takes a vector path)
    batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, i, 1, i == 31
    batch.seq_id[i][0] = 0
batch.n_tokens = 32
sys.exit(0 if llama_cpp.llama_decode(ctx, batch) == 0 else 4)
"""
_amx_verdicts: dict[str, bool] = {}


def amx_kernels_work(model: Path) -> bool | None:
    """Whether llama.cpp's AMX matrix kernels run in this build: None where it has none (or ``model`` puts no
    tensor in AMX's layout, so it runs the same either way), else found once, in a child process, and cached.

    A llama.cpp built by GCC 12 for a processor with AMX (llama-cpp-python 0.3.36 built on this project's Sapphire
    Rapids machines) dies with SIGILL at its first tile instruction: GCC 12's ``_tile_loadconfig`` tells the
    compiler it reads 8 of the tile configuration's 64 bytes, so the tile shapes written before it are dropped and
    the tiles it loads are empty (``scripts/install-llamacpp.sh`` builds with that header corrected). Such a build
    runs without the extra weight layouts; a working one runs with them (AMX: SmolLM2's Q4_1 file 2.5-2.9x the
    tokens/s at the chain's batch of 16 here)."""
    import llama_cpp

    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        return None
    package = Path(llama_cpp.__file__).parent
    lib = package / "lib"
    build = sorted(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in lib.glob("libggml-cpu*"))
    key = f"{lib}|{','.join(build)}"
    if key in _amx_verdicts:
        return _amx_verdicts[key]
    store = _cache_home() / "llamacpp-amx.json"
    try:
        stored = json.loads(store.read_text())
    except (OSError, ValueError):
        stored = {}
    if isinstance(stored, dict) and isinstance(stored.get(key), bool):
        _amx_verdicts[key] = stored[key]
        return stored[key]
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package.parent), os.environ.get("PYTHONPATH", "")])}
        rc = subprocess.run([sys.executable, "-c", _AMX_PROBE, str(model)], stdin=subprocess.DEVNULL, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=AMX_PROBE_SECONDS).returncode
    except subprocess.TimeoutExpired:
        log(f"llama.cpp's AMX probe did not finish in {AMX_PROBE_SECONDS} s (a loaded machine?): running without "
            "its fast weight layouts this time")
        return False  # not known: the safe layouts, not stored
    if rc == 2:
        return None
    verdict = rc == 0
    if rc in (0, -signal.SIGILL):  # a finding about the build, whatever the model: kept
        _amx_verdicts[key] = verdict
        stored = stored if isinstance(stored, dict) else {}
        stored[key] = verdict
        with contextlib.suppress(OSError):
            store.parent.mkdir(parents=True, exist_ok=True)
            partial = store.with_name(f".{store.name}.{os.getpid()}")
            partial.write_text(json.dumps(stored, indent=1))
            os.replace(partial, store)
    if rc == -signal.SIGILL:
        log("llama.cpp's AMX kernels fail in this build (SIGILL): running without its fast weight layouts "
            "(scripts/install-llamacpp.sh builds a working one)")
    elif not verdict:
        log(f"llama.cpp's AMX probe ended with exit {rc}: running without its fast weight layouts this time")
    return verdict


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "giftgen"


def _widened(path: Path) -> Path:
    """``path``'s copy with its Q5_0 tensors as Q8_0 (``giftgen.backends.widen``), or ``path`` if it has none."""
    try:
        found = widened_copy(path, fingerprint(str(path)) or "", _cache_home() / "llamacpp-widened")
    except (GGUFError, OSError) as e:
        log(f"llamacpp: running {path.name} as it is; its Q5_0 tensors could not be widened to Q8_0 ({e})")
        return path
    if found is None:
        return path
    copy, count = found
    log(f"llamacpp: {path.name}'s {count} Q5_0 tensors run as Q8_0 (the same weights, in a type AMX's kernels "
        f"take): {copy}")
    return copy


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, model: str, *, threads: int = 0, n_ctx: int | None = None, parallel: int = 16,
                 extra_layouts: bool | None = None, widen: bool | None = None):
        if not is_gguf(model):
            raise ConfigError(f"the llamacpp backend runs GGUF files; {model!r} is not one",
                              hint="pass --model path/to/model.gguf, or use --backend transformers for a folder")
        path = gguf_path(model)
        if path is None:
            raise ConfigError(f"GGUF file {model!r} does not exist")
        if threads < 0:
            raise ConfigError(f"threads must be >= 0 (0: every core), got {threads}")
        if not 1 <= parallel <= MAX_PARALLEL:
            raise ConfigError(f"parallel must be between 1 and {MAX_PARALLEL}, got {parallel}")
        if n_ctx is not None and n_ctx < 2:
            raise ConfigError(f"max_model_len must be at least 2, got {n_ctx}")
        try:
            import llama_cpp
            from llama_cpp._internals import LlamaModel
        except ImportError:
            raise ConfigError("the llamacpp backend needs llama-cpp-python",
                              hint="pip install 'giftgen[llamacpp]'") from None
        # llama.cpp logs to stderr through llama-cpp-python's logger: errors only.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self._cpp = llama_cpp
        self.model = model
        self.threads = threads or len(os.sched_getaffinity(0))
        self.parallel = parallel
        self.share_prompts = True  # a prompt's samples share one read of it (off: each reads its own copy)
        self.prompt_tokens_read = 0  # prompt tokens the last generate call put through the model
        self.moves = 0  # sequences the last generate call moved down into a free slot (``_compact``)
        self.n_ctx = n_ctx or DEFAULT_CONTEXT
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0
        # llama.cpp's "extra" weight layouts (AMX's tiles, the repacked ones) are its fast matrix kernels; a build
        # whose AMX kernels die gets none (``extra_layouts`` None: found out; True or False: as told).
        self.amx = None
        if extra_layouts is None:
            self.amx = amx_kernels_work(path)
            extra_layouts = self.amx is not False
        self.extra_layouts = params.use_extra_bufts = extra_layouts
        # Q5_0 tensors, which AMX's kernels do not take, run as Q8_0 ones, the same weights (``widen`` None: where
        # AMX's kernels work)
        self.weights = path  # the file llama.cpp runs: the model's, or its widened copy
        if (self.amx if widen is None else widen) and extra_layouts:
            self.weights = _widened(path)
        try:
            self._model = LlamaModel(path_model=str(self.weights), params=params, verbose=False)
        except Exception as e:  # noqa: BLE001 - llama-cpp-python raises ValueError/RuntimeError on a bad file
            raise ConfigError(f"llama.cpp could not load {model!r}: {e}") from None
        self._vocab = self._model.vocab
        self._meta = self._model.metadata()
        self._pieces: dict[int, bytes] = {}
        self._ctx: Any = None
        self._ctx_shape = (0, 0)  # (streams, tokens per stream) of the current context
        self._batch: Any = None
        self._formatter: Any = None

    # ----------------------------------------------------------------------------------------------- public

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = check_prompts(prompts)
        if self._model is None:
            raise ConfigError("the llamacpp backend is closed")
        keys = [prompt_key(p) for p in prompts]
        occ = occurrences(keys)
        seed = sampling.seed if sampling.seed is not None else random.SystemRandom().getrandbits(62)
        copies = 1 if sampling.greedy else sampling.n
        encoded: dict[str, list[int]] = {}
        jobs = []
        for i, (prompt, key, k) in enumerate(zip(prompts, keys, occ, strict=True)):
            if key not in encoded:
                encoded[key] = self._encode(prompt, i)
            ids = encoded[key]
            limit = min(sampling.max_new_tokens, self.n_ctx - len(ids))
            jobs += [_Job((i, j), ids, derive_seed(seed, key, k, j), limit) for j in range(copies)]
        done = self._run(jobs, sampling)
        results = []
        for i in range(len(prompts)):
            mine = [done[(i, j)] for j in range(copies)]
            results.append(mine if copies == sampling.n else [replace(mine[0]) for _ in range(sampling.n)])
        return results

    def close(self) -> None:
        cpp = self._cpp
        if self._batch is not None:
            cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            cpp.llama_free(self._ctx)
            self._ctx, self._ctx_shape = None, (0, 0)
        model, self._model = self._model, None
        if model is not None:
            with contextlib.suppress(Exception):
                model.close()

    # ----------------------------------------------------------------------------------------------- prompts

    def _encode(self, prompt: Prompt, index: int) -> list[int]:
        if isinstance(prompt, str):
            # as llama-cpp-python's create_completion: the BOS if the model adds one, the text with special tokens
            bos = self._model.token_bos()
            ids = ([bos] if self._model.add_bos_token() and bos >= 0 else []) + (
                self._model.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) if prompt else [])
            if not ids:
                raise ConfigError(f"prompt {index} is empty and the model has no BOS token to start from")
        else:
            # as its chat completion: the template writes its own special tokens
            text = self._chat_formatter()(messages=prompt).prompt
            ids = self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(ids) >= self.n_ctx:
            raise ConfigError(f"prompt {index} has {len(ids)} tokens; the llamacpp context holds {self.n_ctx} "
                              "tokens a sequence, prompt and completion", hint="raise max_model_len")
        return ids

    def _chat_formatter(self) -> Any:
        if self._formatter is None:
            template = self._meta.get("tokenizer.chat_template")
            if not template:
                raise ConfigError(f"model {self.model!r} has no chat template, so it cannot take chat prompts",
                                  hint="use the base prompt style")
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token: int) -> str:
                return self._model.token_get_text(token) if token >= 0 else ""

            self._formatter = Jinja2ChatFormatter(template=template, eos_token=text(self._model.token_eos()),
                                                  bos_token=text(self._model.token_bos()))
        return self._formatter

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = self._cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
                if n >= 0:
                    break
                size = -n
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    # ----------------------------------------------------------------------------------------------- decoding

    def _context(self, streams: int, length: int) -> None:
        """A context of ``streams`` KV streams of at least ``length`` tokens each (kept while large enough)."""
        have_streams, have_length = self._ctx_shape
        if self._ctx is not None and have_streams >= streams and have_length >= length:
            return
        cpp = self._cpp
        if self._ctx is not None:
            cpp.llama_free(self._ctx)
            self._ctx = None
        streams, length = max(streams, have_streams), max(length, have_length)
        length = min(-(-length // 256) * 256, self.n_ctx)  # rounded up, so that a slightly longer call reuses it
        params = cpp.llama_context_default_params()
        params.n_ctx = streams * length
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = streams
        params.n_threads = params.n_threads_batch = self.threads
        # llama.cpp's CPU flash attention walks the cache one position at a time: off, attention is two matrix
        # products (measured 1.15x the tokens/s with AMX, the same without; samples as batch-independent)
        params.flash_attn_type = cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.kv_unified = False  # one stream per sequence: its cells in order, none shared with another
        params.no_perf = True
        ctx = cpp.llama_init_from_model(self._model.model, params)
        if not ctx:
            raise ConfigError(f"llama.cpp could not make a context of {streams} x {length} tokens",
                              hint="lower parallel or max_model_len")
        self._ctx, self._ctx_shape = ctx, (streams, length)
        if self._batch is None:
            self._batch = cpp.llama_batch_init(BATCH_TOKENS, 0, 1)

    def _sampler(self, sampling: Sampling, seed: int) -> Any:
        cpp = self._cpp
        chain = cpp.llama_sampler_chain_init(cpp.llama_sampler_chain_default_params())
        if sampling.greedy:
            cpp.llama_sampler_chain_add(chain, cpp.llama_sampler_init_greedy())
            return chain
        if sampling.temperature != 1.0:
            cpp.llama_sampler_chain_add(chain, cpp.llama_sampler_init_temp(float(sampling.temperature)))
        if sampling.top_k > 0:
            cpp.llama_sampler_chain_add(chain, cpp.llama_sampler_init_top_k(int(sampling.top_k)))
        if sampling.top_p < 1.0:
            cpp.llama_sampler_chain_add(chain, cpp.llama_sampler_init_top_p(float(sampling.top_p), 1))
        cpp.llama_sampler_chain_add(chain, cpp.llama_sampler_init_dist(seed))
        return chain

    def _run(self, jobs: list[_Job], sampling: Sampling) -> dict[tuple[int, int], Completion]:
        """Decode every job, up to ``parallel`` at a time, and return each one's completion by its place.

        The jobs of one prompt (same token list) form a group whose prompt is read once, by the first of them to
        get a slot: when that read ends, every other job of the group draws its first token from the same
        logits with its own sampler, and the ones in a slot get a copy of the reader's KV stream. A job that
        gets a slot later copies the prompt's cells from any live sequence of its group (its own generated cells
        dropped), or, when none is left, reads the prompt again with its first token already drawn."""
        cpp = self._cpp
        done: dict[tuple[int, int], Completion] = {}
        self.prompt_tokens_read = self.moves = 0
        if not jobs:
            return done
        streams = min(self.parallel, len(jobs))
        self._context(streams, max(len(j.ids) + j.limit for j in jobs))
        ctx, batch = self._ctx, self._batch
        memory = cpp.llama_get_memory(ctx)
        cpp.llama_memory_clear(memory, True)
        groups: dict[int, _Group] = {}
        for job in jobs:
            key = id(job.ids) if self.share_prompts else id(job)
            group = groups.setdefault(key, _Group([], set()))
            group.jobs.append(job)
            group.unstarted.add(job.where)
        group_of = {job.where: group for group in groups.values() for job in group.jobs}
        waiting = deque(jobs)
        slots: list[_Seq | None] = [None] * streams
        stops = list(sampling.stop)

        def finish(s: int, completion: Completion) -> None:
            seq = slots[s]
            assert seq is not None
            done[seq.job.where] = completion
            cpp.llama_sampler_free(seq.sampler)
            cpp.llama_memory_seq_rm(memory, s, -1, -1)
            slots[s] = None

        try:
            while waiting or any(slots):
                for s in range(streams):
                    while slots[s] is None and waiting:
                        job = waiting.popleft()
                        group = group_of[job.where]
                        group.unstarted.discard(job.where)
                        if job.where in done:  # finished at its first token, drawn when its prompt was read
                            continue
                        slots[s] = self._start(s, job, group, slots, sampling, memory)
                if not waiting:
                    self._compact(slots, memory)
                # the batch, in slot order: each decoding sequence's last token, and prompt chunks in the room
                # the decoding ones leave (llama.cpp splits a batch of several streams into sub-batches of
                # consecutive sequence ids: in this order a step is one sub-batch, and a prompt's rest another)
                room = BATCH_TOKENS - sum(seq is not None and seq.decoding for seq in slots)
                n, rows = 0, []
                for s, seq in enumerate(slots):
                    if seq is None or seq.waiting:
                        continue
                    ids = seq.job.ids
                    if seq.decoding:
                        n = self._put(batch, n, seq.tokens[-1], len(ids) + len(seq.tokens) - 1, s, True)
                        rows.append((n - 1, s))
                        continue
                    end = min(len(ids), seq.fed + room)
                    last = end == len(ids) and not seq.tokens  # a re-read prompt's first token is drawn already
                    for pos in range(seq.fed, end):
                        n = self._put(batch, n, ids[pos], pos, s, last and pos == end - 1)
                    room -= end - seq.fed
                    self.prompt_tokens_read += end - seq.fed
                    seq.fed = end
                    if last:
                        rows.append((n - 1, s))
                batch.n_tokens = n
                rc = cpp.llama_decode(ctx, batch)
                if rc != 0:
                    raise RuntimeError(f"llama_decode failed ({rc})")
                for row, s in rows:
                    seq = slots[s]
                    assert seq is not None
                    group = group_of[seq.job.where]
                    if not group.read and group.reader == s:
                        self._share(s, row, group, slots, sampling, stops, memory, done, finish)
                    token = cpp.llama_sampler_sample(seq.sampler, ctx, row)
                    finished = self._step(seq, token, stops)
                    if finished is not None:
                        finish(s, finished)
        finally:
            for seq in slots:
                if seq is not None:
                    cpp.llama_sampler_free(seq.sampler)
            for group in groups.values():
                for seq in group.first.values():
                    cpp.llama_sampler_free(seq.sampler)
        return done

    def _compact(self, slots: list[_Seq | None], memory: Any) -> None:
        """Decoding sequences moved down into the free slots below them, their KV streams copied, so that the busy
        slots stay consecutive once no job waits for one: llama.cpp decodes a batch of several streams in one
        sub-batch per run of consecutive sequence ids, each a pass over the weights (SmolLM2 at 8 sequences:
        every other slot 2.7x the time of slots 0-7). A sequence reading its prompt, or waiting for another to
        read it, stays where it is. What a sample is does not change: its stream moves whole."""
        cpp = self._cpp
        top = len(slots) - 1
        for s in range(len(slots)):
            if slots[s] is not None:
                continue
            while top > s and not (slots[top] is not None and slots[top].decoding):
                top -= 1
            if top <= s:
                return
            cpp.llama_memory_seq_cp(memory, top, s, -1, -1)  # the whole stream; done at the next decode
            cpp.llama_memory_seq_rm(memory, top, -1, -1)
            slots[s], slots[top] = slots[top], None
            self.moves += 1

    def _start(self, s: int, job: _Job, group: _Group, slots: list[_Seq | None], sampling: Sampling,
               memory: Any) -> _Seq:
        """``job`` taken into slot ``s``: it reads its group's prompt, waits for the slot reading it, or starts
        from a copy of the prompt's cells (its first token drawn when the prompt was read)."""
        seq = group.first.pop(job.where, None)
        if seq is None:
            seq = _Seq(job, self._sampler(sampling, job.seed))
            if group.reader is None:
                group.reader = s
            else:
                seq.waiting = True
            return seq
        length = len(job.ids)
        holder = next((h for h, other in enumerate(slots) if other is not None and other.job.ids is job.ids
                       and other.decoding and other.tokens), None)
        if holder is not None:
            self._cpp.llama_memory_seq_cp(memory, holder, s, -1, -1)  # the whole stream; done at the next decode
            self._cpp.llama_memory_seq_rm(memory, s, length, -1)  # the holder's generated cells dropped
            seq.fed = length
        return seq  # else it reads the prompt again (fed 0), its first token drawn already

    def _share(self, s: int, row: int, group: _Group, slots: list[_Seq | None], sampling: Sampling,
               stops: list[str], memory: Any, done: dict[tuple[int, int], Completion], finish: Any) -> None:
        """Slot ``s`` has read its group's prompt: each other job of the group draws its first token from the
        same ``row`` of logits with its own sampler; those waiting in a slot get a copy of the stream."""
        cpp = self._cpp
        group.read = True
        for job in group.jobs:
            if job.where in group.unstarted:
                seq = _Seq(job, self._sampler(sampling, job.seed))
                finished = self._step(seq, cpp.llama_sampler_sample(seq.sampler, self._ctx, row), stops)
                if finished is not None:
                    done[job.where] = finished
                    cpp.llama_sampler_free(seq.sampler)
                else:
                    group.first[job.where] = seq
        for f, seq in enumerate(slots):
            if seq is not None and seq.waiting and seq.job.ids is group.jobs[0].ids:
                cpp.llama_memory_seq_cp(memory, s, f, -1, -1)
                seq.waiting, seq.fed = False, len(seq.job.ids)
                finished = self._step(seq, cpp.llama_sampler_sample(seq.sampler, self._ctx, row), stops)
                if finished is not None:
                    finish(f, finished)

    @staticmethod
    def _put(batch: Any, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _step(self, seq: _Seq, token: int, stops: list[str]) -> Completion | None:
        """Take ``token`` into ``seq``; its completion if that finished it, else None."""
        seq.tokens.append(token)
        if self._cpp.llama_vocab_is_eog(self._vocab, token):
            return Completion(seq.raw.decode("utf-8", errors="ignore"), len(seq.tokens), "stop")
        seq.raw += self._piece(token)
        if stops:
            text = seq.raw.decode("utf-8", errors="ignore")
            longest = max(map(len, stops))
            cut, found = cut_at_stop(text[max(0, seq.searched - longest + 1):], stops)
            if found:
                return Completion(text[:max(0, seq.searched - longest + 1)] + cut, len(seq.tokens), "stop")
            seq.searched = len(text)
        if len(seq.tokens) >= seq.job.limit:
            text = seq.raw.decode("utf-8", errors="ignore")
            return Completion(text, len(seq.tokens), "length")
        return None
