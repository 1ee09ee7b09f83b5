"""Loading Keras-2 ``.h5`` weight files by layer name, with a report of what matched.

Keras 3 still reads the published ssd_keras files with
``model.load_weights(path, by_name=True)``, but it skips silently every layer whose
name is only in the file or only in the model, so a typo or a renamed layer leaves
random weights behind without a word. `load_weights_by_name` loads the same way and
returns a `WeightLoadReport` that lists the loaded layers, the layers of the file and
of the model that were not matched, and every shape or weight-count mismatch.
"""

import dataclasses

import numpy as np

from ssd_keras.utils.files import open_hdf5


def h5_text(value):
    """The text of an HDF5 attribute value (h5py gives bytes or str)."""
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def weights_group(f):
    """The group of an open Keras-2 ``.h5`` file that holds its layers: the root of a
    weights file (``save_weights``), ``model_weights`` of a whole model (``save``)."""
    return f["model_weights"] if "model_weights" in f else f


def _layers_group(f, path):
    group = weights_group(f)
    if "layer_names" not in group.attrs:
        raise ValueError(
            f"{path} is not a Keras-2 weights file: it has no 'layer_names' attribute. "
            "Files saved by Keras 3 end in '.weights.h5' and load with model.load_weights(path)."
        )
    return group


def read_legacy_h5(path):
    """The weights of a Keras-2 weights file (``save_weights`` layout), by layer.

    Args:
        path: the ``.h5`` file.

    Returns:
        dict layer name -> list of ``(weight name, array)`` in the file's order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if it is not an HDF5 file in the Keras-2 weights layout (a full
            model file is read from its ``model_weights`` group).
    """
    with open_hdf5(path, "Weights file", FileNotFoundError, ValueError) as f:
        group = _layers_group(f, path)
        layers = {}
        for layer_name in (h5_text(n) for n in group.attrs["layer_names"]):
            layer_group = group[layer_name]
            names = [h5_text(n) for n in layer_group.attrs.get("weight_names", [])]
            layers[layer_name] = [(name, np.asarray(layer_group[name])) for name in names]
        return layers


def layers_with_weights(path):
    """The names of the layers that have weights in a Keras-2 ``.h5`` file, in its order,
    from its attributes alone (no weight is read). Raises as `read_legacy_h5`."""
    with open_hdf5(path, "Weights file", FileNotFoundError, ValueError) as f:
        group = _layers_group(f, path)
        names = (h5_text(n) for n in group.attrs["layer_names"])
        return [name for name in names if len(group[name].attrs.get("weight_names", []))]


@dataclasses.dataclass
class WeightLoadReport:
    """What `load_weights_by_name` did.

    Attributes:
        loaded: names of the layers whose weights were set.
        file_only: layers with weights in the file that the model does not have.
        model_only: layers of the model with weights that the file does not have
            (they keep their current, usually random, values).
        mismatches: ``(layer, message)`` for each layer whose weights were not loaded
            because their number or shapes differ.
    """

    loaded: list = dataclasses.field(default_factory=list)
    file_only: list = dataclasses.field(default_factory=list)
    model_only: list = dataclasses.field(default_factory=list)
    mismatches: list = dataclasses.field(default_factory=list)

    @property
    def complete(self):
        """True if every weight of the model and of the file was matched and loaded."""
        return not (self.file_only or self.model_only or self.mismatches)

    def __str__(self):
        lines = [f"Loaded {len(self.loaded)} layers."]
        if self.mismatches:
            lines.append(f"Not loaded, mismatched ({len(self.mismatches)}):")
            lines += [f"  {layer}: {message}" for layer, message in self.mismatches]
        if self.file_only:
            lines.append(f"In the file but not in the model ({len(self.file_only)}): {', '.join(self.file_only)}")
        if self.model_only:
            lines.append(
                f"In the model but not in the file, left as they were ({len(self.model_only)}): "
                f"{', '.join(self.model_only)}"
            )
        return "\n".join(lines)


def _mismatch(file_weights, variables):
    if len(file_weights) != len(variables):
        return f"the file has {len(file_weights)} weights, the layer {len(variables)}"
    shapes = [
        f"{name}: file {tuple(value.shape)} vs model {tuple(variable.shape)}"
        for (name, value), variable in zip(file_weights, variables)
        if tuple(value.shape) != tuple(variable.shape)
    ]
    return "; ".join(shapes) or None


def load_weights_by_name(model, filepath, skip_mismatch=False, verbose=False):
    """Loads a Keras-2 weights file into the layers of `model` with the same names.

    Each layer's weights are taken in the Keras-2 order, trainable then
    non-trainable (kernel, bias; BatchNormalization's gamma, beta, moving mean,
    moving variance; L2Normalization's gamma), like
    ``model.load_weights(path, by_name=True)``.

    Args:
        model: a built Keras model.
        filepath: a Keras-2 ``.h5`` weights file (e.g. the published
            ``VGG_VOC0712_SSD_300x300_iter_120000.h5``).
        skip_mismatch: if False, a layer whose weights differ in number or shape
            raises (after nothing was loaded); if True it is skipped and reported.
        verbose: print the report.

    Returns:
        a `WeightLoadReport`.

    Raises:
        FileNotFoundError, ValueError: for a missing or unreadable file, or a
            mismatch when `skip_mismatch` is False (the message names the layers).
    """
    file_layers = read_legacy_h5(filepath)
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    report = WeightLoadReport()
    report.file_only = [name for name, weights in file_layers.items() if weights and name not in model_layers]
    report.model_only = [name for name in model_layers if not file_layers.get(name)]
    assignments = []
    for name, file_weights in file_layers.items():
        layer = model_layers.get(name)
        if layer is None or not file_weights:
            continue
        variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
        problem = _mismatch(file_weights, variables)
        if problem:
            report.mismatches.append((name, problem))
        else:
            assignments.append((name, variables, [value for _, value in file_weights]))
    if report.mismatches and not skip_mismatch:
        raise ValueError(
            f"Weights of {filepath} do not fit {len(report.mismatches)} layer(s) of the model (nothing was loaded; "
            "pass skip_mismatch=True to load the rest):\n"
            + "\n".join(f"  {layer}: {msg}" for layer, msg in report.mismatches)
        )
    for name, variables, values in assignments:
        for variable, value in zip(variables, values):
            variable.assign(value.astype(variable.dtype))
        report.loaded.append(name)
    if verbose:
        print(report)
    return report
