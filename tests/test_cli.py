"""The CLI as users meet it: pipes, start-up, settings resolution, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main

HEAVY = ("torch", "transformers", "datasets", "trl", "peft", "vllm")
ROWS = [{"problem_id": f"p/{i}", "description": f"Problem {i}.", "x": i} for i in range(5)]


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def giftgen(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "giftgen", *args], capture_output=True, text=True, env=env, **kw)


@pytest.fixture
def rows_file(tmp_path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.mark.parametrize("args", [["--help"], ["chain", "--help"], ["verify", "--help"], ["finetune", "--help"]])
def test_help_imports_nothing_heavy(args):
    code = textwrap.dedent(f"""
        import sys
        from giftgen.cli import main
        try:
            main({args!r})
        except SystemExit:
            pass
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        print("HEAVY", heavy, file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in out.stderr, out.stderr


def test_convert_stdin_to_stdout(rows_file):
    result = run("convert", "-", input=rows_file.read_text())
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == ROWS


def test_stdin_only_when_asked():
    # no `-`: INPUT is required, and stdin is never read implicitly
    result = run("convert", input=json.dumps(ROWS[0]))
    assert result.exit_code == 2
    assert "Missing argument 'INPUT'" in result.output


def test_terminal_stdin_is_refused(rows_file):
    code = "import sys; sys.stdin.isatty = lambda: True; from giftgen.cli import main; main(['convert', '-'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, input="")
    assert out.returncode == 2
    assert "refusing to read rows from a terminal" in out.stderr


def test_real_pipe_between_commands(rows_file, tmp_path):
    out = tmp_path / "out.parquet"
    first = subprocess.Popen([sys.executable, "-m", "giftgen", "convert", str(rows_file)], stdout=subprocess.PIPE)
    second = subprocess.run([sys.executable, "-m", "giftgen", "convert", "-", "-o", str(out)], stdin=first.stdout,
                            capture_output=True, text=True)
    first.stdout.close()
    assert first.wait() == 0 and second.returncode == 0, second.stderr
    back = giftgen("convert", str(out))
    assert [json.loads(line) for line in back.stdout.splitlines()] == ROWS


def test_head_ends_quietly(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"i": i, "pad": "x" * 200}) + "\n" for i in range(20000)))
    out = subprocess.run(
        f"{sys.executable} -m giftgen convert {big} | head -n 2; echo rc=${{PIPESTATUS[0]}} >&2",
        shell=True, executable="/bin/bash", capture_output=True, text=True,
    )
    assert len(out.stdout.splitlines()) == 2
    assert out.stderr.strip() == "rc=0", out.stderr


