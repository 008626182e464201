"""The house, drawn from the code: giftgen's import graph read with ``ast``, checked to stay one way.

Layers, from the bottom: the library (records, config, prompts, seeds, backends, sandbox and the stage modules)
<- the orchestration package ``giftgen.run`` <- the experiments package ``giftgen.miniature`` <- the CLI. An import
may point down or sideways, never up; the import graph has no loop; giftgen's own imports sit at the top of each
module; no module uses another module's private (``_name``) name; a package with a face (``giftgen.sandbox``,
``giftgen.run``, ``giftgen.miniature``) is imported through it from outside. And ``import giftgen.cli`` (what
``giftgen --help`` costs) loads no heavy library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "giftgen"
LAYERS = {"library": 0, "run": 1, "miniature": 2, "cli": 3}
FACES = ("giftgen.sandbox", "giftgen.run", "giftgen.miniature")
HEAVY = ("torch", "transformers", "datasets", "trl", "peft", "vllm", "llama_cpp", "accelerate", "matplotlib")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    if module in ("giftgen", "giftgen.cli", "giftgen.__main__"):  # the package's face (its verbs) and the CLI
        return LAYERS["cli"]
    for name in ("run", "miniature"):
        if module == f"giftgen.{name}" or module.startswith(f"giftgen.{name}."):
            return LAYERS[name]
    return LAYERS["library"]


def package_of(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports(module: str) -> list[tuple[ast.stmt, str, list[str], bool]]:
    """(node, target module, imported names, at module level) for each import of a giftgen module."""
    tree = ast.parse(MODULES[module].read_text())
    top = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` imports are for annotations, at the top too
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            top |= {id(child) for child in node.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "giftgen":
                    out.append((node, alias.name, [], id(node) in top))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package_of(module).split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] != "giftgen":
                continue
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{base}.{n}" in MODULES]
            for name in submodules:
                out.append((node, f"{base}.{name}", [], id(node) in top))
            rest = [n for n in names if n not in submodules]
            if rest:
                out.append((node, base, rest, id(node) in top))
    return out


def graph() -> dict[str, set[str]]:
    return {module: {target for _, target, _, _ in imports(module)} for module in MODULES}


def test_every_verb_of_the_package_is_a_function_of_its_module():
    import giftgen

    for verb, (module, _name) in giftgen.VERBS.items():
        assert module in MODULES and callable(getattr(giftgen, verb)), verb
        assert layer(module) < layer("giftgen")


def test_every_import_names_a_module_that_exists():
    missing = [f"{m} imports {t}" for m in MODULES for _, t, _, _ in imports(m) if t not in MODULES]
    assert not missing


def test_no_import_points_up_a_layer():
    upward = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, targets in graph().items() for t in targets if layer(t) > layer(m)]
    assert not upward, "\n".join(upward)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A loop in ``edges`` as the list of its modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_loop():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_giftgen_imports_sit_at_the_top_of_each_module():
    inner = [f"{m}:{node.lineno} imports {t} inside a function"
             for m in MODULES for node, t, _, at_top in imports(m) if not at_top]
    assert not inner, "\n".join(inner)


def test_faces_are_used_from_outside():
    past = []
    for m in MODULES:
        for node, target, _, _ in imports(m):
            for face in FACES:
                inside = m == face or m.startswith(face + ".")
                if target.startswith(face + ".") and not inside:
                    past.append(f"{m}:{node.lineno} imports {target}, past the face {face}")
    assert not past, "\n".join(past)


def defined_names() -> dict[str, set[str]]:
    """Per module, the names it defines: top-level and class-level definitions and assignments, and attributes
    it assigns on ``self``."""
    out: dict[str, set[str]] = {}
    for m, path in MODULES.items():
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
        out[m] = names
    return out


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_used_across_modules():
    defined = defined_names()
    found = []
    for m, path in MODULES.items():
        for node, target, names, _ in imports(m):
            found += [f"{m}:{node.lineno} imports {target}.{n}" for n in names if private(n)]
        elsewhere = set().union(*(names for other, names in defined.items() if other != m))
        own = defined[m]
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and private(node.attr)):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if node.attr in elsewhere and node.attr not in own:
                found.append(f"{m}:{node.lineno} uses {ast.unparse(node)}, private to another module")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("statement", ["import giftgen.cli", "import giftgen", "import giftgen.run",
                                       "import giftgen.miniature"])
def test_importing_the_cli_loads_no_heavy_library(statement):
    code = (f"{statement}\nimport sys\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"{statement} loads {out.stdout.strip()}"
