"""Publishing to the Hugging Face Hub: a run's rows as one dataset repo with an honest card, and its models.

Layout of a run's dataset repo (one repo per run)::

    README.md                      the card (giftgen.card): every config and split, statistics, licenses, citations
    giftgen.json                   the card's numbers, machine-readable: one entry per config/split (not written
                                   for a lone `convert` push, whose card describes it alone)
    recipe.yaml                    the resolved recipe of the run
    plots/ppl_<split>.png          perplexity histogram of the kept codes of that round
    <config>/<split>-*.parquet     the rows (datasets' own layout)

**Config = stage, split = round.** Each stage's rows are the config named after it (``seeds``, ``chain``,
``verify``, ``score``, ``select``, ``eval``; any other command pushes ``default``); each round is a split,
``round_N`` (``round_0``: the base model's evaluation; ``train``: rows pushed by a stage command outside a run;
the seed sets of a run are ``seeds``/``train`` and ``seeds``/``eval``). A split rather than a ``round-N`` config
or revision: a config per (stage, round) would split one table across many configs with the same schema, and a
branch or tag per round cannot hold the rounds side by side for comparison; the Hub's split names cannot contain
``-``, hence ``round_1``. Every push is one commit (rows, then card, plots, ``giftgen.json`` and recipe in a
second commit whose sha is returned): that sha pins exactly the data a model was trained on.

``publish_stage`` pushes one stage's output; ``publish_run`` pushes a whole run directory (``giftgen run``'s
layout) after the fact, finished stages only, and optionally its models. ``giftgen run`` publishes as it goes by
calling, after each finished stage of round r::

    revision = publish_stage(round_dir / "select.jsonl", repo_id, "select", r,
                             CardInfo(recipe=plan.as_dict(), settings=to_dict(config)))

and, after finetune, ``push_model(round_dir / "model", model_repo, dataset=repo_id, dataset_revision=revision,
dataset_config="select", dataset_split=split_for(r))`` with the revision of that round's ``select`` push.
The token is the user's (``HF_TOKEN`` or ``hf auth login``); giftgen never reads, prints or stores it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from giftgen.card import (
    RECIPE_FILE,
    STATS_FILE,
    CardInfo,
    link_dataset,
    make_entry,
    merge_entry,
    merge_metadata,
    recorded_command,
    render_card,
)
from giftgen.config import SandboxSettings, to_dict
from giftgen.errors import GiftgenError, InputError
from giftgen.plots import histogram_png
from giftgen.progress import log
from giftgen.records import RowWriter, read_rows
from giftgen.stats import kept_ppls, slim, stage_stats

PUBLISHED_STAGES = ("seeds", "chain", "verify", "score", "select", "eval")
# The forms a stage's output may take in a run directory, tried in this order.
_FORMS = (".jsonl", ".jsonl.gz", ".parquet", "")
_ROUND_DIR = re.compile(r"^round-(\d+)$")


def split_for(round: int | None) -> str:
    """The split that holds a round's rows: ``round_N``, or ``train`` outside a run."""
    return "train" if round is None else f"round_{int(round)}"


def config_for(stage: str) -> str:
    return stage if stage in PUBLISHED_STAGES else "default"


