"""Training that survives faults, shown with the real ``ssd-keras train`` in fresh processes:
kill -9 at a random step or while a checkpoint is written, then ``--resume latest``, ends
with the uninterrupted run's weights, optimizer state and learning rate; a damaged newest
checkpoint, a NaN loss, a full disk, a folder that cannot be written and a batch worker
that dies are each reported, and leave the last good checkpoint.

Faults are planted from outside the package (``fault_injection/sitecustomize.py``, with
``SSD_KERAS_FAULT``): the process kills itself with SIGKILL at the chosen point, as
``kill -9`` would."""

import glob
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import fault_env, shared_folder

import ssd_keras.layers  # noqa: F401  (registers the layers for loading the models written)
from ssd_keras.models.files import verify

EPOCHS, STEPS_PER_EPOCH = 3, 4  # 14 images, batch 4: each epoch ends with a batch of 2
KILLED = -9


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    return make_shapes_dataset(
        str(tmp_path_factory.mktemp("data") / "shapes"), n_trainval=14, n_test=4, seed=1, verbose=False
    )


def train(data, out, *extra, fault=None, timeout=600, backend="tensorflow", save_every=True):
    """``ssd-keras train`` of SSD7 for 3 epochs, a resume point after every step (unless not `save_every`)."""
    script = os.path.join(os.path.dirname(sys.executable), "ssd-keras")
    if not os.path.exists(script):
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    argv = [
        script,
        "train",
        "--model",
        "ssd7",
        "--image-size",
        "64x64",
        "--batch-size",
        "4",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
        "--lr-schedule",
        "steps",
        "--lr-boundaries",
        "2",
        "--augment",
        "flip",
        "--epochs",
        str(EPOCHS),
        "--seed",
        "0",
        *(["--save-every", "1"] if save_every else []),
        "--quiet",
        "--classes",
        ",".join(data["classes"][1:]),
        "--out",
        str(out),
        "--data-format",
        "voc",
        "--images-dir",
        data["images_dir"],
        "--image-set",
        data["trainval"],
        "--annotations",
        data["annotations_dir"],
        *extra,
    ]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("SSD_KERAS_FAULT", None)
    if fault:
        env.update(fault_env(fault))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def final_state(out):
    """Weights, optimizer variables (momenta, iterations, learning rate) and the log of a finished run."""
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    with open(os.path.join(out, "training_log.csv")) as f:
        log = [line.split(",") for line in f.read().split()]
    return (
        [np.asarray(w) for w in model.get_weights()],
        [np.asarray(v) for v in model.optimizer.variables],
        float(model.optimizer.learning_rate),
        log,
    )


