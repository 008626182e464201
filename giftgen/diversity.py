"""Diversity of a problem's kept codes: how many different programs the model wrote, not how many copies.

Contract. Two measures over the codes of one problem, aggregated over problems by ``diversity``:

- **Distinct normalised ASTs** (``normalise``): each code is parsed; docstrings and type annotations are dropped
  (comments and layout are gone with parsing); function arguments and variables bound in a function (assignment,
  ``for``/``with``/``except`` targets, comprehension variables) are renamed canonically, in order of first appearance
  in their scope, and so are variables bound at module level (the whole program of a stdin/stdout script). Names
  of functions and classes, imports, attributes, keyword arguments of calls and free (builtin/imported) names are
  kept: they are the program's interface or its vocabulary. Two codes that differ only by local names, comments,
  docstrings, annotations or layout count once. A code that does not parse is compared by its text (trailing
  spaces dropped).
- **Mean pairwise token n-gram distance** (``pairwise_distance``): the Jaccard distance
  1 - |A & B| / |A | B| between the sets of Python-token n-grams (n = 4; comments and blank lines dropped, names as
  written) of every pair of codes, averaged over pairs. 0 when every code is the same token sequence, near 1 when
  no two share an n-gram; it needs at least two codes. It complements the AST count: two codes differing in one
  constant are two distinct ASTs, but close here; a renamed copy is one AST, but distant only in its names.

Both see the multiset of kept codes (duplicates included), since that is what the chain produced.
"""

from __future__ import annotations

import ast
import io
import math
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_DOCSTRING_OWNERS = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Token types that carry no program content for the n-gram measure.
_SKIP_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}


# --------------------------------------------------------------------------------------------------- ASTs


def normalise(code: str) -> str:
    """A canonical string of ``code``'s program: equal for codes that differ only in what the module docstring lists."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return "text:" + "\n".join(line.rstrip() for line in code.strip().splitlines())
    _drop_docstrings(tree)
    tree = _Renamer().visit(tree)
    return ast.dump(tree, include_attributes=False)


def _drop_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, _DOCSTRING_OWNERS) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]


def _args(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.arg]:
    a = node.args
    return [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs, *([a.kwarg] if a.kwarg else [])]


def _outer_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a function or class node evaluated in the enclosing scope (decorators, defaults, bases)."""
    if isinstance(node, _FUNCTIONS):
        parts = [*getattr(node, "decorator_list", []), *node.args.defaults]
        return parts + [d for d in node.args.kw_defaults if d is not None]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    return []


