"""The layout: a core that imports torch and the standard library only, a lab around it that the core
never imports, and no import cycle anywhere in the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scaling"
LAB = ("scaling.coord", "scaling.sweep", "scaling.models", "scaling.data", "scaling.cli", "scaling.peers")
HEAVY = ("scipy", "matplotlib", "pandas", "yaml", "mnist1d", "mup", "unit_scaling")  # torch itself imports tqdm


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
CORE = sorted(m for m in MODULES if not m.startswith(LAB) and m != "scaling.__main__")  # __main__ is the CLI's


def imports(path: Path, top_level_only: bool) -> set[str]:
    """The ``scaling`` modules a file imports (at module level only, or anywhere in it)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scaling"):
            for a in node.names:  # `from scaling import nn` imports the module scaling.nn
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("scaling"))
    return found




def test_the_core_imports_torch_and_the_standard_library_only() -> None:
    """What ``import scaling`` adds to ``sys.modules`` beyond what torch brought: scaling's own and stdlib."""
    code = ("import sys, torch; before = set(sys.modules); import scaling; "
            "print('\\n'.join(sorted(set(sys.modules) - before)))")
    new = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    added = [m for m in new.split() if m]
    foreign = [m for m in added if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "scaling"]
    assert not foreign, foreign
    assert not [m for m in added if m.startswith(LAB)], "the core imported the lab"
    code = f"import sys, scaling; print(' '.join(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert heavy.stdout.split() == []


@pytest.mark.parametrize("name", CORE)
def test_the_core_never_imports_the_lab_not_even_lazily(name: str) -> None:
    lab = [m for m in imports(MODULES[name], top_level_only=False) if m.startswith(LAB)]
    assert not lab, f"{name} imports {lab}"


def test_no_import_cycle() -> None:
    """Module-level imports between the package's modules form a DAG. (Importing ``a.b`` runs ``a`` first,
    which is no cycle: a module's own ancestors are left out of its edges.)"""
    graph = {name: {m for m in imports(path, top_level_only=True)
                    if m in MODULES and m != name and not name.startswith(m + ".")}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*stack[stack.index(dep):], dep])}")
            if dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_library_modules_hold_no_argparse() -> None:
    """The command line lives in scaling.cli; every other module is library code."""
    offenders = [n for n, p in MODULES.items() if not n.startswith("scaling.cli") and "argparse" in p.read_text()]
    assert not offenders, offenders


NOTES_OUTSIDE = tuple(name + ext for name, ext in (("DESIGN", ".md"), ("STYLE", ".md"), ("../", "shared")))


def test_the_project_stands_on_its_own() -> None:
    """No tracked source, test, README or paper text points at notes outside the repository."""
    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.tex", "*.toml"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    offenders = [f for f in files if any(s in (root / f).read_text(errors="replace")
                                         for s in NOTES_OUTSIDE)]
    assert offenders == [], offenders
