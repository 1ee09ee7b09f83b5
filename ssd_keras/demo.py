"""The main job: synthetic shapes data set -> SSD7 training -> VOC mAP -> saved model -> drawings.

``make demo`` and ``ssd-keras demo`` run `run_demo`. On a 2-core CPU it takes a few
minutes and reaches an 11-point VOC mAP above 0.8 on the held-out split.

The configuration is the SSD7 notebook's (`presets.builder_kwargs('ssd7', ...)`) with
three changes that matter for a short run from scratch: a 128x128 input, SSD300's
variances ``[0.1, 0.1, 0.2, 0.2]`` instead of SSD7's ``[1, 1, 1, 1]`` (the localisation
loss then weighs 5-10 times more, and boxes tighten in a few hundred steps instead of
thousands), and no neutral zone in matching (``neg_iou_limit=0.5``; with the
notebook's 0.3, anchors that overlap an object by 0.3-0.5 never learn to be background
and end up as confident, badly placed duplicates).
"""

import os
import time

DEMO = dict(image_size=(128, 128, 3), n_trainval=800, n_test=120, epochs=22, batch_size=4, learning_rate=1e-3)
SMOKE = dict(image_size=(64, 64, 3), n_trainval=16, n_test=8, epochs=1, batch_size=4, learning_rate=1e-3)
MODEL_OVERRIDES = dict(variances=[0.1, 0.1, 0.2, 0.2])
ENCODER_OVERRIDES = dict(neg_iou_limit=0.5)
N_DRAWN = 12


def run_demo(out_dir="demo_output", data_dir=None, epochs=None, smoke=False, seed=0, verbose=True, resume=None):
    """Runs the demo; returns the VOC results dict (see `evaluation.metrics.evaluate_voc`).

    Args:
        out_dir: where everything goes (a demo there before is replaced, unless `resume`).
        data_dir: where the data set goes (default: ``out_dir/shapes``).
        epochs: training epochs (default: the demo's 22, or 1 with `smoke`).
        smoke: a tiny run (16 training images of 64x64) that checks the plumbing in seconds.
        seed: seeds the data set, the weights and the augmentation.
        verbose: progress bars and messages.
        resume: 'latest' goes on from the newest checkpoint in `out_dir` of an interrupted
            demo with the same settings; it ends as that demo would have.

    Returns:
        the results of `evaluate_voc` ('mAP', 'AP', 'num_gt', 'ap_mode') with the classes,
        the final loss and the seconds of each part, as written to ``metrics.json``.

    Writes under `out_dir`: ``shapes/`` (the data set, unless `data_dir`), the training
    outputs of `training.train` (``checkpoints/``, ``training_log.csv``, ``model.keras``),
    ``ssd7_shapes.keras`` (the inference model, decoding included),
    ``predictions/*.png`` (detections in colour, ground truth in white),
    ``predictions/detections.json`` and ``metrics.json``.
    """
    from ssd_keras.training import train

    settings = dict(SMOKE if smoke else DEMO)
    if epochs is not None:
        settings["epochs"] = epochs
    start = time.time()
    train_set, test_set, classes = _make_data(data_dir or os.path.join(out_dir, "shapes"), settings, seed, verbose)
    times = {"data_seconds": time.time() - start}
    model, history = train(demo_config(out_dir, classes, settings, seed, verbose, resume), train_set)
    times["training_seconds"] = time.time() - start - times["data_seconds"]
    results, model_path = _evaluate_and_save(model, test_set, classes, settings, out_dir, verbose)
    times["evaluation_seconds"] = time.time() - start - times["data_seconds"] - times["training_seconds"]
    drawn = _draw(model, test_set, classes, os.path.join(out_dir, "predictions"))
    return _report(results, classes, history, settings, model_path, drawn, out_dir, start, times)


