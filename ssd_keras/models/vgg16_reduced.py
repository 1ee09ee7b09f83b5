"""The SSD base network: VGG-16 with fc6/fc7 turned into (dilated) convolutions.

Liu et al. (2016, §3) start from VGG-16 trained on ImageNet, replace pool5 by a 3x3
stride-1 pooling, and turn the fully connected fc6 and fc7 into convolutions with
fewer channels: fc6 becomes a 3x3 convolution with dilation 6 and 1024 filters, fc7 a
1x1 convolution with 1024 filters, their weights subsampled from the fully connected
ones (every 4th unit, and every 3rd position of fc6's 7x7 receptive field, the
"atrous" trick of DeepLab-LargeFOV). The published
``VGG_ILSVRC_16_layers_fc_reduced.h5`` holds exactly these weights; this module also
computes them from `keras.applications.VGG16` so that training can start without it.
"""

import h5py
import keras
import numpy as np

from ssd_keras.models.heads import conv2d
from ssd_keras.utils.files import atomic_write

# (block, number of 3x3 convolutions, filters) of VGG-16.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def vgg16_reduced_base(x, l2_regularization):
    """Builds conv1_1 .. conv5_3, pool1 .. pool5, fc6 and fc7 on `x`.

    Returns:
        dict with the 'conv4_3' and 'fc7' tensors, the two the SSD models tap.
    """
    taps = {}
    for block, n_convs, filters in VGG16_BLOCKS:
        for i in range(1, n_convs + 1):
            x = conv2d(filters, (3, 3), f"conv{block}_{i}", l2_regularization, activation="relu")(x)
        if block == 4:
            taps["conv4_3"] = x
        if block < 5:
            x = keras.layers.MaxPooling2D((2, 2), strides=(2, 2), padding="same", name=f"pool{block}")(x)
        else:
            x = keras.layers.MaxPooling2D((3, 3), strides=(1, 1), padding="same", name="pool5")(x)
    x = conv2d(1024, (3, 3), "fc6", l2_regularization, activation="relu", dilation_rate=(6, 6))(x)
    taps["fc7"] = conv2d(1024, (1, 1), "fc7", l2_regularization, activation="relu")(x)
    return taps


def extra_feature_layers(x, specs, l2_regularization):
    """The extra layers after fc7: per spec a 1x1 conv, optional padding, a strided conv.

    Args:
        x: the fc7 tensor.
        specs: ``(name, filters_1x1, filters, kernel, stride, pad)`` per block, building
            ``{name}_1``, ``{name}_padding`` (if `pad`) and ``{name}_2``.

    Returns:
        list of the ``{name}_2`` tensors.
    """
    outputs = []
    for name, filters_1x1, filters, kernel, stride, pad in specs:
        x = conv2d(filters_1x1, (1, 1), f"{name}_1", l2_regularization, activation="relu")(x)
        if pad:
            x = keras.layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_padding")(x)
        x = conv2d(
            filters,
            (kernel, kernel),
            f"{name}_2",
            l2_regularization,
            activation="relu",
            strides=(stride, stride),
            padding="valid",
        )(x)
        outputs.append(x)
    return outputs


def vgg16_fc_reduced_weights(vgg16=None):
    """The weights of the reduced VGG-16 base, from a Keras VGG-16 with its top.

    Args:
        vgg16: a `keras.applications.VGG16(include_top=True)` model (its ImageNet
            weights are downloaded by Keras if None is given; tests pass a randomly
            initialised one).

    Returns:
        dict mapping the SSD layer names ('conv1_1' .. 'conv5_3', 'fc6', 'fc7') to
        ``[kernel, bias]`` NumPy arrays in Keras' Conv2D layout (kh, kw, in, out).

    Raises:
        ValueError: if the model is not a VGG-16 with the fully connected top.
    """
    if vgg16 is None:
        vgg16 = keras.applications.VGG16(include_top=True, weights="imagenet")
    layers = {layer.name: layer for layer in vgg16.layers}
    if "fc1" not in layers or "fc2" not in layers:
        raise ValueError("Expected a keras.applications.VGG16 model with include_top=True (layers 'fc1' and 'fc2').")
    weights = {}
    for block, n_convs, _ in VGG16_BLOCKS:
        for i in range(1, n_convs + 1):
            kernel, bias = layers[f"block{block}_conv{i}"].get_weights()
            weights[f"conv{block}_{i}"] = [kernel, bias]
    fc1_kernel, fc1_bias = layers["fc1"].get_weights()
    fc2_kernel, fc2_bias = layers["fc2"].get_weights()
    if fc1_kernel.shape != (7 * 7 * 512, 4096) or fc2_kernel.shape != (4096, 4096):
        raise ValueError(f"Unexpected fc1/fc2 shapes {fc1_kernel.shape}, {fc2_kernel.shape}: not a VGG-16 top.")
    # fc1 sees the flattened (7, 7, 512) pool5 output in channels-last order, so its
    # kernel is a 7x7 convolution kernel; keep rows/cols 0, 3, 6 and every 4th filter.
    fc6 = fc1_kernel.reshape(7, 7, 512, 4096)[::3, ::3, :, ::4]
    weights["fc6"] = [np.ascontiguousarray(fc6), fc1_bias[::4].copy()]
    weights["fc7"] = [np.ascontiguousarray(fc2_kernel[::4, ::4].reshape(1, 1, 1024, 1024)), fc2_bias[::4].copy()]
    return weights


