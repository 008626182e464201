"""One dataclass per command: the single source of each setting's name, help, choices and default.

A field ``max_new_tokens`` is the CLI flag ``--max-new-tokens`` and the recipe key ``max_new_tokens``; both are
generated from the dataclass, so they cannot drift. Settings resolve in this order, later winning:
the dataclass default, the recipe's section for the command (``giftgen --recipe FILE CMD``), then flags given
on the command line (or their environment variables). Unknown recipe sections and keys are errors.

Declare a setting with ``setting(default, "help", choices=..., flag="-n", envvar="GIFTGEN_MODEL")``. Command
config classes register themselves with ``@command_config("name")``. Each stage module defines its own next to
its code; those modules import nothing heavy at module level, so that ``giftgen --help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from giftgen.errors import ConfigError
from giftgen.sandbox import MIN_TIMEOUT, Executor, Limits, allowed_packages, check_workers

CONFIGS: dict[str, type] = {}
# Recipe keys that have a new name (or section): the error for the old one names the new one.
RENAMED = {"run.arms": "grid.arms", "run.seeds": "grid.random_seeds"}


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    envvar: str | None = None,
    secret: bool = False,
) -> Any:
    """A dataclass field with CLI metadata. ``flag`` adds a short alias; ``secret`` hides the value in output."""
    meta = {"help": help, "choices": choices, "flag": flag, "envvar": envvar, "secret": secret}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def command_config(name: str) -> Callable[[type], type]:
    def register(cls: type) -> type:
        cls = dataclass(cls)
        cls.command = name
        CONFIGS[name] = cls
        return cls

    return register


# --------------------------------------------------------------------------------------------------- sandbox

TEST_SETS = ("base", "plus", "all")
PER_COMMAND = ...  # a default each command gives (``sandbox_settings``)
# The sandbox settings, declared once: (type, default, help). LIMITS are settings only where a command exposes them
# (verify); elsewhere they keep these defaults, the sandbox's own (``giftgen.sandbox.Limits`` and ``Executor``).
_SANDBOX: dict[str, tuple[Any, Any, str]] = {
    "workers": (int, 0, "Sandbox worker processes: programs judged at once (0: one per CPU core)."),
    "tests": (str, PER_COMMAND,
              "Tests each program runs: the problem's own (base), its extra inputs (plus: MBPP+'s) or all. The "
              "paper's chain runs the base tests; verify and eval all."),
    "max_tests": (int | None, None,
                  "Run only the first N tests of each problem (10 for APPS, as in the paper). Default: all."),
    "timeout": (float, PER_COMMAND,
                "Wall-clock seconds per test (one call, assert, check function or stdin case) and for loading the "
                "program. chain and eval allow 4, verify 6: it judges the codes kept for training, on every test, "
                "once."),
    "program_timeout": (float, Limits.program_timeout,
                        "Wall-clock seconds per program, all tests together (at least three times what the "
                        "reference solution took, when outputs come from it)."),
    "memory_mb": (int, Limits.memory_mb, "Address-space limit of each sandboxed process, in MiB."),
    "output_mb": (int, Limits.output_mb, "Limit on what a program writes (stdout, stderr, each file), in MiB."),
    "fail_fast": (bool, True, "Stop a program at its first failing test (the rest are reported not_run)."),
    "retries": (int, 2, "Attempts after a sandbox_error, each on a fresh sandbox process."),
    "allow_import": (list[str], ["numpy", "pandas"],
                     "Packages outside the standard library that programs and tests may import (with the packages "
                     "they require). Evaluation packages and dataset or model caches are refused."),
}
LIMITS = ("program_timeout", "memory_mb", "output_mb", "fail_fast", "retries")


class SandboxSettings:
    """What the sandbox settings of a command build: its limits and its executor. A command's config inherits
    ``sandbox_settings(...)``, which declares the settings on top of this class."""

    def validate_sandbox(self) -> tuple[str, ...]:
        """Check the sandbox settings; the packages to mount. ``ConfigError`` for a value that cannot work."""
        if self.workers < 0:
            raise ConfigError(f"workers must be 0 (one per CPU core) or more, got {self.workers}")
        check_workers(self.workers)
        if self.max_tests is not None and self.max_tests < 1:
            raise ConfigError(f"max_tests must be at least 1, got {self.max_tests}")
        if not MIN_TIMEOUT <= self.timeout < 1e6:  # refuses nan and inf too
            raise ConfigError(f"timeout must be finite seconds from {MIN_TIMEOUT} to under 1e6, got {self.timeout}")
        if not 0 <= self.retries <= 100:
            raise ConfigError(f"retries must be from 0 to 100, got {self.retries}")
        self.limits().validate()
        return allowed_packages(tuple(self.allow_import))

    def limits(self) -> Limits:
        return Limits(timeout=self.timeout, program_timeout=self.program_timeout, memory_mb=self.memory_mb,
                      output_mb=self.output_mb)

    def executor(self) -> Executor:
        """The sandbox executor these settings describe (not started; a context manager)."""
        return Executor(workers=self.workers, limits=self.limits(), tests=self.tests, max_tests=self.max_tests,
                        fail_fast=self.fail_fast, retries=self.retries, allow_import=self.allow_import)


def sandbox_settings(*, tests: str, timeout: float, limits: bool = False) -> type:
    """The sandbox settings group with one command's defaults (``tests``, ``timeout``), as a dataclass for its
    config to inherit: workers, tests, max_tests, timeout and allow_import; with ``limits``, also program_timeout,
    memory_mb, output_mb, fail_fast and retries (else those stay the sandbox's defaults, fixed)."""
    if tests not in TEST_SETS:
        raise ValueError(f"tests must be one of {TEST_SETS}, got {tests!r}")
    own = {"tests": tests, "timeout": float(timeout)}
    declared, fixed = [], {}
    for name, (kind, default, help) in _SANDBOX.items():
        default = own[name] if default is PER_COMMAND else default
        if name in LIMITS and not limits:
            fixed[name] = default
            continue
        choices = TEST_SETS if name == "tests" else None
        declared.append((name, kind, setting(default, help, choices=choices)))
    return dataclasses.make_dataclass("Sandbox", declared, bases=(SandboxSettings,), namespace=fixed)


# --------------------------------------------------------------------------------------------------- types


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # Evaluating the string annotations is the slow part of building the CLI: do it once per class.
    return typing.get_type_hints(cls)


def _field_type(cls: type, f: dataclasses.Field) -> tuple[type, bool, bool]:
    """(base type, optional, is list) of a field."""
    hint = _type_hints(cls)[f.name]
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
        origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def coerce(cls: type, name: str, value: Any, where: str) -> Any:
    """Check and convert one recipe value to the field's type; errors name ``where`` it came from."""
    f = next(f for f in fields(cls) if f.name == name)
    base, optional, is_list = _field_type(cls, f)
    if value is None:
        if optional or f.default is None:
            return None
        raise ConfigError(f"{where}: {name} cannot be null")
    if is_list:
        items = value if isinstance(value, list) else [value]
        return [_coerce_scalar(base, f, v, where) for v in items]
    if optional and f.metadata.get("choices") and value == "none":
        return None  # an optional choice: `none` (as the flag takes it) means unset
    return _coerce_scalar(base, f, value, where)


def _coerce_scalar(base: type, f: dataclasses.Field, value: Any, where: str) -> Any:
    ok = (
        (base is bool and isinstance(value, bool))
        or (base is int and isinstance(value, int) and not isinstance(value, bool))
        or (base is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool))
    )
    if not ok:
        raise ConfigError(f"{where}: {f.name} must be {base.__name__}, got {value!r}")
    value = base(value)
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where}: {f.name} must be one of {', '.join(choices)}; got {value!r}")
    return value


