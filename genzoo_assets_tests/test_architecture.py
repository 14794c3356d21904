"""The package's rooms hold: no import cycle, a dagster-free core, one owner of the data layout.

Imports are read from the source (``ast``), so a cycle hidden inside a function counts too: it is
still a circle in the design even where Python happens to tolerate it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import genzoo_assets

PACKAGE = Path(genzoo_assets.__file__).parent
REPO = PACKAGE.parent
LAYOUT_OWNER = PACKAGE / "core" / "layout.py"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports (``from pkg import mod`` resolves to the module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in modules:
                found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: _imports(p, modules) for m, p in modules.items()}
    # A package's __init__ importing its own submodules is how packages work, not a circle.
    return {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_the_package_imports_itself_back():
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_core_never_imports_dagster():
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "dagster" or n.startswith(("dagster.", "dagster_")) for n in names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_the_core_does_not_import_the_dagster_or_app_layers():
    graph = _graph()
    upward = [
        f"{m} -> {d}"
        for m, deps in graph.items()
        if m.startswith("genzoo_assets.core")
        for d in deps
        if d.startswith(("genzoo_assets.defs", "genzoo_assets.app", "genzoo_assets.slurm"))
    ]
    assert upward == []


# A path under the data directory built from a literal folder name: `root / "shards"`,
# "species.parquet", "catalog.duckdb". Docstrings (``shards/``) and dict keys are not paths.
LAYOUT_LITERAL = re.compile(
    r"""/\s*["'](shards|regressor|benchmark|previews|species|shape_params|pose_params|"""
    r"""control_renders|captions|prompts|images|planning)["']"""
    r"""|["'][^"'\s]*(species|frame|added)\.parquet["']|["'](catalog|results)\.duckdb["']"""
)


def test_the_layout_regex_catches_what_it_is_for():
    assert LAYOUT_LITERAL.search('out = root / "shards"')
    assert LAYOUT_LITERAL.search('p = species_dir / "species.parquet"')
    assert LAYOUT_LITERAL.search('CATALOG = "catalog.duckdb"')
    assert not LAYOUT_LITERAL.search('"num_shards": len(out["shards"])')
    assert not LAYOUT_LITERAL.search("rewrites ``species.parquet`` and")


def test_only_the_layout_module_spells_data_directory_paths():
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "bench").glob("*.py")]
    hits = [
        f"{path.relative_to(REPO)}:{i}: {line.strip()}"
        for path in sources
        if path != LAYOUT_OWNER
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if LAYOUT_LITERAL.search(line)
    ]
    assert hits == [], "spell these through genzoo_assets.core.layout:\n" + "\n".join(hits)


CONFLICT_MARKER = re.compile(r"^(<{7}|>{7}) ", re.MULTILINE)  # "=======" is also a heading rule


def test_the_conflict_marker_regex_catches_a_planted_one():
    assert CONFLICT_MARKER.search("| row |\n<<<<<<< HEAD\n| a |\n=======\n| b |\n>>>>>>> branch\n")
    assert not CONFLICT_MARKER.search("a heading\n=======\n\ntext ======= text\n")


def test_no_tracked_text_file_holds_a_merge_conflict_marker():
    """ruff fails on a marker in Python; this catches the README, docs and configs too."""
    import subprocess

    root = Path(genzoo_assets.__file__).resolve().parents[1]
    listed = subprocess.run(
        [
            "git",
            "ls-files",
            "*.md",
            "*.py",
            "*.toml",
            "*.yaml",
            "*.yml",
            "*.json",
            "*.sh",
            "Makefile",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    found = [
        name
        for name in listed.stdout.split()
        if (root / name).is_file()
        and CONFLICT_MARKER.search((root / name).read_text(errors="replace"))
    ]
    assert not found, f"merge conflict markers in {found}"


HEAVY = ("torch", "pyrender", "matplotlib", "diffusers", "transformers", "webdataset")


def test_loading_the_definitions_imports_no_model_or_render_stack():
    """The web UI's code server, the daemon, every run and step process and every `genzoo` command
    load the definitions: torch, pyrender and matplotlib come in with the step that uses them."""
    import subprocess
    import sys

    code = (
        "import sys; import genzoo_assets.definitions as d; d.defs(); "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
