"""Sub-sampling (and up-sampling) weight tensors along their axes, to adapt a trained
classifier layer to another set of classes.

An SSD class-prediction kernel of shape (3, 3, in, n_boxes * n_classes) holds, for
each anchor box of a cell, one block of `n_classes` output channels. Keeping the
channels of some classes in every block (and the matching bias entries) turns a
model trained on 80 COCO classes into one for, say, 8 of them, without retraining the
rest of the network (`weight_sampling_tutorial.ipynb`).
"""

import shutil

import h5py
import numpy as np

from ssd_keras.utils.files import atomic_write
from ssd_keras.utils.rng import as_rng

SSD300_CLASSIFIER_LAYERS = (
    "conv4_3_norm_mbox_conf",
    "fc7_mbox_conf",
    "conv6_2_mbox_conf",
    "conv7_2_mbox_conf",
    "conv8_2_mbox_conf",
    "conv9_2_mbox_conf",
)


def _axis_plan(instruction, size, rng, axis):
    """(source indices, target indices, target size) for one axis of the first tensor."""
    if isinstance(instruction, (list, tuple, np.ndarray)):
        indices = np.asarray(instruction, dtype=np.int64)
        if indices.size and (indices.min() < -size or indices.max() >= size):
            raise ValueError(f"Axis {axis}: index out of range for size {size}: {list(indices)}")
        return indices, np.arange(len(indices)), len(indices)
    if isinstance(instruction, bool) or not isinstance(instruction, (int, np.integer)) or instruction < 1:
        raise ValueError(f"Axis {axis}: expected a list of indices or a positive int. Received: {instruction!r}")
    n = int(instruction)
    if n == size:
        return np.arange(size), np.arange(size), size
    if n < size:  # keep index 0 (background) and a random sorted subset of the rest
        rest = np.sort(rng.choice(np.arange(1, size), n - 1, replace=False))
        return np.concatenate([[0], rest]), np.arange(n), n
    # Up-sampling: every source entry goes to index 0 or to a random sorted new position.
    positions = np.sort(rng.choice(np.arange(1, n), size - 1, replace=False))
    return np.arange(size), np.concatenate([[0], positions]), n


def sample_tensors(weights_list, sampling_instructions, axes=None, init=None, mean=0.0, stddev=0.005, rng=None):
    """Sub- or up-samples a list of tensors consistently along the first one's axes.

    Args:
        weights_list: arrays; the first has the highest rank (e.g. a conv kernel), the
            others (e.g. its bias) share some of its axes.
        sampling_instructions: one entry per axis of the first tensor: a list of
            indices (kept in that order), or an int: equal to the axis size keeps it,
            smaller keeps index 0 and a random sorted subset of the others, larger
            places all entries at index 0 and random sorted positions of a larger axis.
        axes: for each tensor after the first, the list of first-tensor axes its axes
            correspond to (a bias of a conv kernel: ``[[3]]``).
        init: per tensor, 'gaussian' (N(mean, stddev)) or 'zeros', for the new entries
            of up-sampled axes.
        mean, stddev: of the gaussian initialisation.
        rng: seed or `numpy.random.Generator`.

    Returns:
        list of the new arrays.

    Raises:
        ValueError: for instructions that do not fit the shapes.

    Examples:
        >>> kernel, bias = np.zeros((3, 3, 512, 2 * 81)), np.zeros(2 * 81)  # 2 boxes x 81 COCO classes
        >>> kernel, bias = sample_tensors([kernel, bias], [3, 3, 512, [0, 3, 8, 81, 84, 89]], axes=[[3]],
        ...                               init=['gaussian', 'zeros'])
        >>> kernel.shape, bias.shape
        ((3, 3, 512, 6), (6,))
    """
    rng = as_rng(rng)
    first = np.asarray(weights_list[0])
    if len(sampling_instructions) != first.ndim:
        raise ValueError(
            f"Expected one sampling instruction per axis of the first tensor ({first.ndim}). "
            f"Received: {len(sampling_instructions)}"
        )
    axes = list(axes or [])
    if len(axes) != len(weights_list) - 1:
        raise ValueError(
            f"Expected `axes` to map the axes of each of the {len(weights_list) - 1} other tensors. Received: {axes}"
        )
    init = list(init or ["gaussian"] * len(weights_list))
    plans = [
        _axis_plan(instruction, size, rng, i)
        for i, (instruction, size) in enumerate(zip(sampling_instructions, first.shape))
    ]
    out = []
    for k, tensor in enumerate(weights_list):
        tensor = np.asarray(tensor)
        tensor_axes = list(range(first.ndim)) if k == 0 else list(axes[k - 1])
        if len(tensor_axes) != tensor.ndim:
            raise ValueError(f"`axes[{k - 1}]`={tensor_axes} does not match tensor {k} of rank {tensor.ndim}.")
        shape = tuple(plans[a][2] for a in tensor_axes)
        if init[k] == "zeros":
            new = np.zeros(shape, dtype=tensor.dtype)
        elif init[k] == "gaussian":
            new = rng.normal(mean, stddev, shape).astype(tensor.dtype)
        else:
            raise ValueError(f"Expected `init` entries to be 'gaussian' or 'zeros'. Received: {init[k]!r}")
        source = np.ix_(*[plans[a][0] for a in tensor_axes])
        target = np.ix_(*[plans[a][1] for a in tensor_axes])
        new[target] = tensor[source]
        out.append(new)
    return out