# --------------------------------------------------------------------------------------------------- recipes


def load_recipe(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a recipe and check every section and key strictly. Returns {command: {key: value}}.

    A recipe may start from others: ``include: FILE`` or ``include: [FILE, ...]`` (paths relative to the recipe)
    reads those first, in order, each checked the same way; the recipe's own keys then override theirs key by key.
    """
    return _load_recipe(Path(path), ())


def _load_recipe(path: Path, chain: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"no such recipe: {path}" + (f" (included by {chain[-1]})" if chain else ""))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:  # one line: where, then what (PyYAML's own text spans several lines)
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or (str(e).splitlines() or ["unreadable"])[0]
        raise ConfigError(f"{path}: invalid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of command sections (chain:, verify:, ...)")
    recipe: dict[str, dict[str, Any]] = {}
    includes = data.pop("include", None)
    if includes is not None:
        if isinstance(includes, str):
            includes = [includes]
        if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
            raise ConfigError(f"{path}: include must be a file name or a list of them")
        for name in includes:
            target = (path.parent / name).resolve()
            if target in chain or target == path.resolve():
                raise ConfigError(f"{path}: include {name} includes itself (a cycle)")
            for section, values in _load_recipe(target, (*chain, path.resolve())).items():
                recipe.setdefault(section, {}).update(values)
    for section, values in data.items():
        if section not in CONFIGS:
            raise ConfigError(
                f"{path}: unknown section {section!r}; valid sections: include, {', '.join(sorted(CONFIGS))}"
            )
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping of settings")
        cls = CONFIGS[section]
        valid = {f.name for f in fields(cls)}
        for key in values:
            if key not in valid:
                raise unknown_key(str(path), section, key, valid)
        recipe.setdefault(section, {}).update(
            {k: coerce(cls, k, v, f"{path} [{section}]") for k, v in values.items()}
        )
    return recipe


def unknown_key(where: str, section: str, key: str, valid: Collection[str]) -> ConfigError:
    """The error for a key a section does not have; a renamed key's names its new name (``RENAMED``)."""
    moved = RENAMED.get(f"{section}.{key}")
    if moved:
        return ConfigError(f"{where}: {section}.{key} is now {moved}", hint=f"write {moved} instead")
    return ConfigError(f"{where}: unknown key {key!r} in section {section!r}; valid keys: {', '.join(sorted(valid))}")


def resolve(cls: type, recipe_section: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
    """Build a config: dataclass defaults, then the recipe's section, then explicit overrides."""
    values: dict[str, Any] = {}
    values.update(recipe_section or {})
    values.update(overrides or {})
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def to_dict(config: Any, *, reveal: bool = False) -> dict[str, Any]:
    """The config as plain data (for --print-config, cards and run directories); secrets are masked."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("secret") and value and not reveal:
            value = "***"
        out[f.name] = value
    return out


def dump_yaml(section: str, config: Any) -> str:
    import yaml

    return yaml.safe_dump({section: to_dict(config)}, sort_keys=False)


# --------------------------------------------------------------------------------------------------- click


# List settings whose items are free text that may hold a comma: only repeating the flag gives several.
NO_COMMAS = ("label",)


def _click_list_type() -> type:
    import click

    class _CommaList(click.ParamType):
        """One value of a repeatable list flag, which may itself be a comma-separated list (``--arms gift,rft``)."""

        def __init__(self, inner: click.ParamType):
            self.inner = inner
            self.name = inner.name

        def get_metavar(self, param: Any, ctx: Any = None) -> str | None:
            return self.inner.get_metavar(param, ctx)

        def convert(self, value: Any, param: Any, ctx: Any) -> tuple[Any, ...]:
            if isinstance(value, tuple):
                return value
            parts = [part.strip() for part in value.split(",")] if isinstance(value, str) else [value]
            return tuple(self.inner.convert(part, param, ctx) for part in parts if part != "")

    return _CommaList


def CommaList(inner: Any) -> Any:  # noqa: N802 (a type, built lazily so that click loads only with the CLI)
    return _click_list_type()(inner)


def _flatten(ctx: Any, param: Any, value: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return tuple(item for group in value for item in (group if isinstance(group, tuple) else (group,)))


def _none_is_unset(ctx: Any, param: Any, value: Any) -> Any:
    return None if value == "none" else value


def own_fields_first(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls``, its own before those it inherits (``--help`` lists a command's own flags first)."""
    inherited = {f.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base) for f in fields(base)}
    return sorted(fields(cls), key=lambda f: f.name in inherited)


def click_options(cls: type) -> Callable[[Callable], Callable]:
    """Decorate a Click command with one option per field of ``cls``."""
    import click

    def decorate(fn: Callable) -> Callable:
        for f in reversed(own_fields_first(cls)):
            base, optional, is_list = _field_type(cls, f)
            meta = f.metadata
            names = ["--" + f.name.replace("_", "-")]
            if meta.get("flag"):
                names.append(meta["flag"])
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            kwargs: dict[str, Any] = {
                "help": meta.get("help", ""),
                "envvar": meta.get("envvar"),
                "show_envvar": bool(meta.get("envvar")),
            }
            if meta.get("choices"):
                # an optional choice also takes `none` (unset), as its help may say
                kwargs["type"] = click.Choice(meta["choices"] + (("none",) if optional and not is_list else ()))
                if optional and not is_list:
                    kwargs["callback"] = _none_is_unset
            elif base in (int, float, str):
                kwargs["type"] = click.types.convert_type(base)
            if is_list and f.name not in NO_COMMAS:
                kwargs["type"] = CommaList(kwargs.get("type", click.STRING))
                kwargs["callback"] = _flatten
                kwargs["help"] += " Repeat the flag or separate values with commas."
            if base is bool and not is_list:
                names = [f"--{f.name.replace('_', '-')}/--no-{f.name.replace('_', '-')}"]
                kwargs["default"] = default
                kwargs["show_default"] = True
            elif is_list:
                kwargs["multiple"] = True
                kwargs["default"] = tuple(default)
                kwargs["show_default"] = bool(default)
            else:
                kwargs["default"] = default
                kwargs["show_default"] = default is not None and not meta.get("secret")
            fn = click.option(*names, f.name, **kwargs)(fn)
        return fn

    return decorate


def from_click(cls: type, ctx: Any, params: Mapping[str, Any]) -> Any:
    """Resolve ``cls`` from the recipe in ``ctx.obj`` and the options the user actually gave."""
    from click.core import ParameterSource

    explicit = {}
    for f in fields(cls):
        source = ctx.get_parameter_source(f.name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            value = params[f.name]
            explicit[f.name] = list(value) if isinstance(value, tuple) else value
    recipe = (ctx.obj or {}).get("recipe") or {}
    try:
        return resolve(cls, recipe.get(cls.command), explicit)
    except TypeError as e:
        raise ConfigError(str(e)) from None
