"""`EpochProgress`, the training bars of ``ssd-keras train`` and the demo."""

import io

from ssd_keras.training.progress import EpochProgress, _duration


def test_the_training_bar_counts_training_steps_only_so_its_rate_is_the_steps():
    out = io.StringIO()
    progress = EpochProgress(epochs=2, file=out)
    progress.set_params({"steps": 3})
    progress.building(0, 5)
    for _ in range(5):
        progress.built()
    building_bar = progress.bar
    assert (building_bar.n, building_bar.total, building_bar.postfix) == (5, 5, "building batches")
    progress.on_epoch_begin(0)
    # A bar of its own: the time left is the steps' time, not a mean with the batches built.
    assert progress.bar is not building_bar and building_bar.disable is True  # the building bar is closed
    assert (progress.bar.n, progress.bar.total, progress.bar.postfix) == (0, 3, "training")
    assert progress.bar.desc.startswith("epoch 1/2")
    for step in range(3):
        progress.on_train_batch_end(step, {"loss": 2.0 - step})
    assert progress.bar.n == 3 and progress.bar.postfix == "loss=0.0000"
    progress.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.25, "lr": 0.1})
    assert progress.bar is None
    assert "epoch 1/2: loss 0.5000, val_loss 0.2500; 0 s (0 s elapsed, about 0 s left)\n" in out.getvalue()

    # The next epoch without building (data set batches): the epoch's clock starts again.
    progress.on_epoch_begin(1)
    assert (progress.bar.n, progress.bar.total, progress.bar.desc) == (0, 3, "epoch 2/2")
    progress.on_train_end()
    assert progress.bar is None


def test_the_time_left_is_the_mean_epoch_times_the_epochs_left():
    out = io.StringIO()
    progress = EpochProgress(epochs=5, initial_epoch=1, file=out)
    progress.set_params({"steps": 1})
    progress.epoch_seconds = [30.0]  # one epoch of 30 s done (measured ones are appended)
    progress.on_epoch_begin(1)
    progress.epoch_start -= 90.0  # as if this epoch took 90 s
    progress.start -= 120.0
    progress.on_epoch_end(1, {"loss": 1.0})
    # The mean of 30 s and 90 s, times the three epochs left (3/5, 4/5, 5/5): 3 min.
    assert out.getvalue().endswith("epoch 2/5: loss 1.0000; 90 s (2 min 00 s elapsed, about 3 min 00 s left)\n")


def test_durations_read_as_people_write_them():
    assert [_duration(s) for s in (0, 59.4, 59.6, 61, 3599, 3600, 3725)] == [
        "0 s",
        "59 s",
        "1 min 00 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 00 min",
        "1 h 02 min",
    ]
