"""The `giftgen` command line: thin Click commands over the library's stage functions.

Each command parses its settings (a config dataclass, see ``giftgen.config``), reads rows, calls one library
function and writes rows. Records go to stdout, everything else to stderr. Errors meet one boundary
(``GiftgenGroup.invoke``): a one-line message, exit code 2 for bad input or settings, no traceback unless
``--debug`` or ``GIFTGEN_DEBUG=1``. Nothing heavy (torch, transformers, datasets, trl, peft, vllm) is imported
until a command needs it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from typing import Any

import click
from click.core import ParameterSource

from giftgen.backends import load_backend
from giftgen.chain import ChainConfig, chain_into, check_problems, summary_exemplars
from giftgen.config import click_options, dump_yaml, from_click, load_recipe
from giftgen.errors import ConfigError, GiftgenError, InputError
from giftgen.evaluate import EvalConfig, check_complete, evaluate_into, print_summary
from giftgen.finetune import FinetuneConfig
from giftgen.finetune import finetune as run_finetune
from giftgen.merge import merge_shards
from giftgen.miniature import (
    GridConfig,
    PretrainConfig,
    grid_cell,
    is_grid,
    is_grid_recipe,
    load_grid_recipe,
    run_grid,
    train_base_model,
    write_grid_report,
    write_lab_report,
)
from giftgen.progress import Progress, log
from giftgen.publish import command_card, push_model
from giftgen.records import (
    PipeClosed,
    RowWriter,
    Shard,
    parse_shard,
    partial_path,
    read_rows,
    records_stream,
    reset_records_stream,
    shard_filter,
)
from giftgen.report import ReportConfig, report_dir, write_report
from giftgen.run import RunConfig, RunRecipe, read_run_recipe, resolve_run_recipe, run_rounds
from giftgen.score import ScoreConfig, score_rows
from giftgen.seeds import SOURCES, SeedsConfig, load_seeds
from giftgen.selection import SelectConfig, select_rows
from giftgen.verify import VerifyConfig, verify_into
from giftgen.versions import __version__


class GiftgenGroup(click.Group):
    """A Click group whose ``invoke`` is the error boundary of every command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_group_options(args))

    def invoke(self, ctx: click.Context) -> Any:
        restore = _terminate_cleanly()
        try:
            return super().invoke(ctx)
        except Terminated as e:
            click.echo("Terminated.", err=True)
            ctx.exit(128 + e.signum)
        except PipeClosed:
            _quiet_stdout()
            ctx.exit(0)
        except GiftgenError as e:
            if ctx.params.get("debug") or os.environ.get("GIFTGEN_DEBUG"):
                raise
            click.echo(f"Error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        finally:
            for sig, handler in restore.items():
                signal.signal(sig, handler)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwound like Ctrl-C, so outputs are finished or removed as on any failure (a
    ``-o`` file's partial is removed, a chain's is kept to resume from), then the exit status is 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate_cleanly() -> dict[int, Any]:
    """Turn SIGTERM and SIGHUP into ``Terminated`` where they would kill the process outright (their default);
    the handlers to put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    restore = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            restore[sig] = signal.signal(sig, _raise_terminated)
    return restore


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def hoist_group_options(args: list[str]) -> list[str]:
    """Move ``--debug`` and ``--recipe FILE`` given after the subcommand to the front, where the group reads them:
    ``giftgen chain ... --debug`` works as the error messages suggest. Nothing after ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--debug" or arg.startswith("--recipe="):
            front.append(arg)
        elif arg == "--recipe" and i + 1 < len(args):
            front.extend(args[i:i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _quiet_stdout() -> None:
    # The reader went away: point the record stream at /dev/null so interpreter shutdown flushes quietly.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, records_stream().fileno())
    except (OSError, ValueError, AttributeError):
        pass


@click.group(cls=GiftgenGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="giftgen")
@click.option("--recipe", type=click.Path(dir_okay=False), envvar="GIFTGEN_RECIPE", show_envvar=True,
              help="YAML recipe: each command takes its defaults from its section; flags override.")
@click.option("--debug", is_flag=True, help="Show tracebacks (also: GIFTGEN_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, recipe: str | None, debug: bool) -> None:
    """giftgen: GiFT (Gibbs Fine-Tuning) for code LLMs.

    Stages read and write Hugging Face datasets (JSONL on stdin/stdout by default) and compose with pipes:

    \b
        giftgen seeds mbpp --path mbpp-sanitized.json > seeds.jsonl
        giftgen chain seeds.jsonl --model deepseek-ai/deepseek-coder-6.7b-base -o chain.jsonl
        giftgen verify chain.jsonl --keep passed | giftgen score - --model M | giftgen select - -o sft.jsonl
        giftgen finetune sft.jsonl --model M --output-dir out/round-1
    """
    reset_records_stream()
    ctx.obj = {"recipe": load_recipe(recipe) if recipe else {}}


# --------------------------------------------------------------------------------------------------- shared options


def io_options(fn: Callable, split: bool = True) -> Callable:
    """-o/--output, --push-to-hub, --split: the same for every command that writes rows."""
    if split:
        fn = click.option("--split", default=None, help="Split of a Hub dataset or a saved DatasetDict to read.")(fn)
    fn = click.option("--push-to-hub", metavar="ORG/NAME", default=None,
                      help="Also push the rows to this Hub dataset (token: HF_TOKEN or `hf auth login`).")(fn)
    fn = click.option("-o", "--output", default=None, metavar="PATH",
                      help="Write rows to PATH: .jsonl, .jsonl.gz, .parquet, or a directory (save_to_disk). "
                           "Default: JSONL on stdout.")(fn)
    return fn


class ShardParam(click.ParamType):
    """``I/N`` read once, at the command line, into a ``Shard``; a bad one is a usage error (exit 2)."""

    name = "shard"

    def convert(self, value: Any, param: Any, ctx: Any) -> Shard:
        try:
            return parse_shard(value)
        except InputError as e:
            self.fail(str(e), param, ctx)


def shard_option(fn: Callable) -> Callable:
    """--shard I/N: process only the problems of shard I of N (`giftgen merge` joins the N outputs)."""
    return click.option("--shard", type=ShardParam(), default=None, metavar="I/N",
                        help="Process only shard I of N (0 <= I < N), split by problem_id; join the N outputs "
                             "with `giftgen merge`.")(fn)


def config_options(cls: type) -> Callable[[Callable], Callable]:
    def decorate(fn: Callable) -> Callable:
        fn = click_options(cls)(fn)
        return click.option("--print-config", is_flag=True,
                            help="Print the resolved settings as a recipe section and exit.")(fn)

    return decorate


def given_flags(ctx: click.Context, cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``cls`` given on the command line (or by their environment variables), as recipe values."""
    names = {f.name for f in fields(cls)}
    return {name: (list(value) if isinstance(value, tuple) else value) for name, value in params.items()
            if name in names
            and ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}


def resolve_config(ctx: click.Context, cls: type, params: dict[str, Any]) -> Any:
    """The command's settings, or print them and exit when --print-config was given."""
    config = from_click(cls, ctx, params)
    if params.get("print_config"):
        stream = records_stream()
        stream.write(dump_yaml(cls.command, config).encode())
        stream.flush()
        ctx.exit(0)
    return config


def write_rows(rows: Any, output: str | None, push_to_hub: str | None, stage: str | None = None,
               config: Any = None) -> int:
    """Write ``rows``; with --push-to-hub, push them as the stage's config with the dataset card (giftgen.publish).

    ``stage`` defaults to the running command's name; ``config`` (the command's settings) goes on the card.
    """
    card, config_name = None, "default"
    if push_to_hub:
        ctx = click.get_current_context(silent=True)
        recipe = ((ctx.obj or {}).get("recipe") or None) if ctx else None
        card, config_name = command_card(push_to_hub, stage or (ctx.info_name if ctx else "convert"), config, recipe)
    with RowWriter(output, push_to_hub, card=card, config_name=config_name) as writer:
        writer.write_many(rows)
    return writer.count


def read_input(input: str, split: str | None, *, empty: str = "warn") -> Any:
    """``read_rows(input, split)``, loud when the input holds no rows: a warning on stderr (``empty="warn"``, for
    stages where an empty shard is normal) or an ``InputError`` once the rows run out (``empty="fail"``)."""
    command = click.get_current_context().info_name
    count = 0
    for row in read_rows(input, split):
        count += 1
        yield row
    if count:
        return
    where = "stdin" if input == "-" else input
    if empty == "fail":
        raise InputError(f"`giftgen {command}`: {where} holds no rows",
                         hint="check that the command that wrote it finished without an error")
    log(f"Warning: `giftgen {command}`: {where} holds no rows; the output is empty too")


def mark_shard(rows: Any, shard: Shard | None) -> Any:
    """With --shard I/N, add ``shard: "I/N"`` to each row: `giftgen merge` then knows there are N shards (and drops
    the column), so one of two shard files is refused instead of merged as the whole."""
    if shard is None:
        return rows

    i, n = parse_shard(shard)
    return ({**row, "shard": f"{i}/{n}"} for row in rows)


# --------------------------------------------------------------------------------------------------- commands


@main.command()
@click.argument("source", type=click.Choice(list(SOURCES)), metavar="SOURCE")
@lambda fn: io_options(fn, split=False)
@config_options(SeedsConfig)
@click.pass_context
def seeds(ctx: click.Context, source: str, output: str | None, push_to_hub: str | None, **params: Any) -> None:
    """Write the seed problems of SOURCE in giftgen's seed schema.

    SOURCE is one of: mbpp, mbppplus, humaneval, apps, codeinsight, generic, toy. Without --path the benchmark
    loads from the Hugging Face Hub; with --path, from a local file in the benchmark's published format
    (codeinsight: the GiFT release's folder; toy: generated, from the built-in toy domain or a domain YAML).

    \b
        giftgen seeds mbpp --path mbpp-sanitized.json --split train > seeds.jsonl
        giftgen seeds humaneval --path HumanEval.jsonl.gz -o humaneval.parquet
        giftgen seeds generic --path my_problems.jsonl | giftgen chain - --model M
    """
    config = resolve_config(ctx, SeedsConfig, params)
    from itertools import islice

    rows = load_seeds(source, config.path, config.split, config.stdio_compare, config.raw_columns)
    if config.limit is not None:
        rows = islice(rows, config.limit)
    with Progress("seeds", quiet=True) as progress:
        write_rows(progress.track(rows), output, push_to_hub, config=config)


@main.command()
@click.argument("input", metavar="INPUT")
@io_options
@click.option("--limit", type=int, default=None, help="Copy only the first N rows.")
def convert(input: str, output: str | None, push_to_hub: str | None, split: str | None, limit: int | None) -> None:
    """Copy a dataset from one form to another, with the same code every stage uses.

    INPUT is - (JSONL on stdin), a .jsonl/.jsonl.gz/.json/.parquet file, a save_to_disk directory or a Hub
    dataset id (with --split).

    \b
        giftgen convert chain.jsonl -o chain.parquet
        giftgen convert chain.jsonl --push-to-hub me/gift-mbpp-chain
        giftgen convert me/gift-mbpp-chain --split train -o chain-dir
    """
    from itertools import islice

    rows = read_input(input, split)
    if limit is not None:
        rows = islice(rows, limit)
    write_rows(rows, output, push_to_hub)


def _stage_command(name: str, cls: type, summary: str) -> Callable[[Callable], Callable]:
    """The shared decoration of a row-in, row-out stage: INPUT, I/O options and the config's options."""

    def decorate(fn: Callable) -> Callable:
        fn = click.pass_context(fn)
        fn = config_options(cls)(fn)
        fn = io_options(fn)
        fn = click.argument("input", metavar="INPUT")(fn)
        return main.command(name, short_help=summary)(fn)

    return decorate


@_stage_command("chain", ChainConfig, "Run the Gibbs chain (or RFT / RFT+RD) over seed problems.")
@shard_option
def chain(ctx: click.Context, input: str, output: str | None, push_to_hub: str | None, split: str | None,
          shard: Shard | None, **params: Any) -> None:
    """Run the Gibbs chain of GiFT over seed problems and write one row per sampled code.

    Each step samples -n codes per problem, verifies them in the sandbox (chain_passed), keeps one passing code
    and summarises it into the next description. --mode rft samples from the seed description only; --mode
    rewrite paraphrases it first (RFT+RD). The chain model may be any model (a teacher for distillation). With
    -o FILE.jsonl, rows go to FILE.jsonl.partial until the chain ends, and a killed run started again continues
    that partial where it stopped (--no-resume starts over).

    \b
        giftgen chain seeds.jsonl --model deepseek-ai/deepseek-coder-6.7b-base -o chain.jsonl
        giftgen chain seeds.jsonl --model M --mode rft --steps 20 -n 3 -o rft.jsonl
        giftgen chain seeds.jsonl --model teacher --backend openai --base-url http://127.0.0.1:8000/v1 -o c.jsonl
    """
    config = resolve_config(ctx, ChainConfig, params)
    seeds = check_problems(read_input(input, split))
    problems = list(shard_filter(seeds, shard, "chain"))  # exemplars: from all seeds, as unsharded
    backend = None
    if config.model is None and config.backend == "openai" and problems:
        backend = load_backend(config)  # asks the server which model it serves: rows and resume record it
        config = replace(config, model=backend.model)
    if config.model is None:
        raise ConfigError("`giftgen chain` needs a model", hint="give --model (a Hub id or a local folder)")
    resumable = bool(output) and output.endswith(".jsonl")
    resume_from = None
    if resumable and config.resume:
        # a killed run left OUTPUT.partial; a finished one, OUTPUT (extended by a larger --steps)
        resume_from = partial_path(output) if partial_path(output).exists() else output

    def write(rows: Any, append: bool) -> None:
        if resumable:
            with RowWriter(output, append=append, resumable=True) as writer:
                writer.write_many(mark_shard(rows, shard))
        else:
            write_rows(mark_shard(rows, shard), output, push_to_hub, stage="chain", config=config)

    try:
        chain_into(problems, config, write, resume_from=resume_from, backend=backend,
                   exemplars=summary_exemplars(config, seeds))
    finally:
        if backend is not None:  # the chain closes only the backends it loads
            backend.close()
    if resumable and push_to_hub:
        # pushed once the file is complete, so a resumed run pushes every row, not only this process's
        write_rows(read_rows(output), None, push_to_hub, stage="chain", config=config)


@_stage_command("verify", VerifyConfig, "Run each row's code against its tests in the sandbox.")
@shard_option
def verify(ctx: click.Context, input: str, output: str | None, push_to_hub: str | None, split: str | None,
           shard: Shard | None, **params: Any) -> None:
    """Run each row's `code` against its problem's tests in the sandbox and add the verdict.

    Rows need the seed columns (`giftgen seeds`) and `code`; they come out in input order with `status` (pass,
    wrong_answer, runtime_error, timeout, memory_limit, output_limit, syntax_error, sandbox_error), `passed`,
    `test_results`, `error` and `duration`. Every program runs in its own locked-down process (own uid and pid
    namespace, no network, Landlock, seccomp); a machine missing a protection is refused. Programs that met a
    sandbox error even after retries make the command fail once every row is written.

    \b
        giftgen verify chain.jsonl --keep passed -o verified.jsonl
        giftgen chain seeds.jsonl --model M | giftgen verify - | giftgen score - --model M
        giftgen verify apps-chain.jsonl --max-tests 10 --timeout 4 --workers 16
    """
    config = resolve_config(ctx, VerifyConfig, params)
    rows = shard_filter(read_input(input, split), shard, "verify")
    verify_into(rows, config, lambda verified: write_rows(mark_shard(verified, shard), output, push_to_hub,
                                                                 config=config))


@_stage_command("score", ScoreConfig, "Add the perplexity of each code under a model.")
@shard_option
def score(ctx: click.Context, input: str, output: str | None, push_to_hub: str | None, split: str | None,
          shard: Shard | None, **params: Any) -> None:
    """Add the perplexity of each row's code under a model (the student, in distillation).

    PPL = exp(mean NLL over the code's tokens plus EOS), conditioned on the description that generated the code
    (--condition seed: on the seed description). Rows that did not pass are written unscored (null) unless --all.

    \b
        giftgen score verified.jsonl --model deepseek-ai/deepseek-coder-6.7b-base -o scored.jsonl
        giftgen score verified.jsonl --model M --backend vllm --batch-size 256
        giftgen score verified.jsonl --model M --backend openai --base-url http://127.0.0.1:8000/v1
    """
    config = resolve_config(ctx, ScoreConfig, params)

    with Progress("score", unit="codes scored") as progress:
        rows = shard_filter(read_input(input, split), shard, "score")
        write_rows(mark_shard(score_rows(rows, config, progress=progress), shard), output, push_to_hub, config=config)


@_stage_command("select", SelectConfig, "Draw K codes per problem, weighted by perplexity.")
def select(ctx: click.Context, input: str, output: str | None, push_to_hub: str | None, split: str | None,
           **params: Any) -> None:
    """Draw K codes per problem with weights softmax(T * PPL) and write TRL prompt-completion rows.

    Every code is paired with its problem's seed description; each problem's seed pair (reference solution)
    is included too unless --no-include-reference. -T 0 draws uniformly (the RFT baseline).

    \b
        giftgen select scored.jsonl -T 2 -k 8 -o sft.jsonl
        giftgen select scored.jsonl --seeds seeds.jsonl --no-replacement --dedup -o sft.jsonl
        giftgen select verified.jsonl -T 0 -o rft.jsonl
    """
    config = resolve_config(ctx, SelectConfig, params)

    seeds = read_rows(config.seeds) if config.seeds else None
    write_rows(select_rows(read_input(input, split, empty="fail"), config, seeds), output, push_to_hub, config=config)


@main.command("finetune", short_help="Fine-tune a model on selected rows with TRL.")
@click.argument("input", metavar="INPUT")
@click.option("--split", default=None, help="Split of a Hub dataset or a saved DatasetDict to read.")
@click.option("--push-to-hub", metavar="ORG/NAME", default=None,
              help="Also upload the model folder to this Hub model repo (token: HF_TOKEN or `hf auth login`).")
@config_options(FinetuneConfig)
@click.pass_context
def finetune(ctx: click.Context, input: str, push_to_hub: str | None, split: str | None, **params: Any) -> None:
    """Fine-tune a model (full or LoRA) on prompt-completion rows with TRL's SFTTrainer.

    Saves the model, tokenizer and a model card to --output-dir (-o) and writes a one-line JSON summary to stdout.
    On several GPUs, launch it with accelerate (the global batch is split over the processes):

    \b
        giftgen finetune sft.jsonl --model deepseek-ai/deepseek-coder-6.7b-base -o out/round-1
        giftgen finetune sft.jsonl --model M --lora --merge-lora -o out/round-1-lora
        accelerate launch -m giftgen.cli finetune sft.jsonl --model M -o out/round-1
    """
    config = resolve_config(ctx, FinetuneConfig, params)
    import json
    from dataclasses import asdict

    stream = records_stream()  # from here on, library prints land on stderr
    result = run_finetune(config, read_input(input, split, empty="fail"), dataset_name=input)
    if push_to_hub:
        push_model(result.output_dir, push_to_hub)
    summary = {k: v for k, v in asdict(result).items() if k != "losses"}
    stream.write(json.dumps(summary).encode() + b"\n")
    stream.flush()


@_stage_command("eval", EvalConfig, "Measure pass@1 / pass@k of a model on seed rows.")
@click.option("--summary", "summary_path", default=None, metavar="FILE.json",
              help="Also write the summary (pass@k, verdict counts, model, settings) as JSON to FILE.json.")
def evaluate(ctx: click.Context, input: str, output: str | None, push_to_hub: str | None, split: str | None,
             summary_path: str | None, **params: Any) -> None:
    """Measure greedy pass@1 (and sampled pass@k) of a model on seed rows, through the sandbox.

    Each problem is prompted exactly as in training (its seed description, --prompt-style), codes are extracted
    as in `chain` and run against the problem's tests. Writes one row per problem (samples, verdicts, n_correct,
    pass@k) and prints a summary table on stderr.

    \b
        giftgen eval mbppplus.jsonl --model out/round-1 -o results.jsonl --summary summary.json
        giftgen eval humaneval.jsonl --model M --backend vllm -n 20 --temperature 0.8 --k 1,10
        giftgen eval apps-test.jsonl --model M --max-tests 10 -o results.parquet
    """
    config = resolve_config(ctx, EvalConfig, params)
    import json

    def write(rows: Any) -> None:
        write_rows(rows, output, push_to_hub, stage="eval", config=config)

    with Progress("eval", unit="problems") as progress:
        summary = evaluate_into(read_input(input, split, empty="fail"), config, write, progress=progress,
                                input=input)
    print_summary(summary)
    if summary_path:
        from pathlib import Path

        path = Path(summary_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    check_complete(summary)  # the rows and the summary are written; the exit status says pass@k is partial


@main.command("merge", short_help="Join the outputs of a stage run with --shard I/N.")
@click.argument("inputs", nargs=-1, required=True, metavar="SHARD...")
@io_options
@click.option("--order", "order_path", default=None, metavar="FILE",
              help="Restore the problem order of FILE (e.g. the seeds the shards were cut from); default: shard "
                   "order.")
@click.option("--shards", type=int, default=None, help="How many shards there are (default: one per input).")
def merge(inputs: tuple[str, ...], output: str | None, push_to_hub: str | None, split: str | None,
          order_path: str | None, shards: int | None) -> None:
    """Join the outputs of `chain`, `verify` or `score` run on N shards (--shard 0/N ... N-1/N) into one.

    The inputs must be exactly the N shards (an empty file for an empty shard): a missing, repeated or foreign
    shard is an error. Rows come out step by step, problems in --order FILE's order (with the seeds the shards
    were cut from, the result equals an unsharded run's) or in shard order.

    \b
        giftgen chain seeds.jsonl --model M --shard 0/2 -o chain-0.jsonl   # on machine 0
        giftgen chain seeds.jsonl --model M --shard 1/2 -o chain-1.jsonl   # on machine 1
        giftgen merge chain-0.jsonl chain-1.jsonl --order seeds.jsonl -o chain.jsonl
    """
    order = read_rows(order_path) if order_path else None
    write_rows(merge_shards(list(inputs), shards=shards, order=order, split=split), output, push_to_hub,
               stage="merge")


def load_plan(recipe_path: str, overrides: Sequence[str] = (), run_flags: Mapping[str, Any] | None = None,
              grid_flags: Mapping[str, Any] | None = None) -> RunRecipe:
    """The plan of `giftgen run RECIPE`: a grid (``giftgen.miniature``) when the recipe has a ``grid`` or
    ``pretrain`` section or a grid flag is given, else a plain run. Run it with ``run_plan``."""
    recipe = read_run_recipe(recipe_path, overrides)
    if is_grid_recipe(recipe, grid_flags):
        return load_grid_recipe(recipe, run_flags, grid_flags, where=recipe_path)
    return resolve_run_recipe(recipe, run_flags, where=recipe_path)


def run_plan(plan: RunRecipe) -> dict[str, Any]:
    """Run a plan from ``load_plan``: the grid's cells, or the rounds of one run."""
    return run_grid(plan) if "grid" in plan.extras else run_rounds(plan)


@main.command("run", short_help="Self-training rounds from a recipe: chain, verify, score, select, finetune, eval.")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one recipe setting (the value is read as YAML); repeatable. E.g. --set chain.steps=3.")
@config_options(RunConfig)
@click_options(GridConfig)
@click.pass_context
def run(ctx: click.Context, recipe_path: str, overrides: tuple[str, ...], **params: Any) -> None:
    """Run R self-training rounds of GiFT from RECIPE into a run directory; rerun the command to resume.

    Each round: chain (with the previous round's model, or run.teacher), verify, score, select, finetune (from
    the base model, or the previous round's with --policy continue), eval. Finished stages are skipped on a
    rerun; a killed chain continues from its rows. A table of each round (problems solved, codes kept, selected
    rows, pass@1) goes to stderr and RUN_DIR/summary.json; the summary is also printed to stdout as JSON.

    \b
        giftgen run recipes/quickstart.yaml
        giftgen run recipes/gift-mbppplus.yaml --run-dir runs/gift --rounds 3
        giftgen run recipes/quickstart.yaml --model ./my-model --set chain.steps=2 --set eval.max_new_tokens=256
    """
    if (ctx.obj or {}).get("recipe"):
        raise ConfigError("give the recipe once: `giftgen run RECIPE` (not --recipe)")
    plan = load_plan(recipe_path, overrides, given_flags(ctx, RunConfig, params), given_flags(ctx, GridConfig, params))
    stream = records_stream()
    if params.get("print_config"):
        sections = [("run", plan.run), *plan.stages.items(), *plan.extras.items()]
        stream.write("".join(dump_yaml(name, cfg) for name, cfg in sections).encode())
        stream.flush()
        return
    summary = run_plan(plan)
    stream.write(json.dumps(summary).encode() + b"\n")
    stream.flush()


@main.command("pretrain", short_help="Train the miniature's tiny base model from scratch on the toy corpus.")
@config_options(PretrainConfig)
@click.pass_context
def pretrain(ctx: click.Context, **params: Any) -> None:
    """Train a tiny Llama (and its tokenizer) from scratch on the toy domain's corpus, on CPU; cached.

    The folder loads with transformers' Auto classes, so every stage takes it as --model. Rerunning with the
    same settings (and toy domain) returns at once. Writes a one-line JSON summary to stdout.

    \b
        giftgen pretrain -o models/toy-base
        giftgen seeds toy --split test3 | giftgen eval - --model models/toy-base
        giftgen pretrain -o models/toy-small --steps 200 --domain my-toy.yaml
    """
    config = resolve_config(ctx, PretrainConfig, params)
    stream = records_stream()  # from here on, library prints land on stderr
    result = train_base_model(config)
    summary = {k: v for k, v in asdict(result).items() if k != "losses"}
    stream.write(json.dumps(summary).encode() + b"\n")
    stream.flush()


@main.command("report", short_help="Summarise run directories: markdown and PNG plots.")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...")
@config_options(ReportConfig)
@click.pass_context
def report(ctx: click.Context, run_dirs: tuple[str, ...], **params: Any) -> None:
    """Summarise one or more `giftgen run` directories: writes report.md and PNG plots, prints the markdown.

    pass@1 per round (one line per run, so GiFT, RFT and RFT+RD share a chart), the chain's pass rate per
    step, the perplexity distribution of the kept codes and their diversity (distinct normalised ASTs and
    pairwise token n-gram distance). Stages a run has not reached are left out. A grid's folder gets the grid's
    report; a grid's cell (GRID/<arm>/seed-<s>) shows the grid's shared base evaluation as its round 0.

    \b
        giftgen report runs/gift-mbpp
        giftgen report runs/gift-mbpp runs/rft-mbpp runs/rftrd-mbpp -o reports/mbpp
        giftgen report runs/a runs/b --label "GiFT T=2" --label "GiFT T=0"
    """
    config = resolve_config(ctx, ReportConfig, params)
    if len(run_dirs) > 1 and not config.label and all(is_grid(d) for d in run_dirs):
        # the laboratory: one grid per domain setting, compared on GiFT's margin over RFT
        out_dir = report_dir(list(run_dirs), config)
        markdown, plots = write_lab_report(run_dirs, out_dir), []
        path = out_dir / "lab.md"
    elif len(run_dirs) == 1 and not config.label and is_grid(run_dirs[0]):
        # the miniature's arms x seeds: one table and bar charts over seeds
        out_dir = report_dir(list(run_dirs), config)
        markdown, plots = write_grid_report(run_dirs[0], out_dir)
        path = out_dir / "report.md"
    else:
        # a grid's cell: labelled by its arm, its round 0 the grid's shared evaluation of the base model
        cells = [grid_cell(d) for d in run_dirs]
        result = write_report(list(run_dirs), config, bases=[c.base if c else None for c in cells],
                              default_labels=[c.label if c else None for c in cells])
        markdown, plots, path = result.markdown, result.plots, result.path
    log(f"report: wrote {path}" + (f" and {len(plots)} plots" if plots else ""))
    stream = records_stream()
    stream.write(markdown.encode())
    stream.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
