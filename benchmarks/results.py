"""Raw benchmark results as JSON, with the machine, date and command that produced them.

Every CPU benchmark takes ``--results DIR``: besides printing its table it writes
``DIR/<name>.json`` (``make bench`` writes into ``benchmarks/results/``, which is committed).
The documentation's Performance page renders its tables from these files
(``docs/hooks.py``), so the page shows what the files say.
"""

import datetime
import json
import os
import platform
import sys


def add_argument(parser):
    """The ``--results DIR`` flag."""
    parser.add_argument(
        "--results", metavar="DIR", help="also write the figures as JSON into DIR (make bench: benchmarks/results)"
    )


def machine():
    """The CPU, cores, memory and software the figures were measured with."""
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gib"] = round(
                int(next(line.split()[1] for line in f if line.startswith("MemTotal"))) / 2**20, 1
            )
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in ("numpy", "keras", "tensorflow", "jax", "torch", "cv2", "onnxruntime"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            versions[name] = module.__version__
    info["versions"] = versions
    return info


def save(args, name, title, columns, rows, notes=""):
    """Writes ``<args.results>/<name>.json`` if ``--results`` was given; returns its path (or None).

    Args:
        args: the parsed arguments (``args.results``).
        name: the file's name, without ``.json`` (with the backend where that matters).
        title: what was measured, in a line.
        columns: the table's column names.
        rows: the table's rows, lists of plain values in the order of `columns`.
        notes: how it was measured (inputs, repeats, statistic).
    """
    if not getattr(args, "results", None):
        return None
    os.makedirs(args.results, exist_ok=True)
    script = os.path.relpath(sys.argv[0], os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    backend = sys.modules["keras"].backend.backend() if "keras" in sys.modules else None
    record = {
        "name": name,
        "title": title,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([*([f"KERAS_BACKEND={backend}"] if backend else []), "python", script, *sys.argv[1:]]),
        "backend": backend,
        "machine": machine(),
        "columns": list(columns),
        "rows": [list(row) for row in rows],
        "notes": notes,
    }
    path = os.path.join(args.results, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    return path
