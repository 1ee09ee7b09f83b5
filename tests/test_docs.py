"""The documentation runs: every Python block of the README and of ``docs/`` executes (with
Sybil), page by page, in order, on the synthetic shapes and stand-ins for the published
weight files; every ``ssd-keras`` line parses with the real parser; every JSON example
parses; every docstring example runs. A block that cannot run says why in a
``<!-- skip: next "why" -->`` comment before it, and a test fails for a block that does
neither. Also: the README's length, docstring coverage, the licence, the changelog's version."""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, write_keras2_weights
from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
# What a fenced block may be: Python (run), bash (its ssd-keras lines parsed), JSON (parsed),
# text (output and listings, not code).
LANGUAGES = {"python", "bash", "json", "text"}
FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", re.M | re.S)
SKIP = re.compile(r'<!-- skip: next "([^"]+)" -->\s*\Z')


def _check_bash(example):
    """Every ``ssd-keras`` command of a bash block (continuation lines joined) parses."""
    from ssd_keras.cli.parser import build_parser

    text = example.parsed.replace("\\\n", " ")
    commands = [line.split("#")[0].strip() for line in text.splitlines() if line.strip().startswith("ssd-keras ")]
    if not commands:
        return f"a bash block without an ssd-keras command (mark it skip with a reason): {text[:80]!r}"
    for command in commands:
        argv = shlex.split(command)[1:]
        argv = [arg for arg in argv if arg != "..."]  # "ssd-keras train ... --resume latest": the flags shown
        try:
            build_parser().parse_args(argv) if argv[0] != "train" or "--data-format" in argv else _parse_partial(argv)
        except SystemExit:
            return f"does not parse: {command}"
    return None


def _parse_partial(argv):
    """``ssd-keras train ... --flag`` (other flags elided): the flags given parse, with a data format added."""
    from ssd_keras.cli.parser import build_parser

    build_parser().parse_args([*argv, "--data-format", "voc"])


def _check_json(example):
    json.loads(example.parsed)


SYBIL = Sybil(
    parsers=[
        PythonCodeBlockParser(),
        SkipParser(),
        CodeBlockParser(language="bash", evaluator=_check_bash),
        CodeBlockParser(language="json", evaluator=_check_json),
    ],
)


# ------------------------------------------------------------------------------------ the data


