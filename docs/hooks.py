"""MkDocs hooks: pages generated from the code and from the raw benchmark results.

* ``<!-- ssd-keras-help -->`` becomes the ``--help`` text of ``ssd-keras`` and of each of its
  commands, so the command-line reference cannot drift from the flags.
* ``<!-- results: NAME -->`` becomes the table of ``benchmarks/results/NAME.json`` (written by
  the benchmark scripts with ``--results``), with the machine, the date and the command that
  produced it, so the Performance page shows what the raw results say.
"""

import argparse
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELP_MARKER = "<!-- ssd-keras-help -->"
RESULTS_MARKER = re.compile(r"<!-- results: ([\w.-]+) -->")


def _help_sections():
    from ssd_keras.cli.parser import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps its help to the terminal's width
    parser = build_parser()
    sections = ["## ssd-keras\n\n```text\n" + parser.format_help().rstrip() + "\n```\n"]
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        sections.append(f"## ssd-keras {name}\n\n```text\n" + sub.format_help().rstrip() + "\n```\n")
    return "\n".join(sections)


def _cell(value):
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def results_table(name):
    """The Markdown of one results file: what and where it was measured, then its table."""
    with open(os.path.join(ROOT, "benchmarks", "results", f"{name}.json"), encoding="utf-8") as f:
        record = json.load(f)
    machine = record["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
    where = (
        f"{machine['cpu']}, {machine['cores']} cores"
        + (f", {machine['memory_gib']} GiB" if "memory_gib" in machine else "")
        + f"; {record['date']}; Python {machine['python']}"
        + (f", {versions}" if versions else "")
    )
    lines = [
        f"*{record['title']}.* {record['notes'].rstrip('.')}." if record.get("notes") else f"*{record['title']}.*",
        "",
        f"Measured on {where}. Reproduce: `{record['command']}`.",
        "",
        "| " + " | ".join(record["columns"]) + " |",
        "|" + "---|" * len(record["columns"]),
    ]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in record["rows"]]
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown, page, config, files):
    """Replaces the markers with the generated text."""
    if HELP_MARKER in markdown:
        markdown = markdown.replace(HELP_MARKER, _help_sections())
    return RESULTS_MARKER.sub(lambda match: results_table(match.group(1)), markdown)
