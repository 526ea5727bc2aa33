"""Data flows one way: input -> state -> worker -> tools; detectors and alerting know nothing of streams."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

#: A package may import from its own layer and the ones below it, never from one above.
LAYERS = ["detectors", "alerting", "streams.input", "streams.state", "streams.worker", "streams.tools"]
#: Modules at the top of `streams/`, below every streams layer: settings and friends.
BASE = {"streams.errors", "streams.settings", "streams.kafka_client", "streams.gc_tuning"}


def modules() -> dict[str, Path]:
    found = {}
    for package in ("streams", "detectors", "alerting"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        out |= {name for name in names if name in known}
    return out


def layer(module: str) -> int | None:
    if module in BASE:
        return 1  # with alerting: settings import detectors' Severity, everything imports settings
    matches = [i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")]
    return matches[-1] if matches else None


def test_no_module_imports_from_a_layer_above_its_own():
    known = modules()
    upward = [f"{module} -> {target}" for module, path in known.items() for target in imports(path, known)
              if layer(module) is not None and layer(target) is not None and layer(target) > layer(module)]
    assert upward == []


def test_there_is_no_import_cycle():
    known = modules()
    graph = {module: imports(path, known) for module, path in known.items()}
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(module):], module]))
        if module in done:
            return
        for target in graph[module]:
            visit(target, [*trail, module])
        done.add(module)

    for module in graph:
        visit(module, [])