def stage_card(repo_id: str, stage: str, split: str, info: CardInfo | None = None) -> Callable[[int, Path], Any]:
    """The ``card`` callable of ``RowWriter``: statistics of the pushed rows, merged into the repo's card."""
    info = info or CardInfo()

    def card(count: int, rows_path: Path) -> Callable[[Callable[[str], bytes | None]], tuple[str, dict[str, bytes]]]:
        rows = [slim(r) for r in read_rows(rows_path)]
        stats = stage_stats(stage, rows)
        files: dict[str, bytes] = {}
        plots: dict[str, str] = {}
        ppls = kept_ppls(rows) if stage == "score" else []
        if ppls:
            path = f"plots/ppl_{split}.png"
            files[path] = histogram_png({split: ppls}, title=f"Perplexity of the kept codes ({split})",
                                        xlabel="perplexity (PPL)", bins=30)
            plots["ppl_histogram"] = path

        def render(fetch: Callable[[str], bytes | None]) -> tuple[str, dict[str, bytes]]:
            import yaml
            from huggingface_hub import DatasetCard

            entry = make_entry(config=config_for(stage), split=split, stage=stage, stats=stats, info=info,
                               plots=plots)
            old = fetch(STATS_FILE)
            doc = merge_entry(json.loads(old) if old else None, entry, info)
            readme = fetch("README.md")
            old_meta = DatasetCard(readme.decode("utf-8")).data.to_dict() if readme else {}
            sources = sorted({s for e in doc["entries"].values() for s in e["stats"].get("sources") or []})
            meta = merge_metadata(old_meta, sources, info.pretty_name)
            out = dict(files)
            # A lone `convert` push (config "default") is described by its card alone; the statistics file is
            # what lets the card of a run's many configs and splits be rebuilt push after push.
            if config_for(stage) != "default" or old is not None:
                out[STATS_FILE] = (json.dumps(doc, indent=2, default=str) + "\n").encode()
            if doc.get("recipe"):
                out[RECIPE_FILE] = yaml.safe_dump(doc["recipe"], sort_keys=False).encode()
            return render_card(repo_id, doc, meta), out

        return render

    return card


def command_card(repo_id: str, stage: str, config: Any = None,
                 recipe: Mapping[str, Any] | None = None) -> tuple[Callable[[int, Path], Any], str]:
    """The card and config of ``giftgen STAGE --push-to-hub``: the command's resolved ``config`` (a config
    dataclass, or None) and the ``recipe`` it was given, as the CLI resolved them."""
    settings = to_dict(config) if config is not None else None
    # verify, chain and eval: the limits this command ran with
    sandbox = asdict(config.limits()) if isinstance(config, SandboxSettings) else None
    info = CardInfo(recipe=recipe, settings=settings, sandbox=sandbox)
    return stage_card(repo_id, stage, split_for(None), info), config_for(stage)


def publish_stage(rows: str | os.PathLike, repo_id: str, stage: str, round: int | None = None,
                  info: CardInfo | None = None, *, split: str | None = None, private: bool | None = None) -> str:
    """Push one stage's rows (any form ``read_rows`` reads) as config ``stage``, split ``round_N`` (or ``split``),
    with the repo's card updated; return the commit sha that holds rows and card."""
    split = split or split_for(round)
    card = stage_card(repo_id, stage, split, info)
    with RowWriter(None, repo_id, split=split, private=private, card=card, config_name=config_for(stage)) as writer:
        writer.write_many(read_rows(rows))
    return writer.revision


def stage_output(round_dir: Path, stage: str) -> Path | None:
    """The output of ``stage`` in a round directory (``chain.jsonl``, ``chain.parquet``, ...), or None."""
    for suffix in _FORMS:
        path = round_dir / f"{stage}{suffix}"
        if path.is_file() or (suffix == "" and path.is_dir() and (path / "dataset_info.json").exists()):
            return path
    return None