def assert_same_run(out, reference):
    weights, optimizer, lr, log = final_state(out)
    ref_weights, ref_optimizer, ref_lr, ref_log = reference
    # Measured: bit-identical on TensorFlow's CPU kernels; 1e-6 allows other machines' float rounding.
    for got, expected in zip(weights + optimizer, ref_weights + ref_optimizer):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert lr == ref_lr == pytest.approx(0.001)  # divided by 10 at epoch 3
    assert [row[0] for row in log] == [row[0] for row in ref_log] == ["epoch", "0", "1", "2"]
    for row, ref_row in zip(log[1:], ref_log[1:]):  # a resumed epoch's loss includes the batches before the kill
        assert float(row[1]) == pytest.approx(float(ref_row[1]), rel=1e-6)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The uninterrupted run, made once for all pytest-xdist workers (`shared_folder`)."""
    with shared_folder(tmp_path_factory, "fault_tolerance_reference") as out:
        if not (out / "model.keras").exists():
            shutil.rmtree(out, ignore_errors=True)  # what a failed run of another worker left
            result = train(data, out)
            assert result.returncode == 0, result.stderr[-3000:]
        return final_state(out)


def _resume(data, out):
    result = train(data, out, "--resume", "latest")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_kill_9_at_a_random_step_then_resume_gives_the_uninterrupted_run(data, reference, tmp_path):
    # Step 10 (drawn once from 1-11 with seed 0): in the third epoch, the learning rate already
    # divided. The tests below kill at step 6 (JAX, PyTorch, materialized) and 7, a batch
    # worker at step 5, and in the writing of a checkpoint.
    step = 10
    killed = train(data, tmp_path, fault=f"kill-at-step:{step}")
    assert killed.returncode == KILLED
    assert not os.path.exists(tmp_path / "model.keras")
    _resume(data, tmp_path)
    assert_same_run(tmp_path, reference)


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.slow
def test_kill_9_then_resume_under_jax_and_pytorch_gives_the_uninterrupted_run(data, tmp_path, backend):
    # JAX keeps the variables out of the model during an epoch (Keras syncs them back for a
    # callback that asks); PyTorch runs op by op. Measured: the same weights to the bit.
    result = train(data, tmp_path / "reference", backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert train(data, tmp_path / "killed", fault="kill-at-step:6", backend=backend).returncode == KILLED
    result = train(data, tmp_path / "killed", "--resume", "latest", backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(tmp_path / "killed", final_state(tmp_path / "reference"))


@pytest.mark.slow
def test_sigterm_stops_after_the_batch_with_a_resume_point_and_resume_gives_the_uninterrupted_run(
    data, reference, tmp_path
):
    # As a cluster preempts a job. Without --save-every the only resume point in the middle of
    # an epoch is the one the signal makes: step 6 is batch 2 of epoch 2.
    stopped = train(data, tmp_path, fault="terminate-at-step:6", save_every=False)
    assert stopped.returncode == 128 + 15, stopped.stderr[-3000:]
    point = tmp_path / "checkpoints" / "resume" / "step-00000006.keras"
    assert f"SIGTERM: training stopped; {point} goes on at epoch 2, batch 3 (--resume latest)" in stopped.stderr
    assert sorted(os.listdir(tmp_path / "checkpoints" / "resume")) == [point.name] and not os.path.exists(
        tmp_path / "model.keras"
    )
    _resume(data, tmp_path)
    assert_same_run(tmp_path, reference)


@pytest.mark.slow
def test_ctrl_c_at_the_last_batch_of_an_epoch_ends_the_epoch_then_stops(data, tmp_path):
    stopped = train(data, tmp_path, fault=f"interrupt-at-step:{STEPS_PER_EPOCH}", save_every=False)
    assert stopped.returncode == 128 + 2, stopped.stderr[-3000:]
    [checkpoint] = glob.glob(str(tmp_path / "checkpoints" / "epoch-01_loss-*.keras"))
    assert f"SIGINT: training stopped; {checkpoint} goes on at epoch 2, batch 1" in stopped.stderr
    with open(tmp_path / "training_log.csv") as f:
        assert [line.split(",")[0] for line in f.read().split()] == ["epoch", "0"]  # the epoch's row, once
    assert not os.path.exists(tmp_path / "model.keras")


@pytest.mark.slow
def test_kill_9_while_a_checkpoint_is_written_then_resume(data, reference, tmp_path):
    write = int(np.random.default_rng(7).integers(2, EPOCHS * STEPS_PER_EPOCH))
    killed = train(data, tmp_path, fault=f"kill-in-checkpoint:{write}")
    assert killed.returncode == KILLED
    # The half-written file is a temporary one; every checkpoint under its own name is complete.
    temporaries = glob.glob(str(tmp_path / "checkpoints" / "**" / ".*.tmp.keras"), recursive=True)
    assert len(temporaries) == 1
    for path in glob.glob(str(tmp_path / "checkpoints" / "**" / "*.keras"), recursive=True):
        verify(path, require_info=True)
    result = _resume(data, tmp_path)
    assert not glob.glob(str(tmp_path / "checkpoints" / "**" / ".*.tmp.keras"), recursive=True)  # cleaned up
    assert "removed" in (tmp_path / "train.log").read_text()
    assert result.returncode == 0
    assert_same_run(tmp_path, reference)


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(data, reference, tmp_path):
    assert train(data, tmp_path, fault="kill-at-step:7").returncode == KILLED
    newest = tmp_path / "checkpoints" / "resume" / "step-00000006.keras"
    data_bytes = newest.read_bytes()
    newest.write_bytes(data_bytes[: len(data_bytes) // 2])  # truncated, as by a crash of the disk or a copy
    result = _resume(data, tmp_path)
    assert f"Skipping checkpoint {newest}" in result.stderr and "truncated or damaged" in result.stderr
    assert (
        "resuming from" in (tmp_path / "train.log").read_text()
        and "step-00000005.keras" in (tmp_path / "train.log").read_text()
    )
    assert_same_run(tmp_path, reference)


@pytest.mark.slow
def test_a_nan_loss_stops_training_naming_the_epoch_batch_and_files(data, tmp_path):
    result = train(data, tmp_path, fault="nan-at-step:6")  # epoch 2, batch 2
    assert result.returncode == 1
    assert "The loss became nan at epoch 2, batch 2 (step 6)" in result.stderr
    log = (tmp_path / "train.log").read_text()
    line = next(line for line in log.splitlines() if "The batch's images:" in line)
    files = line.split("The batch's images: ")[1].split(", ")
    assert len(files) == 4 and all(f.startswith(data["images_dir"]) and os.path.isfile(f) for f in files)
    # Nothing was saved after the NaN: the newest checkpoint is step 5's, and it is finite.
    steps = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "checkpoints" / "resume" / "*.keras")))
    assert steps[-1] == "step-00000005.keras" and not os.path.exists(tmp_path / "model.keras")
    assert f"The last good checkpoint is {tmp_path / 'checkpoints' / 'resume' / 'step-00000005.keras'}" in result.stderr
    model = keras.saving.load_model(str(tmp_path / "checkpoints" / "resume" / "step-00000005.keras"))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(data, tmp_path):
    result = train(data, tmp_path, fault="enospc-in-checkpoint:3")
    assert result.returncode == 1
    assert "No space left on device" in result.stderr and "step-00000003.keras" in result.stderr
    previous = tmp_path / "checkpoints" / "resume" / "step-00000002.keras"
    assert verify(str(previous), require_info=True)["training"]["global_step"] == 2
    assert not glob.glob(str(tmp_path / "checkpoints" / "**" / ".*.tmp.keras"), recursive=True)


def _make_read_only(folder):
    if os.geteuid() == 0:  # root ignores permission bits; an immutable folder stops it
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("cannot make a folder read-only for root here (chattr)")
        return lambda: subprocess.run(["chattr", "-i", str(folder)])
    os.chmod(folder, 0o555)
    return lambda: os.chmod(folder, 0o755)


@pytest.mark.slow
def test_an_output_folder_that_cannot_be_written_is_reported_and_nothing_changes(data, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    assert train(data, tmp_path, fault="kill-at-step:3").returncode == KILLED
    before = {path: open(path, "rb").read() for path in glob.glob(str(checkpoints / "**" / "*.keras"), recursive=True)}
    undo = _make_read_only(checkpoints)
    try:
        result = train(data, tmp_path, "--resume", "latest")
    finally:
        undo()
    assert result.returncode == 1
    assert f"Cannot write to the output folder {checkpoints}" in result.stderr
    after = {path: open(path, "rb").read() for path in glob.glob(str(checkpoints / "**" / "*.keras"), recursive=True)}
    assert after == before


@pytest.mark.slow
def test_a_dying_batch_worker_stops_training_cleanly_and_resume_goes_on(data, reference, tmp_path):
    result = train(
        data, tmp_path, "--processes", "--workers", "2", fault="kill-worker-at-step:5", timeout=300
    )  # no hang
    assert result.returncode == 1
    assert "Batch worker process" in result.stderr and "died" in result.stderr and "--resume latest" in result.stderr
    # Batches depend on their number only, not on the workers: the run ends as the reference.
    assert _resume(data, tmp_path).returncode == 0
    assert_same_run(tmp_path, reference)


# `ssd-keras train --materialize` (the demo's way): each epoch's batches built up front, one
# `fit` on the arrays; a resumed epoch rebuilds its arrays (seeded by the batch numbers) and
# cuts them at the checkpoint's step. With the SSD augmentation and a short last batch.
MATERIALIZED = ("--materialize", "--augment", "ssd", "--in-memory")


@pytest.mark.slow
def test_kill_9_in_materialized_training_then_resume_gives_the_uninterrupted_run(data, tmp_path):
    reference = tmp_path / "reference"
    result = train(data, reference, *MATERIALIZED)
    assert result.returncode == 0, result.stderr[-3000:]
    killed = tmp_path / "killed"
    assert train(data, killed, *MATERIALIZED, fault="kill-at-step:6").returncode == KILLED  # epoch 2, batch 2
    result = train(data, killed, *MATERIALIZED, "--resume", "latest")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(killed, final_state(reference))


def test_a_checkpoint_from_before_the_per_image_loss_resumes_with_its_batches_counted_full(tmp_path):
    # Earlier checkpoints stored the loss of the epoch so far as a sum over batches (of the
    # batch means) and their number; the batches before a mid-epoch checkpoint were full.
    import types

    from ssd_keras.training.recorder import TrainingRecorder

    old = dict(epoch=1, batch=2, global_step=6, steps_per_epoch=4, loss_sum=2 * 13.0, loss_count=2)
    recorder = TrainingRecorder(str(tmp_path), 4, dataset=types.SimpleNamespace(batch_size=4, epoch=0), state=old)
    assert recorder.start_epoch(1) == 2
    assert (recorder.base_total, recorder.base_images) == (8 * 13.0, 8)
    assert recorder._epoch_loss((2 * 11.0, 2)) == pytest.approx((8 * 13.0 + 2 * 11.0) / 10)  # then a short batch of 2
    assert recorder.start_epoch(2) == 0 and recorder.base_images == 0  # the next epoch starts afresh


def test_the_files_named_for_a_bad_batch_follow_the_rows_when_images_were_dropped(tmp_path):
    # Training from an epoch's arrays, fit cuts them into batches of 4 rows; where a data
    # set batch lost an image (no box left after augmentation), a training batch takes rows
    # of two data set batches, and the files of both are named.
    import types

    from ssd_keras.training.recorder import TrainingRecorder

    class Batches:  # the keras_dataset interface batch_files reads; pass order: item i at position i
        batch_size, epoch_length = 4, 3
        data_generator = types.SimpleNamespace(filenames=[f"img{i}.jpg" for i in range(12)])

        def _batch_indices(self, step):
            k = step % self.epoch_length
            return list(range(4 * k, 4 * k + 4))

    recorder = TrainingRecorder(str(tmp_path), 3, dataset=Batches())
    assert recorder.batch_files(1, 1) == ["img4.jpg", "img5.jpg", "img6.jpg", "img7.jpg"]  # from a keras_dataset
    recorder.batch_sizes = [4, 4, 4]  # nothing dropped: the same batches
    assert recorder.batch_files(1, 1) == ["img4.jpg", "img5.jpg", "img6.jpg", "img7.jpg"]
    recorder.batch_sizes = [3, 4, 4]  # batch 0 lost an image: 11 rows; training batches of rows 0-3, 4-7, 8-10
    assert recorder.batch_files(0, 0) == [f"img{i}.jpg" for i in range(8)]  # rows 0-2 of batch 0, row 3 of batch 1
    assert recorder.batch_files(0, 1) == [f"img{i}.jpg" for i in range(4, 12)]  # rows 4-6 of batch 1, row 7 of batch 2
    assert recorder.batch_files(0, 2) == [f"img{i}.jpg" for i in range(8, 12)]  # rows 8-10: batch 2 only


def test_a_json_result_that_fails_halfway_leaves_the_earlier_file(tmp_path):
    # metrics.json, detections.json and COCO results go through `write_json`; `json.dump`
    # writes as it goes, so a plain open() would leave half of the new file.
    import json

    from ssd_keras.utils.files import write_json

    path = tmp_path / "metrics.json"
    write_json(str(path), {"mAP": 0.5}, indent=2)
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(str(path), {"mAP": 0.6, "AP": [0.6, object()]}, indent=2)
    assert json.loads(path.read_text()) == {"mAP": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]  # no temporary file left


@pytest.mark.slow
def test_resume_auto_is_one_command_for_the_first_start_and_every_restart(data, reference, tmp_path):
    # As a preemptible job re-runs its command: killed at step 1 (before the first checkpoint,
    # so nothing to resume), then at two steps drawn with seed 3, then let finish.
    later = sorted(int(s) for s in np.random.default_rng(3).choice(np.arange(2, EPOCHS * STEPS_PER_EPOCH), 2, False))
    for step in (1, *later):
        killed = train(data, tmp_path, "--resume", "auto", fault=f"kill-at-step:{step}")
        assert killed.returncode == KILLED, killed.stderr[-3000:]
    result = train(data, tmp_path, "--resume", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "train.log").read_text()
    assert log.count("training ssd7 for 3 epochs") == 2  # the first start, and the restart that found no checkpoint
    assert log.count("resuming from") == 2
    assert_same_run(tmp_path, reference)


@pytest.mark.slow
def test_a_damaged_epoch_checkpoint_is_named_whatever_part_is_damaged(data, reference, tmp_path):
    # Epoch checkpoints only (no --save-every): killed in epoch 3, with epoch-01 and epoch-02
    # written. epoch-02 cut to a third has no readable info (its step): ordered by its name it
    # was passed over in silence for epoch-01.
    assert train(data, tmp_path, fault="kill-at-step:10", save_every=False).returncode == KILLED
    [newest] = glob.glob(str(tmp_path / "checkpoints" / "epoch-02_*.keras"))
    content = open(newest, "rb").read()
    open(newest, "wb").write(content[: len(content) // 3])
    result = train(data, tmp_path, "--resume", "auto", save_every=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Skipping checkpoint {newest}: it is truncated or damaged" in result.stderr
    assert "epoch-01_" in (tmp_path / "train.log").read_text().split("resuming from")[1].splitlines()[0]
    assert_same_run(tmp_path, reference)


@pytest.mark.slow
def test_save_every_minutes_writes_resume_points_by_the_clock(data, reference, tmp_path):
    # 6 ms: after every step (a step takes longer), where --save-every would be needed otherwise.
    killed = train(data, tmp_path, "--save-every-minutes", "0.0001", fault="kill-at-step:7", save_every=False)
    assert killed.returncode == KILLED
    assert sorted(os.listdir(tmp_path / "checkpoints" / "resume")) == ["step-00000005.keras", "step-00000006.keras"]
    result = train(data, tmp_path, "--save-every-minutes", "0.0001", "--resume", "auto", save_every=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(tmp_path, reference)
