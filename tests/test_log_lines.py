"""TensorFlow's native start-up lines: hidden as TF_CPP_MIN_LOG_LEVEL says, everything else kept."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from ssd_keras.utils.backend import filter_log_lines, filtered_stderr, tensorflow_log_level

NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = b"I0000 00:00:1796235954.363712    2127 port.cc:153] oneDNN custom operations are on.\n"
WARNING = b"W0000 00:00:1796235954.363712    2127 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n"
ERROR = b"E0000 00:00:1796236210.028281    2778 util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512.\n"
FATAL = b"F1202 18:22:59.000001      17 op_kernel.cc:12] Check failed: x\n"
PLAIN = b"Epoch 1/2: loss I0000\n"


@pytest.mark.parametrize(
    "level, kept",
    [
        (0, NOTICE + INFO + WARNING + ERROR + FATAL + PLAIN),
        (1, WARNING + ERROR + FATAL + PLAIN),
        (2, ERROR + FATAL + PLAIN),
        (3, FATAL + PLAIN),
    ],
)
def test_filter_keeps_what_the_level_lets_through(level, kept):
    assert filter_log_lines(NOTICE + INFO + WARNING + ERROR + FATAL + PLAIN, level) == kept


def test_filter_keeps_lines_that_only_look_alike():
    text = (
        b"  I0000 00:00:1.0 1 a.cc:1] indented\nI0000 no location here\nWARNING: something else\nno newline at the end"
    )
    assert filter_log_lines(text, 3) == text


@pytest.mark.parametrize("value, level", [(None, 0), ("2", 2), ("3", 3), ("", 0), ("two", 0)])
def test_the_level_is_read_as_tensorflow_reads_it(value, level):
    assert tensorflow_log_level({} if value is None else {"TF_CPP_MIN_LOG_LEVEL": value}) == level


def test_filtered_stderr_replays_descriptor_2_in_order_even_after_an_error(capfd):
    with pytest.raises(RuntimeError, match="inside"):
        with filtered_stderr(2):
            os.write(2, NOTICE + b"first\n" + INFO)
            print("second", file=sys.__stderr__, flush=True)  # Python's stream on descriptor 2
            os.write(2, WARNING + ERROR)
            raise RuntimeError("inside")
    assert capfd.readouterr().err == "first\nsecond\n" + ERROR.decode()
    os.write(2, INFO)  # descriptor 2 is the real one again
    assert capfd.readouterr().err == INFO.decode()


_IMPORT_AND_PREDICT = """
import importlib.util
import sys
import numpy as np
from ssd_keras.utils.backend import hide_tensorflow_start_up_lines
hide_tensorflow_start_up_lines()
assert importlib.util.find_spec("tensorflow")  # asked before importing it, as torch._dynamo does
import tensorflow as tf
import keras
from ssd_keras.models.ssd7 import build_model
print("loader", type(tf.__spec__.loader).__name__, type(tf.__loader__).__name__, file=sys.stderr)
for mode in ("inference", "inference_fast"):
    model = build_model((64, 64, 3), 2, mode=mode, scales=[0.2, 0.4, 0.6, 0.8, 0.95], confidence_thresh=0.01)
    model.predict(np.full((2, 64, 64, 3), 100.0, "float32"), verbose=0)
print("predicted", file=sys.stderr)
"""


def _run(level, script):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL=str(level), PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


@pytest.fixture(scope="module")
def tensorflow_talks():
    """Whether this TensorFlow writes the absl notice at import when nothing hides it."""
    return NOTICE.strip() in _run(0, "import tensorflow")


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="TensorFlow's own lines")
def test_tensorflow_starts_and_decodes_quietly_at_level_2(tensorflow_talks):
    err = _run(2, _IMPORT_AND_PREDICT)
    assert b"loader SourceFileLoader SourceFileLoader" in err  # the real loader, once imported
    assert err.endswith(b"predicted\n")
    if tensorflow_talks:  # else there was nothing to hide
        assert NOTICE.strip() not in err
        assert b"] oneDNN custom operations are on" not in err
    # The decoding layers gather with int32 indices: `take_along_axis` made int64 ones, for
    # which oneDNN fell back to Eigen with an error line in every process.
    assert b"DT_INT64" not in err


def test_filtered_stderr_passes_lines_on_before_a_crash(tmp_path):
    # A line written before the process dies (here: os.abort in the block) is not lost.
    script = (
        "import os, sys, time\nfrom ssd_keras.utils.backend import filtered_stderr\nwith filtered_stderr(2):\n"
        "    os.write(2, b'I0000 00:00:1.0 1 a.cc:1] hidden\\nseen before the crash\\n')\n    time.sleep(1)\n    "
        "os.abort()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60
    )
    assert result.returncode != 0
    assert result.stderr == b"seen before the crash\n"


def test_filtered_stderr_lets_a_process_started_in_it_outlive_it():
    # The child keeps the pipe's write end: the block still ends (after at most 2 s) and the
    # child's later line still arrives.
    script = (
        "import os, subprocess, sys, time\nfrom ssd_keras.utils.backend import filtered_stderr\nstart = time.time()\n"
        "with filtered_stderr(2):\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import os, time; time.sleep(4); os.write(2, "
        'b"child\\\\n")\'])\n'
        "print(f'block ended after {time.time() - start:.0f} s', file=sys.stderr, flush=True)\nchild.wait()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr in (b"block ended after 2 s\nchild\n", b"block ended after 3 s\nchild\n")