def _write_csv_and_coco(shapes, root):
    """The shapes' training split as a CSV labels file and as a COCO annotations file."""
    import cv2

    from ssd_keras.data.loading import load_dataset

    data = load_dataset(
        "voc",
        [shapes["images_dir"]],
        [shapes["trainval"]],
        [shapes["annotations_dir"]],
        classes=shapes["classes"],
        verbose=False,
    )
    for folder in ("csv/images", "coco/images"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    rows = ["image_name,xmin,xmax,ymin,ymax,class_id"]
    coco = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": n} for i, n in enumerate(shapes["classes"][1:], 1)],
    }
    for i, (path, labels) in enumerate(zip(data.filenames, data.labels)):
        name = os.path.basename(path)
        for folder in ("csv/images", "coco/images"):
            shutil.copy(path, os.path.join(root, folder, name))
        height, width = cv2.imread(path).shape[:2]
        coco["images"].append({"id": i, "file_name": name, "height": height, "width": width})
        for c, xmin, ymin, xmax, ymax in np.asarray(labels):
            rows.append(f"{name},{xmin:g},{xmax:g},{ymin:g},{ymax:g},{int(c)}")
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": i,
                    "category_id": int(c),
                    "iscrowd": 0,
                    "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                    "area": (xmax - xmin) * (ymax - ymin),
                }
            )
    Path(root, "csv", "labels.csv").write_text("\n".join(rows) + "\n")
    Path(root, "csv", "classes.txt").write_text("\n".join(shapes["classes"][1:]) + "\n")
    Path(root, "coco", "annotations.json").write_text(json.dumps(coco))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The data the pages use: the synthetic shapes as Pascal VOC (``data/shapes``), CSV
    (``data/csv``) and COCO (``data/coco``) files."""
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    root = tmp_path_factory.mktemp("docs_data")
    shapes = make_shapes_dataset(str(root / "shapes"), n_trainval=16, n_test=8, seed=0, verbose=False)
    _write_csv_and_coco(shapes, str(root))
    return root


# The published weight files the pages name, as stand-ins of the same layout (random weights).
STAND_INS = {
    "VGG_VOC0712_SSD_300x300_iter_120000.h5": ("ssd300", 20, "pascal"),
    "VGG_VOC0712_SSD_300x300_ft_iter_120000.h5": ("ssd300", 20, "coco"),
    "VGG_VOC0712_SSD_512x512_iter_120000.h5": ("ssd512", 20, "pascal"),
    "VGG_coco_SSD_300x300_iter_400000.h5": ("ssd300", 80, "coco"),
    "VGG_ILSVRC_16_layers_fc_reduced.h5": ("vgg16", 20, "pascal"),
}


def _stand_in(path, name):
    """Writes a Keras-2 weights file of the model that `name` holds, with random weights."""
    from ssd_keras.models.presets import build, builder_kwargs

    architecture, n_classes, scales = STAND_INS[name]
    model, _ = build(
        "ssd300" if architecture == "vgg16" else architecture,
        builder_kwargs("ssd300" if architecture == "vgg16" else architecture, n_classes, scales=scales),
    )
    skip = (
        []
        if architecture != "vgg16"
        else [
            layer.name
            for layer in model.layers
            if not layer.name.startswith(("conv", "fc"))
            or layer.name.startswith(("conv6", "conv7", "conv8", "conv9"))
            or "mbox" in layer.name
        ]
    )
    write_keras2_weights(path, model, skip=skip)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """Makes the stand-in files a page needs, once per module."""
    folder = tmp_path_factory.mktemp("stand_ins")

    def make(names):
        paths = {}
        for name in names:
            path = folder / name
            if not path.exists():
                _stand_in(str(path), name)
            paths[name] = path
        return paths

    return make


# ------------------------------------------------------------------------------------ the pages


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_every_block_of_the_page_runs(page, workspace, stand_ins, tmp_path, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "agg")
    os.symlink(workspace, tmp_path / "data")
    text = Path(page).read_text(encoding="utf-8")
    python = "\n".join(source for language, source in FENCE.findall(text) if language == "python")
    for name, path in stand_ins([name for name in STAND_INS if name in python]).items():
        os.symlink(path, tmp_path / name)
    try:
        for example in SYBIL.parse(Path(page)):
            try:
                example.evaluate()
            except unittest.SkipTest:
                pass  # the block after a skip comment (which says why); the page goes on
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_every_code_block_runs_or_says_why_not():
    found = {}
    for page in PAGES:
        text = Path(page).read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            language, source = match.groups()
            where = f"{os.path.relpath(page, ROOT)}, line {text.count(chr(10), 0, match.start()) + 1}"
            assert language in LANGUAGES, f"{where}: a block of {language!r}; give one of {sorted(LANGUAGES)}"
            skipped = SKIP.search(text[: match.start()])
            if language == "bash" and not skipped:
                assert "ssd-keras " in source, (
                    f"{where}: a bash block with no ssd-keras line needs a skip comment that says why"
                )
            found[language] = found.get(language, 0) + 1
    # Sybil reads every Python block (a fence it did not read would go unchecked).
    read = sum(
        type(example.region.evaluator).__name__ == "PythonEvaluator"
        for page in PAGES
        for example in SYBIL.parse(Path(page))
    )
    assert read == found["python"] >= 15


def test_the_skip_comments_give_a_reason():
    for page in PAGES:
        for comment in re.findall(r"^<!-- skip:[^>]*-->", Path(page).read_text(encoding="utf-8"), re.M):
            assert re.fullmatch(r'<!-- skip: next "[^"]{8,}" -->', comment), f"{page}: {comment}"


# ------------------------------------------------------------------------------------ docstrings

DOCTEST_MODULES = sorted(
    os.path.relpath(path, ROOT)
    for path in glob.glob(os.path.join(ROOT, "ssd_keras", "**", "*.py"), recursive=True)
    if ">>>" in Path(path).read_text(encoding="utf-8")
)
DOCSTRINGS = Sybil(parsers=[DocTestParser()], patterns=["*.py"])


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_the_docstring_examples_run(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    examples = list(DOCSTRINGS.parse(Path(ROOT, module)))
    assert examples, f"{module}: no example found"
    for example in examples:
        example.evaluate()


def test_docstring_coverage_is_at_least_95_percent():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "interrogate",
            "--config",
            os.path.join(ROOT, "pyproject.toml"),
            "-q",
            os.path.join(ROOT, "ssd_keras"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------ the files


def test_the_readme_is_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 200


def test_the_version_is_the_changelogs_newest():
    import ssd_keras

    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", f.read(), re.M)
    assert versions[0] == ssd_keras.__version__ and versions == sorted(
        versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True
    )


def test_the_licence_is_apache_2_0():
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_the_command_line_reference_shows_every_command():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(os.path.join(ROOT, "docs"))
    page = hooks.on_page_markdown(Path(ROOT, "docs", "reference", "cli.md").read_text(), None, None, None)
    for command in ("train", "evaluate", "predict", "sample-weights", "demo"):
        assert f"## ssd-keras {command}\n" in page and f"usage: ssd-keras {command}" in page
    assert "--save-every STEPS" in page and hooks.HELP_MARKER not in page


def test_the_performance_page_renders_every_results_file():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(os.path.join(ROOT, "docs"))
    text = Path(ROOT, "docs", "performance.md").read_text()
    named = set(hooks.RESULTS_MARKER.findall(text))
    files = {Path(p).stem for p in glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.json"))}
    assert named == files, f"results files not on the page: {files - named}; missing files: {named - files}"
    page = hooks.on_page_markdown(text, None, None, None)
    assert "<!-- results:" not in page and page.count("Reproduce: `") == len(files)


@pytest.mark.slow
def test_the_figures_are_drawn_by_their_script(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "docs", "make_figures.py"),
            "--smoke",
            "--demo-dir",
            str(tmp_path / "demo"),
            "--out",
            str(tmp_path / "images"),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, MPLBACKEND="agg"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("detections.png", "loss_curve.png", "pr_curves.png"):
        with open(tmp_path / "images" / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.isfile(os.path.join(ROOT, "docs", "images", name))