def round_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """``round-N`` folders of a run directory, by N."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).iterdir() if p.is_dir() and (m := _ROUND_DIR.match(p.name))]
    return sorted(found)


def finished_outputs(run_dir: Path) -> Iterator[tuple[int, str, Path, dict[str, Any] | None]]:
    """(round, stage, output, marker) of every finished stage output of a run directory, in run order.

    A stage is finished when ``giftgen run``'s marker ``<stage>.json`` sits beside it; in a round folder with no
    marker at all (a layout made by hand), every output present counts as finished.
    """
    for r, rd in round_dirs(run_dir):
        markers = {s: rd / f"{s}.json" for s in (*PUBLISHED_STAGES, "finetune")}
        any_marker = any(p.exists() for p in markers.values())
        for stage in PUBLISHED_STAGES:
            path = stage_output(rd, stage)
            if path is None:
                continue
            marker = markers[stage]
            if any_marker and not marker.exists():
                log(f"publish: round {r}: {stage} is unfinished, not pushed")
                continue
            yield r, stage, path, json.loads(marker.read_text()) if marker.exists() else None


def publish_run(run_dir: str | os.PathLike, repo_id: str, *, model_repo: str | None = None,
                info: CardInfo | None = None, private: bool | None = None) -> dict[str, str]:
    """Push every finished stage of a run directory, then (``model_repo``) its models; return what -> commit.

    Keys are ``seeds/train``, ``round-1/chain``, ..., ``round-1/model``. Models go to ``model_repo``, or, when it
    holds ``{round}``, to one repo per round (``me/gift-round-{round}``); without ``{round}`` only the last round's
    model is pushed. Each model's card links the commit of its round's ``select`` rows.
    """
    import yaml

    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"no such run directory: {root}")
    base = info or CardInfo()
    recipe = base.recipe
    if recipe is None and (root / "recipe.yaml").exists():
        recipe = yaml.safe_load((root / "recipe.yaml").read_text()) or None
    command = base.command if base.command is not None else recorded_command()
    out: dict[str, str] = {}
    for which in ("train", "eval"):
        path = root / "seeds" / f"{which}.jsonl"
        if path.exists():
            stage_info = CardInfo(command=command, recipe=recipe, settings=(recipe or {}).get("run"),
                                  sandbox=base.sandbox, models=base.models, pretty_name=base.pretty_name)
            out[f"seeds/{which}"] = publish_stage(path, repo_id, "seeds", info=stage_info, split=which,
                                                  private=private)
    for r, stage, path, marker in finished_outputs(root):
        settings = (marker or {}).get("config") or (recipe or {}).get(stage)
        stage_info = CardInfo(command=command, recipe=recipe, settings=settings, sandbox=base.sandbox,
                              models=base.models, pretty_name=base.pretty_name)
        out[f"round-{r}/{stage}"] = publish_stage(path, repo_id, stage, r, stage_info, private=private)
        log(f"publish: round {r}: {stage} -> {repo_id} ({config_for(stage)}/{split_for(r)}) at "
            f"{out[f'round-{r}/{stage}'][:12]}")
    if model_repo:
        models = [(r, rd / "model") for r, rd in round_dirs(root) if (rd / "model" / "config.json").exists()
                  or (rd / "model" / "adapter_config.json").exists()]
        if "{round}" not in model_repo:
            models = models[-1:]
        for r, folder in models:
            revision = out.get(f"round-{r}/select") or next(
                (v for k, v in reversed(out.items()) if k.startswith(f"round-{r}/")), None)
            target = model_repo.format(round=r)
            out[f"round-{r}/model"] = push_model(str(folder), target, dataset=repo_id, dataset_revision=revision,
                                                 dataset_config="select", dataset_split=split_for(r))
            log(f"publish: round {r}: model -> {target} at {out[f'round-{r}/model'][:12]}")
    return out


def push_model(output_dir: str, repo_id: str, *, dataset: str | None = None, dataset_revision: str | None = None,
               dataset_config: str | None = None, dataset_split: str | None = None) -> str:
    """Upload the output folder (model, tokenizer, card) to a Hub model repo; return the commit sha.

    With ``dataset`` (a Hub dataset id) the card first names it as the training data, pinned to
    ``dataset_revision`` (the commit ``giftgen.publish.publish_stage`` returned), in the folder and on the Hub.
    The token is the user's login.
    """
    readme = Path(output_dir) / "README.md"
    if dataset is not None and readme.exists():
        readme.write_text(link_dataset(readme.read_text(), dataset, dataset_revision, dataset_config, dataset_split))
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        info = api.upload_folder(folder_path=output_dir, repo_id=repo_id, ignore_patterns=["checkpoints/*"])
    except Exception as e:  # network, auth, permissions: all end the same way for the user
        raise GiftgenError(f"could not push to the Hub model {repo_id!r}: {type(e).__name__}",
                           hint="log in with `hf auth login` or set HF_TOKEN") from None
    return info.oid