def write_legacy_h5(path, layer_weights, weight_names=("kernel:0", "bias:0")):
    """Writes a weights file in the Keras-2 `save_weights` layout.

    The layout of the published ssd_keras files: root attribute ``layer_names``, per
    layer a group with attribute ``weight_names`` (``'{layer}/kernel:0'`` ...) and the
    arrays at ``f[layer][layer][weight]``. `model.load_weights(path, by_name=True)`
    reads it. The file is written to a temporary name and renamed when complete.

    Args:
        path: destination; should end in '.h5' (not '.weights.h5', which Keras 3
            reads as its own format).
        layer_weights: dict layer name -> list of arrays, in the layer's weight order.
        weight_names: default names of each layer's weights, by position.
    """
    with atomic_write(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs["layer_names"] = np.array([name.encode("utf8") for name in layer_weights])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for name, values in layer_weights.items():
            group = f.create_group(name)
            names = [
                f"{name}/{weight_names[i]}" if i < len(weight_names) else f"{name}/weight_{i}:0"
                for i in range(len(values))
            ]
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
            for weight_name, value in zip(names, values):
                group.create_dataset(weight_name, data=np.asarray(value))


def save_vgg16_fc_reduced(path, vgg16=None):
    """Writes ``VGG_ILSVRC_16_layers_fc_reduced.h5``'s equivalent from a Keras VGG-16.

    Load it into an SSD300/SSD512 with ``model.load_weights(path, by_name=True)``.

    Returns:
        the path.
    """
    write_legacy_h5(path, vgg16_fc_reduced_weights(vgg16))
    return path


class VggSSD:
    """The parts that make SSD300 and SSD512 different: the extra feature layers after
    fc7 and the names of the predictor layers (`vgg_ssd` builds either from them), and
    for the error messages its name and the smallest height and width it takes."""

    def __init__(self, extra_layers, sources, name="SSD", min_size=1):
        self.extra_layers = tuple(extra_layers)
        self.sources = tuple(sources)
        self.name = name
        self.min_size = min_size


def vgg_ssd(
    architecture,
    image_size,
    n_classes,
    mode,
    l2_regularization,
    subtract_mean,
    divide_by_stddev,
    swap_channels,
    confidence_thresh,
    iou_threshold,
    top_k,
    nms_max_output_size,
    return_predictor_sizes,
    **anchor_args,
):
    """What `ssd_300` and `ssd_512` do with their arguments (the two differ only in
    `architecture`, a `VggSSD`, and their defaults): check and resolve them, then build.

    `anchor_args` are the builders' anchor arguments (min_scale, max_scale, scales,
    aspect_ratios_global, aspect_ratios_per_layer, two_boxes_for_ar1, steps, offsets,
    clip_boxes, variances, coords, normalize_coords).
    """
    from ssd_keras.models.heads import resolve_model_config

    config = resolve_model_config(
        len(architecture.sources),
        image_size,
        n_classes,
        mode,
        min_size=(architecture.name, architecture.min_size),
        **anchor_args,
    )
    decode_args = dict(
        confidence_thresh=confidence_thresh,
        iou_threshold=iou_threshold,
        top_k=top_k,
        nms_max_output_size=nms_max_output_size,
    )
    return build_vgg_ssd(
        config,
        architecture.sources,
        architecture.extra_layers,
        l2_regularization,
        (subtract_mean, divide_by_stddev, swap_channels),
        decode_args,
        return_predictor_sizes,
    )


def build_vgg_ssd(
    config, source_names, extra_layers, l2_regularization, preprocessing, decode_args, return_predictor_sizes
):
    """SSD300/SSD512 from their parts: preprocessing, reduced VGG-16, extra layers, heads.

    Args:
        config: the `ModelConfig` of `ssd_keras.models.heads.resolve_model_config`.
        source_names: predictor prefixes; the first two are 'conv4_3_norm' and 'fc7',
            the rest the ``{name}_2`` outputs of `extra_layers` in order.
        extra_layers: specs for `extra_feature_layers`.
        l2_regularization: weight decay of every convolution.
        preprocessing: ``(subtract_mean, divide_by_stddev, swap_channels)``.
        decode_args: confidence_thresh, iou_threshold, top_k, nms_max_output_size.
        return_predictor_sizes: as for the builders.
    """
    from ssd_keras.layers.l2_normalization import L2Normalization
    from ssd_keras.layers.preprocessing import input_preprocessing
    from ssd_keras.models.heads import CAFFE_NAMES, finish_model, predictor_heads

    inputs = keras.Input(shape=(config.img_height, config.img_width, config.img_channels))
    x = input_preprocessing(inputs, *preprocessing)
    taps = vgg16_reduced_base(x, l2_regularization)
    extras = extra_feature_layers(taps["fc7"], extra_layers, l2_regularization)
    # conv4_3's features are on a larger scale than the later layers': normalize them
    # per position and learn a per-channel scale (ParseNet; Liu et al. 2016, §3.1).
    conv4_3_norm = L2Normalization(gamma_init=20, name="conv4_3_norm")(taps["conv4_3"])
    sources = list(zip(source_names, [conv4_3_norm, taps["fc7"]] + extras))
    predictions, conf_outputs = predictor_heads(sources, config, CAFFE_NAMES, l2_regularization)
    return finish_model(inputs, predictions, conf_outputs, config, return_predictor_sizes, decode_args)
