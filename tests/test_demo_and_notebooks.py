"""The seven notebooks: each in sync with its reviewed source, ``notebooks/<name>.py``
(jupytext's percent format), and run top to bottom on the smoke configuration
(SSD_KERAS_SMOKE=1). (The demo is run as a user runs it, by the installed command, in
test_user_paths.py.)"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = [
    "ssd300_training.ipynb",
    "ssd7_training.ipynb",
    "ssd300_inference.ipynb",
    "ssd512_inference.ipynb",
    "ssd300_evaluation.ipynb",
    "ssd300_evaluation_COCO.ipynb",
    "weight_sampling_tutorial.ipynb",
]
# Notebooks that must show at least this many images (plots).
PLOTS = {
    "ssd300_training.ipynb": 2,
    "ssd7_training.ipynb": 2,
    "ssd300_inference.ipynb": 2,
    "ssd512_inference.ipynb": 2,
    "ssd300_evaluation.ipynb": 1,
    "weight_sampling_tutorial.ipynb": 1,
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_in_sync_with_its_source(name):
    # Edit notebooks/<name>.py, then `jupytext --sync notebooks/<name>.py` writes the .ipynb.
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    source = jupytext.read(os.path.join(ROOT, "notebooks", name.replace(".ipynb", ".py")))
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        notebook = nbformat.read(f, as_version=4)
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,notebooks//py:percent"
    cells = [(cell.cell_type, cell.source) for cell in notebook.cells]
    assert cells == [(cell.cell_type, cell.source) for cell in source.cells], (
        f"{name} differs from notebooks/{name[:-6]}.py"
    )
    assert all(not cell.get("outputs") for cell in notebook.cells)  # committed without outputs


# The SSD7 notebook also runs under JAX and PyTorch (the kernel inherits KERAS_BACKEND).
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.backends) if n == "ssd7_training.ipynb" else n for n in NOTEBOOKS]
)
@pytest.mark.slow
def test_notebook_runs_in_smoke_mode(name, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("SSD_KERAS_SMOKE", "1")
    # Its data, weights and models (up to 270 MB a notebook) go to pytest's folder for this
    # test, which pytest removes after three more runs; a folder of the notebook's own under
    # /tmp stays for good (one such leak per run filled this machine's disk).
    monkeypatch.setenv("SSD_KERAS_WORK_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "agg")
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        notebook = nbformat.read(f, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    ).execute()
    images = sum(
        1
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )
    assert images >= PLOTS.get(name, 0), f"{name} showed {images} plots"
    assert os.listdir(tmp_path), f"{name} wrote nothing to SSD_KERAS_WORK_DIR"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ssd300_inference.ipynb", "ssd512_inference.ipynb"])
def test_inference_notebook_runs_on_the_example_photographs_up_to_the_published_weights(name, monkeypatch):
    # Outside the smoke mode: the notebook reads the photographs in examples/ (the files it
    # names exist), shows them and builds its model; the first cell that needs the published
    # weights file (tagged) is where a user without it stops.
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.delenv("SSD_KERAS_SMOKE", raising=False)
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "agg")
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        notebook = nbformat.read(f, as_version=4)
    stop = next(
        i for i, cell in enumerate(notebook.cells) if "needs-published-weights" in cell.metadata.get("tags", [])
    )
    assert "load_weights" in notebook.cells[stop].source
    notebook.cells = notebook.cells[:stop]
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    ).execute()
    shown = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert len(shown) == 1  # the example photographs, side by side
    paths = next(cell.source for cell in notebook.cells if "image_paths = [" in cell.source)
    for path in ("examples/astronaut.jpg", "examples/chelsea.jpg", "examples/coffee.jpg"):
        assert path in paths and os.path.isfile(os.path.join(ROOT, path))
