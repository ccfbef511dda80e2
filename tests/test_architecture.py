"""The package's shape: data flows one way, rooms stay small, nothing hides a cycle.

The stages below are the pipeline of ``docs/architecture.md``, lowest first. A module may import
(at module level) only from its own stage or lower ones; importing the package's own modules
inside functions is not allowed (it is how cycles used to hide), with one sanctioned reach:
the result objects render themselves (``TrendResult.report()`` / ``.plot()``), so
``results`` may import its renderers lazily. Function-level imports of third-party packages
are allowed only for the heavy ones listed in ``HEAVY`` (``import scalingfit`` stays light).

These tests read the source with :mod:`ast`; they run nothing of the package except in
``test_each_module_imports_alone``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scalingfit"

#: stage of each module or subpackage (its first dotted component below ``scalingfit``)
STAGES = {
    "_version": 0, "exceptions": 0,
    "verdicts": 1, "options": 1, "multitest": 1, "diagnostics": 1, "wording": 1,
    "registry": 2, "records": 2, "lmeval": 2, "harness": 2, "readers": 2, "data": 2, "simulate": 2,
    "curves": 3, "metareg": 3, "bootstrap": 3, "shapes": 3,
    "results": 4,
    "evidence": 5, "bayes": 5, "population": 5,
    "fit": 6,
    "claims": 7,
    "engines": 8, "assessment": 8, "many": 8,
    "blocks": 9, "report": 9, "documents": 9, "writers": 9, "repro": 9, "multitask": 9,
    "plotting": 9, "screen": 9,
    "cli": 10, "__main__": 10, "runner": 10, "__init__": 10,
}

#: the only lazy imports of the package's own modules: renderers of the result objects
SANCTIONED_LAZY = {("results", "report"), ("results", "plotting"), ("many", "screen")}

#: third-party packages heavy enough to import inside functions (never at ``import scalingfit``)
HEAVY = {"pymc", "pytensor", "nutpie", "numba", "arviz", "xarray", "matplotlib", "seaborn",
         "statsmodels", "torch", "transformers", "tokenizers", "accelerate", "safetensors",
         "threadpoolctl", "submitit", "joblib", "dask", "distributed", "inspect_ai", "tqdm",
         "datasets"}

#: size limits of the house (STYLE.md section 11; issue 14): lines per module and per function
#: (a function's docstring is not counted: numpydoc Parameters/Returns sections are long by design)
MODULE_LINES = 600
FUNCTION_LINES = 80


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        name = ".".join(parts) or "__init__"
        yield name, path


def _resolve(module: str, node: ast.ImportFrom | ast.Import, alias=None) -> list[str]:
    """Internal module names an import statement refers to ('' for third-party ones)."""
    if isinstance(node, ast.Import):
        return [a.name[len("scalingfit."):] for a in node.names
                if a.name.startswith("scalingfit.")]
    if node.level == 0:
        if node.module and node.module.startswith("scalingfit"):
            base = node.module[len("scalingfit."):] if node.module != "scalingfit" else ""
        else:
            return []
    else:
        here = module.split(".") if module != "__init__" else []
        is_pkg = (PACKAGE / Path(*here) / "__init__.py").exists() if here else True
        anchor = here if is_pkg else here[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    if node.module is None or base == "":
        return [f"{base}.{a.name}".strip(".") for a in node.names]
    return [base]


def _stage(name: str) -> int:
    top = name.split(".")[0] or "__init__"
    if top not in STAGES:
        raise AssertionError(f"module {name!r} has no stage: add it to STAGES (and to "
                             "docs/architecture.md)")
    return STAGES[top]


def _imports(name, path):
    """(internal target, lineno, at_module_level) and (third-party top name, lineno, level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(n) for n in tree.body}
    for stmt in tree.body:            # imports under `if TYPE_CHECKING` / try at top count too
        if isinstance(stmt, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(stmt)}
    internal, external = [], []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        module_level = id(node) in top_level
        targets = [t for t in _resolve(name, node) if t is not None]
        if targets or (isinstance(node, ast.ImportFrom) and node.level):
            internal += [(t, node.lineno, module_level) for t in targets]
        else:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            external += [(n.split(".")[0], node.lineno, module_level) for n in names]
    return internal, external