def class_channel_indices(classes_of_interest, n_classes_source, n_channels):
    """Output channels of the chosen classes in every box block of a classifier layer:
    ``class + i * n_classes_source`` for each of the ``n_channels / n_classes_source`` boxes."""
    if n_channels % n_classes_source:
        raise ValueError(f"{n_channels} channels are not a whole number of blocks of {n_classes_source} classes.")
    classes = np.asarray(classes_of_interest, dtype=np.int64)
    return np.concatenate([classes + i * n_classes_source for i in range(n_channels // n_classes_source)]).tolist()


def subsample_classifier_weights(
    source_path,
    destination_path,
    classes_of_interest,
    n_classes_source=81,
    classifier_layers=SSD300_CLASSIFIER_LAYERS,
    rng=None,
):
    """The tutorial's workflow: copies a Keras-2 weights file and keeps, in each
    classifier layer, only the channels of `classes_of_interest`.

    Args:
        source_path: weights of a trained model (e.g. ``VGG_coco_SSD_300x300_iter_400000.h5``).
        destination_path: the new file (written under a temporary name, then renamed).
        classes_of_interest: class indices to keep, background (0) first, in the new
            order; or an int: keep background and that many minus one random classes.
        n_classes_source: classes of the source model, background included (81 for COCO).
        classifier_layers: names of the class-prediction layers (SSD300 by default;
            the localization layers do not depend on the classes).
        rng: seed or `numpy.random.Generator` for random classes.

    Returns:
        the list of kept class indices.

    Raises:
        ValueError: naming the layer whose shape does not fit, or the classes that the
            source does not have.
    """
    rng = as_rng(rng)
    if isinstance(classes_of_interest, (int, np.integer)):
        if not 1 <= classes_of_interest <= n_classes_source:
            raise ValueError(
                f"Cannot keep {classes_of_interest} random classes of a source with {n_classes_source} "
                "(background included)."
            )
        rest = np.sort(rng.choice(np.arange(1, n_classes_source), int(classes_of_interest) - 1, replace=False))
        classes_of_interest = [0] + rest.tolist()
    classes_of_interest = [int(c) for c in classes_of_interest]
    outside = [c for c in classes_of_interest if not 0 <= c < n_classes_source]
    if outside:
        raise ValueError(
            f"Classes {outside} are not classes of the source, which has {n_classes_source} (0 to "
            f"{n_classes_source - 1}, background 0 included)."
        )
    with atomic_write(destination_path, ".h5") as tmp:
        shutil.copy(source_path, tmp)
        with h5py.File(tmp, "r+") as f:
            for name in classifier_layers:
                if name not in f:
                    raise ValueError(f"{source_path} has no layer '{name}'.")
                group = f[name]
                weight_names = [n.decode("utf8") if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
                kernel_name, bias_name = weight_names[:2]
                kernel, bias = group[kernel_name][()], group[bias_name][()]
                try:
                    indices = class_channel_indices(classes_of_interest, n_classes_source, kernel.shape[-1])
                except ValueError as error:
                    raise ValueError(f"Layer '{name}': {error}") from None
                kernel, bias = sample_tensors(
                    [kernel, bias], list(kernel.shape[:-1]) + [indices], axes=[[3]], init=["gaussian", "zeros"], rng=rng
                )
                for weight_name, value in ((kernel_name, kernel), (bias_name, bias)):
                    del group[weight_name]
                    group.create_dataset(weight_name, data=value)
    return classes_of_interest