def _bound_names(scope: ast.AST) -> list[str]:
    """Names a scope binds (arguments first, then in order of first appearance), minus global/nonlocal ones."""
    names: dict[str, None] = {}
    declared: set[str] = set()
    if isinstance(scope, _FUNCTIONS):
        for arg in _args(scope):
            names.setdefault(arg.arg)
        body = scope.body if isinstance(scope.body, list) else [scope.body]
    else:
        body = scope.body
    stack: list[ast.AST] = list(reversed(body))
    while stack:  # depth-first, in source order; nested scopes contribute only their outer parts
        node = stack.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.setdefault(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.setdefault(node.name)
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            stack.extend(reversed(_outer_parts(node)))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return [n for n in names if n not in declared]


class _Renamer(ast.NodeTransformer):
    """Renames bound names scope by scope; class bodies keep their names (they are attributes)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, dict[str, str]]] = []

    def _lookup(self, name: str) -> str:
        for i, (kind, mapping) in enumerate(reversed(self.scopes)):
            # a class body's names are not visible from the functions inside it
            if kind == "class" and i > 0:
                continue
            if name in mapping:
                return mapping[name]
        return name

    def _push_function(self, node: ast.AST) -> None:
        depth = len(self.scopes)
        self.scopes.append(("function", {n: f"v{depth}_{i}" for i, n in enumerate(_bound_names(node))}))

    def _visit_all(self, nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            if n is None:
                out.append(None)
                continue
            v = self.visit(n)
            if isinstance(v, list):
                out.extend(v)
            elif v is not None:
                out.append(v)
        return out

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self._push_function(node)
        node.body = self._visit_all(node.body)
        self.scopes.pop()
        return node

    def _visit_function(self, node: Any) -> ast.AST:
        if not isinstance(node, ast.Lambda):
            node.decorator_list = self._visit_all(node.decorator_list)
            node.returns = None
        node.args.defaults = self._visit_all(node.args.defaults)
        node.args.kw_defaults = self._visit_all(node.args.kw_defaults)
        self._push_function(node)
        for arg in _args(node):
            arg.arg = self._lookup(arg.arg)
            arg.annotation = None
        if isinstance(node, ast.Lambda):
            node.body = self.visit(node.body)
        else:
            node.body = self._visit_all(node.body)
        self.scopes.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.decorator_list = self._visit_all(node.decorator_list)
        node.bases = self._visit_all(node.bases)
        node.keywords = self._visit_all(node.keywords)
        self.scopes.append(("class", {n: n for n in _bound_names(node)}))
        node.body = self._visit_all(node.body)
        self.scopes.pop()
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._lookup(node.id)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name:
            node.name = self._lookup(node.name)
        self.generic_visit(node)
        return node

    def visit_Global(self, node: ast.Global) -> ast.AST:
        node.names = [self._lookup(n) for n in node.names]
        return node

    visit_Nonlocal = visit_Global

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        # `x: int = 1` is `x = 1`; a bare `x: int` binds nothing at run time
        if node.value is None:
            return ast.Pass()
        return self.visit(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno))


def distinct_asts(codes: Iterable[str]) -> int:
    """How many different programs ``codes`` hold, by ``normalise``."""
    return len({normalise(c) for c in codes})


# --------------------------------------------------------------------------------------------------- n-grams


def tokens(code: str) -> list[str]:
    """Python tokens of ``code`` (comments and blank lines dropped; structure kept as NEWLINE/INDENT/DEDENT)."""
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _SKIP_TOKENS:
                continue
            if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                out.append(tokenize.tok_name[tok.type])
            else:
                out.append(tok.string)
    except (tokenize.TokenError, SyntaxError, ValueError):  # unbalanced brackets, bad indentation: fall back
        return code.split()
    return out


def ngrams(code: str, n: int = 4) -> set[tuple[str, ...]]:
    """The set of token n-grams of ``code`` (a code shorter than n tokens is one gram)."""
    toks = tokens(code)
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def pairwise_distance(codes: Sequence[str], n: int = 4) -> float | None:
    """Mean Jaccard distance between the n-gram sets of every pair of ``codes``; None for fewer than two codes."""
    if len(codes) < 2:
        return None
    grams = [ngrams(c, n) for c in codes]
    distances = []
    for a, b in combinations(grams, 2):
        union = len(a | b)
        distances.append(1.0 - len(a & b) / union if union else 0.0)
    return math.fsum(distances) / len(distances)


# --------------------------------------------------------------------------------------------------- aggregate


def diversity(codes_by_problem: Mapping[str, Sequence[str]], n: int = 4) -> dict[str, Any]:
    """Both measures per problem, averaged over the problems that have kept codes.

    ``mean_distinct_asts``: distinct programs per problem; ``mean_distinct_ratio``: the same over the number of kept
    codes (1: no two alike); ``mean_pairwise_distance``: over the problems with at least two codes.
    """
    per_problem = {pid: (len(codes), distinct_asts(codes), pairwise_distance(codes, n))
                   for pid, codes in codes_by_problem.items() if codes}
    distances = [d for _, _, d in per_problem.values() if d is not None]

    def mean(values: list[float]) -> float | None:
        return math.fsum(values) / len(values) if values else None

    return {
        "problems": len(per_problem),
        "codes": sum(c for c, _, _ in per_problem.values()),
        "mean_codes": mean([c for c, _, _ in per_problem.values()]),
        "mean_distinct_asts": mean([k for _, k, _ in per_problem.values()]),
        "mean_distinct_ratio": mean([k / c for c, k, _ in per_problem.values()]),
        "problems_with_pairs": len(distances),
        "mean_pairwise_distance": mean(distances),
        "ngram": n,
    }
