"""The house rules of ``femo/``: the ground imports no stage, a stage never imports a later one,
and no module imports itself back through a cycle (README, "Where things live")."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from femo.platform.submit import build_zip

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "femo"

#: The shared ground, then the stages in the order of the flow (README's map).
GROUND = "platform"
STAGES = ("ingest", "sources", "faces", "analytics", "ml", "serve")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def femo_imports(path: Path, modules: set[str]) -> set[str]:
    """The femo modules ``path`` imports, anywhere in it (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: femo_imports(path, modules) - {name} for name, path in paths.items()}


def package_of(module: str) -> str | None:
    """``platform`` for ``femo.platform.x``; None for ``femo`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


GRAPH = import_graph()


def test_every_module_lives_in_a_known_package() -> None:
    loose = [m for m in GRAPH if package_of(m) not in (None, GROUND, *STAGES)]
    assert not loose, f"modules outside the ground and the stages: {loose}"


def test_the_graph_is_read() -> None:
    # The rules below mean nothing if the parser finds no edges.
    assert "femo.platform.settings" in GRAPH["femo.platform.session"]
    assert "femo.ingest.images" in GRAPH["femo.sources.fetch"]


def test_the_ground_imports_no_stage() -> None:
    bad = {
        m: sorted(d for d in deps if package_of(d) in STAGES)
        for m, deps in GRAPH.items()
        if package_of(m) == GROUND
    }
    assert not {m: d for m, d in bad.items() if d}


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_later_stage(stage: str) -> None:
    later = set(STAGES[STAGES.index(stage) + 1 :])
    bad = {
        m: sorted(d for d in deps if package_of(d) in later)
        for m, deps in GRAPH.items()
        if package_of(m) == stage
    }
    assert not {m: d for m, d in bad.items() if d}


def test_no_import_cycles() -> None:
    # Depth-first search; a grey node met again closes a cycle.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_the_executor_zip_holds_the_whole_package(tmp_path: Path) -> None:
    # What --py-files ships: femo/ with every subpackage and sql/, importable from the zip alone
    # (a zip rooted one folder too deep once shipped femo/platform/ as a top-level `platform`,
    # shadowing the standard library's module in every job).
    target = build_zip(tmp_path / "femo.zip")
    names = set(zipfile.ZipFile(target).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}
    assert expected <= names
    assert "sql/insights/nth_image.sql" in names
    assert not {n for n in names if not n.startswith(("femo/", "sql/"))}
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import platform; platform.system(); "
        "import femo.platform.session, femo.sources.fetch, femo.faces.detection; "
        "print(femo.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(target))