def demo_config(out_dir, class_names, settings=DEMO, seed=0, verbose=True, resume=None):
    """The demo's `TrainingConfig`: the SSD7 notebook's model with the changes of the module
    docstring, Adam, horizontal flips, each epoch's batches built first by two worker processes."""
    from ssd_keras.training import TrainingConfig

    epochs = settings["epochs"]
    return TrainingConfig(
        model="ssd7",
        out_dir=out_dir,
        class_names=tuple(class_names),
        image_size=settings["image_size"],
        epochs=epochs,
        batch_size=settings["batch_size"],
        optimizer="adam",
        learning_rate=settings["learning_rate"],
        lr_schedule="steps",
        lr_boundaries=(max(1, round(0.75 * epochs)),),
        augment="flip",
        seed=seed,
        model_overrides=MODEL_OVERRIDES,
        encoder_overrides=ENCODER_OVERRIDES,
        materialize=True,
        workers=2,
        use_multiprocessing=True,
        verbose=int(verbose),
        resume=resume,
        overwrite=resume is None,  # a demo run again starts over
    )


def _make_data(data_dir, settings, seed, verbose):
    """Writes the synthetic shapes and reads its two splits: ``(train_set, test_set, classes)``."""
    from ssd_keras.data.loading import load_dataset
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    info = make_shapes_dataset(data_dir, settings["n_trainval"], settings["n_test"], seed=seed, verbose=verbose)
    classes = info["classes"]
    train_set, test_set = (
        load_dataset(
            "voc",
            [info["images_dir"]],
            [info[split]],
            [info["annotations_dir"]],
            classes=classes,
            in_memory=True,
            verbose=False,
        )
        for split in ("trainval", "test")
    )
    _log(
        verbose,
        f"Data set: {train_set.dataset_size} training and {test_set.dataset_size} test images of "
        f"{classes[1:]} in {data_dir}",
    )
    return train_set, test_set, classes


def _evaluate_and_save(model, test_set, classes, settings, out_dir, verbose):
    """VOC mAP on the test split, and ``ssd7_shapes.keras`` (decoding, with the class names)."""
    from ssd_keras.encoding.decoding_config import DECODING
    from ssd_keras.evaluation.metrics import evaluate_voc
    from ssd_keras.inference.loading import add_decoding
    from ssd_keras.models.files import save_model

    height, width = settings["image_size"][:2]
    detector = add_decoding(model, **DECODING.as_kwargs())
    results = evaluate_voc(detector, test_set, len(classes) - 1, height, width, batch_size=16, verbose=verbose)
    model_path = os.path.join(out_dir, "ssd7_shapes.keras")
    save_model(detector, model_path, classes)  # `ssd-keras predict` labels its boxes with these names
    return results, model_path


def _draw(model, test_set, classes, folder):
    """Drawings of the first test images (detections at the notebooks' threshold, 0.5, in
    colour; the ground truth in white) with their ``detections.json``; returns how many."""
    from ssd_keras.encoding.decoding_config import DISPLAY_DECODING
    from ssd_keras.inference.loading import add_decoding
    from ssd_keras.inference.prediction import predict_images

    shown = list(range(min(N_DRAWN, test_set.dataset_size)))
    predict_images(
        add_decoding(model, **DISPLAY_DECODING.as_kwargs()),
        [test_set.filenames[i] for i in shown],
        folder,
        classes,
        batch_size=16,
        ground_truth=[test_set.labels[i] for i in shown],
        verbose=False,
    )
    return len(shown)


def _report(results, classes, history, settings, model_path, drawn, out_dir, start, times):
    """Writes ``metrics.json`` and prints the per-class table and where everything went.

    Each part is timed on its own: data (writing and reading the data set), training alone,
    evaluation; `seconds` is the whole run, drawings and saving included.
    """
    import keras

    from ssd_keras.evaluation.metrics import format_voc_table
    from ssd_keras.utils.files import write_json

    results.update(
        classes=classes[1:],
        seconds=round(time.time() - start, 1),
        **{k: round(v, 1) for k, v in times.items()},
        final_loss=float(history.history["loss"][-1]),
        epochs=settings["epochs"],
        model=model_path,
        backend=keras.backend.backend(),
    )
    write_json(os.path.join(out_dir, "metrics.json"), results, indent=2)
    print(format_voc_table(results, classes))
    print(
        f"Saved {model_path} and {drawn} drawings in {os.path.join(out_dir, 'predictions')}; "
        f"{results['seconds']:.0f} s in all ({keras.backend.backend()} backend)."
    )
    print(f"Demo mAP (VOC 11-point, held-out split): {results['mAP']:.3f}")
    return results


def _log(verbose, message):
    if verbose:
        print(message, flush=True)