def test_library_chatter_goes_to_stderr(rows_file):
    # A library that prints to stdout (as vLLM and trainers do) must not corrupt the record stream.
    code = textwrap.dedent(f"""
        import giftgen.cli as cli
        real = cli.read_rows
        def noisy(*a, **k):
            print("library chatter on stdout")
            import os; os.write(1, b"raw fd chatter\\n")
            yield from real(*a, **k)
        cli.read_rows = noisy
        cli.main(["convert", {str(rows_file)!r}])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == ROWS
    assert "library chatter on stdout" in out.stderr and "raw fd chatter" in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "missing.jsonl"], "Error: no such file: missing.jsonl"),
        (["seeds", "nosuch"], "'nosuch' is not one of"),
        (["chain", "x.jsonl", "--steps", "many"], "'many' is not a valid integer"),
        (["chain", "x.jsonl", "--mode", "gift"], "'gift' is not one of"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message):
    out = giftgen(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_malformed_input_line_is_one_line_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": oops}\n')
    out = giftgen("convert", str(path))
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "line 2: invalid JSON" in errors[0]
    assert "Traceback" not in out.stderr
    assert giftgen("--debug", "convert", str(path)).stderr.count("Traceback") == 1


def test_recipe_defaults_flags_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("chain:\n  steps: 7\n  n: 2\nselect:\n  k: 4\n")
    result = run("--recipe", str(recipe), "chain", "x", "--n", "5", "--print-config")
    assert result.exit_code == 0, result.output
    import yaml

    resolved = yaml.safe_load(result.stdout)["chain"]
    assert resolved["steps"] == 7  # from the recipe
    assert resolved["n"] == 5  # the flag wins
    assert resolved["top_k"] == 50  # the default (METHOD.md)


@pytest.mark.parametrize(
    "text, message",
    [
        ("chian:\n  steps: 3\n", "unknown section 'chian'; valid sections: "),
        ("chain:\n  stepz: 3\n", "unknown key 'stepz' in section 'chain'; valid keys: "),
        ("chain:\n  steps: three\n", "steps must be int"),
        ("chain:\n  mode: gift\n", "mode must be one of gibbs, rft, rewrite"),
        ("- chain\n", "a recipe is a mapping"),
        ("chain:\n  steps: 3\n   n: [1\n", "invalid YAML at line 3, column 5: "),
        ("chain:\n\tsteps: 3\n", "invalid YAML at line 2, column 1: found character '\\t'"),
    ],
)
def test_recipe_is_strict(tmp_path, text, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    result = run("--recipe", str(recipe), "chain", "x", "--print-config")
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output  # one line, whatever the YAML error


def test_env_var_sets_option(monkeypatch):
    result = CliRunner(env={"GIFTGEN_MODEL": "my/model"}).invoke(main, ["chain", "x", "--print-config"])
    assert "model: my/model" in result.stdout


# --------------------------------------------------------------------------------------------------- outputs that never lie


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.parquet", "out-dir"])
def test_a_failed_command_leaves_no_output_and_no_partial(tmp_path, name):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + '{"a": oops}\n')  # rows first, then the error
    out = tmp_path / "sub" / name
    result = run("convert", str(bad), "-o", str(out))
    assert result.exit_code == 2 and "line 6: invalid JSON" in result.output
    assert not out.exists() and not list(tmp_path.joinpath("sub").glob("*"))


@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet", "out-dir"])
def test_an_output_appears_whole_and_replaces_the_old_one(tmp_path, rows_file, name):
    out = tmp_path / name
    assert run("convert", str(rows_file), "-o", str(out), "--limit", "2").exit_code == 0
    assert run("convert", str(rows_file), "-o", str(out)).exit_code == 0
    from giftgen.records import read_rows

    assert list(read_rows(str(out))) == ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "rows.jsonl"])  # no partial beside it


def test_a_failed_command_keeps_the_previous_output(tmp_path, rows_file):
    out = tmp_path / "out.jsonl"
    assert run("convert", str(rows_file), "-o", str(out)).exit_code == 0
    before = out.read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": oops}\n')
    assert run("convert", str(bad), "-o", str(out)).exit_code == 2
    assert out.read_bytes() == before and not (tmp_path / "out.jsonl.partial").exists()


def test_select_on_an_empty_input_fails_loudly(tmp_path):
    empty = tmp_path / "scored.jsonl"
    empty.write_text("")
    out = tmp_path / "sft.jsonl"
    result = run("select", str(empty), "-o", str(out))
    assert result.exit_code == 2 and f"`giftgen select`: {empty} holds no rows" in result.stderr
    assert not out.exists()


def test_an_empty_input_of_a_row_stage_is_a_warning(tmp_path):
    # an empty shard is normal for verify and score, so an empty input writes an empty output, but says so
    empty = tmp_path / "chain.jsonl"
    empty.write_text("")
    out = tmp_path / "verified.jsonl"
    result = run("verify", str(empty), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"Warning: `giftgen verify`: {empty} holds no rows" in result.stderr and out.read_bytes() == b""
    assert "stdin holds no rows" in run("convert", "-", input="").stderr


# --------------------------------------------------------------------------------------------------- flags


def test_debug_and_recipe_work_after_the_subcommand(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": oops}\n')
    assert giftgen("convert", str(path), "--debug").stderr.count("Traceback") == 1
    recipe = tmp_path / "r.yaml"
    recipe.write_text("chain:\n  steps: 7\n")
    for args in (["chain", "x", "--recipe", str(recipe)], ["chain", "x", f"--recipe={recipe}"]):
        result = run(*args, "--print-config")
        assert result.exit_code == 0, result.output
        assert "steps: 7\n" in result.stdout
    # after `--`, nothing moves: it is an argument of the command
    assert run("convert", "--", "--debug").exit_code == 2


def test_list_flags_take_commas_and_repeats():
    result = run("run", "recipes/quickstart.yaml", "--arms", "gift,rft", "--arms", "control", "--seeds", "0, 1",
                 "--print-config")
    assert result.exit_code == 0, result.output
    import yaml

    resolved = yaml.safe_load(result.stdout)["run"]
    assert resolved["arms"] == ["gift", "rft", "control"] and resolved["seeds"] == [0, 1]
    bad = run("run", "recipes/quickstart.yaml", "--seeds", "0,x", "--print-config")
    assert bad.exit_code == 2 and "'x' is not a valid integer" in bad.output
    # a label may hold a comma: it is not split
    assert "- a, b" in run("report", "d", "--label", "a, b", "--print-config").stdout


def test_eval_source_none_as_advertised():
    assert "(none: no evaluation)" in run("run", "--help").stdout
    result = run("run", "recipes/quickstart.yaml", "--eval-source", "none", "--print-config")
    assert result.exit_code == 0, result.output
    assert "eval_source: null" in result.stdout


def test_help_texts_say_what_the_flags_are():
    from giftgen.seeds import SOURCES

    seeds_help = " ".join(run("seeds", "--help").stdout.split())
    assert all(f" {name}," in seeds_help or f" {name}." in seeds_help for name in SOURCES), seeds_help
    score_help = " ".join(run("score", "--help").stdout.split())
    chain_help = " ".join(run("chain", "--help").stdout.split())
    assert "codes scored per forward pass" in score_help and "prompts per generate() call" not in score_help
    assert "prompts per generate() call" in chain_help
    select_help = " ".join(run("select", "--help").stdout.split())
    assert "-T, --temperature FLOAT Selection weight T in softmax(T * PPL), not a sampling temperature" in select_help
