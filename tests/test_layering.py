"""The package's layers: each subpackage imports only those below it (`RANKS`), so the
training engine and the command line sit on top and nothing underneath depends on them."""

import ast
import glob
import os

from conftest import ROOT

# Lower ranks first; a module may import its own subpackage and any of a lower rank. The
# layers and the loss are one rank: each registers the other's custom objects on import.
RANKS = {
    "errors": 0,
    "utils": 1,
    "boxes": 2,
    "encoding": 3,
    "layers": 4,
    "losses": 4,
    "models": 5,
    "data": 5,
    "evaluation": 6,
    "export": 7,
    "inference": 8,
    "training": 9,
    "demo": 10,
    "cli": 11,
}


def _imports(path):
    """The `ssd_keras` modules a file imports (at any depth: lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("ssd_keras.")}


def test_every_subpackage_imports_only_those_below_it():
    package = os.path.join(ROOT, "ssd_keras")
    rooms = {os.path.splitext(name)[0] for name in os.listdir(package) if not name.startswith(("_", "."))}
    assert rooms == set(RANKS), "a new subpackage needs its rank"
    wrong = []
    for path in glob.glob(os.path.join(package, "**", "*.py"), recursive=True):
        parts = os.path.relpath(path, package).split(os.sep)
        room = os.path.splitext(parts[0])[0]
        if room not in RANKS:
            continue  # __init__, __main__ and _original_paths: the entry points
        for name in _imports(path):
            target = name.split(".")[1]
            if target != room and RANKS[target] >= RANKS[room] and {room, target} != {"layers", "losses"}:
                wrong.append(f"{os.path.relpath(path, ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)