def _internal_target(t: str) -> str:
    """The module an internal import names (``from .x import y`` may name a function)."""
    parts = t.split(".")
    while parts:
        cand = PACKAGE / Path(*parts)
        if cand.with_suffix(".py").exists() or (cand / "__init__.py").exists():
            return ".".join(parts)
        parts = parts[:-1]
    return "__init__"


def _graph():
    edges, lazy, heavy_ok, violations = {}, [], [], []
    for name, path in _modules():
        internal, external = _imports(name, path)
        for target, line, module_level in internal:
            target = _internal_target(target)
            if target == name:
                continue
            if module_level:
                edges.setdefault(name, set()).add(target)
            else:
                lazy.append((name, target, line))
        for top, line, module_level in external:
            if not module_level and top not in HEAVY and top not in sys.stdlib_module_names:
                violations.append(f"{name}:{line} imports {top} inside a function (not heavy)")
    return edges, lazy, violations


def test_every_module_has_a_stage():
    for name, _ in _modules():
        _stage(name)


def test_no_import_reaches_a_higher_stage():
    edges, _, _ = _graph()
    bad = [f"{a} (stage {_stage(a)}) imports {b} (stage {_stage(b)})"
           for a, targets in edges.items() for b in targets
           if _stage(b) > _stage(a) and a != "__init__" and not a.startswith(b + ".")
           and not (a.split(".")[0] == b.split(".")[0])]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    edges, _, _ = _graph()
    # packages import their own submodules and vice versa through __init__: collapse a
    # subpackage's modules into one node so that its internal structure is not a "cycle"
    node = lambda m: m.split(".")[0] if m != "__init__" else m
    graph = {}
    for a, targets in edges.items():
        for b in targets:
            if node(a) != node(b):
                graph.setdefault(node(a), set()).add(node(b))
    state, path = {}, []

    def visit(n):
        state[n] = "open"
        path.append(n)
        for m in graph.get(n, ()):
            if state.get(m) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
            if m not in state:
                visit(m)
        path.pop()
        state[n] = "done"

    for n in list(graph):
        if n not in state:
            visit(n)


def test_no_function_level_import_of_the_package_except_renderers():
    _, lazy, _ = _graph()
    bad = [f"{a}:{line} imports {b} inside a function" for a, b, line in lazy
           if (a.split(".")[0], b.split(".")[0]) not in SANCTIONED_LAZY]
    assert not bad, "\n".join(bad)


def test_function_level_imports_are_only_heavy_dependencies():
    _, _, violations = _graph()
    assert not violations, "\n".join(violations)


def test_nothing_imports_the_cli():
    edges, lazy, _ = _graph()
    users = sorted({a for a, ts in edges.items() for b in ts if b == "cli"}
                   | {a for a, b, _ in lazy if b == "cli"})
    assert set(users) <= {"__main__"}, users


def test_only_the_cli_modules_know_argparse():
    users = []
    for name, path in _modules():
        _, external = _imports(name, path)
        if any(top == "argparse" for top, _, _ in external):
            users.append(name)
    assert set(users) <= {"cli", "runner.cli"}, users


def test_modules_and_functions_are_small():
    big_modules, big_functions = [], []
    for name, path in _modules():
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MODULE_LINES:
            big_modules.append(f"{name}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                doc = node.body[0] if node.body else None
                if (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                        and isinstance(doc.value.value, str)):
                    length -= doc.end_lineno - doc.lineno + 1   # numpydoc text is not code
                if length > FUNCTION_LINES:
                    big_functions.append(f"{name}.{node.name}: {length} lines")
    assert not big_modules and not big_functions, "\n".join(big_modules + big_functions)


@pytest.mark.parametrize("name", [n for n, _ in _modules() if n not in ("__main__",)])
def test_each_module_imports_alone(name):
    """Each module imports in a fresh interpreter on its own (no hidden order dependence)."""
    module = "scalingfit" if name == "__init__" else f"scalingfit.{name}"
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
