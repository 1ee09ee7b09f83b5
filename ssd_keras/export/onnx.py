"""ONNX export from TensorFlow, JAX and PyTorch, the decoding (NMS included) inside the graph.

`export_onnx` writes a decoding model as an ONNX file whose input is a batch of images
``(batch, height, width, 3)`` (uint8 by default, or float32 in 0-255) and whose output is
the detections ``(batch, top_k, 6)``, rows ``[class_id, confidence, xmin, ymin, xmax,
ymax]`` in the input's pixels, as the Keras model outputs them. onnxruntime (and TensorRT,
OpenVINO, ...) runs it without Keras or this package. The batch is dynamic on every backend.

Each backend has its exporter, and each needs a little help with the decoding layers,
given only while exporting (the layers stay one `keras.ops` implementation):

* **TensorFlow** (tf2onnx): `tf.where` becomes ONNX's ``Where``. tf2onnx's own conversion
  multiplies by the condition instead (``c * x + (1 - c) * y``), which turns the ``-inf``
  scores of non-candidates into NaN (``0 * inf``).
* **JAX** (jax2onnx): max pooling goes through ``flax.nnx.max_pool``, which jax2onnx lowers
  to ONNX's ``MaxPool``; its lowering of ``reduce_window`` is a ``MaxPool`` over four axes,
  which onnxruntime refuses.
* **PyTorch** (``torch.onnx.export``, dynamo): the NMS loops become ``torch.while_loop``
  (traced once, not unrolled at the sample's trip count) and the choice between the best
  candidates and all of them ``torch.cond``, the sorts become ``topk`` (ONNX's
  ``TopK`` keeps ties in index order, as the stable sorts do; the stable ``sort`` has no
  ONNX lowering), and ``take`` drops a squeeze that ONNX refuses for non-1 sizes.

Example:
    >>> from ssd_keras.export.onnx import export_onnx
    >>> export_onnx(detector, "ssd7.onnx")  # doctest: +SKIP
    >>> import onnxruntime
    >>> session = onnxruntime.InferenceSession("ssd7.onnx")  # doctest: +SKIP
    >>> detections = session.run(None, {"images": images})[0]  # doctest: +SKIP
"""

import contextlib
import os

from ssd_keras.errors import ArgumentError

INPUT_NAME = "images"
OUTPUT_NAME = "detections"
METADATA_KEY = "ssd_keras"  # the file's metadata: class names, input size, decoding settings (JSON)
INPUT_DTYPES = ("uint8", "float32")


def export_onnx(model, path, input_dtype="uint8", opset=None, class_names=None):
    """Writes a decoding SSD as an ONNX file (module docstring), on the current backend.

    Args:
        model: a Keras model with decoded output ``(batch, top_k, 6)`` (`add_decoding`
            gives one for any SSD).
        path: the ``.onnx`` file to write (its folder is created).
        input_dtype: 'uint8' (images as they are read; cast inside the graph) or 'float32'.
        opset: the ONNX opset (default: the exporter's).
        class_names: stored in the file's metadata ('background' first), with the input
            size and the decoding settings, for `ssd_keras.Detector`.

    Returns:
        `path`.

    Raises:
        ArgumentError: for a model that does not decode, or another `input_dtype`.
        ImportError: naming the package the backend's exporter needs (``pip install
            "ssd-keras[onnx]"``).
    """
    import keras

    check_decoding_model(model)
    if input_dtype not in INPUT_DTYPES:
        raise ArgumentError(
            f"Expected `input_dtype` to be one of {set(INPUT_DTYPES)}. Received: input_dtype={input_dtype!r}"
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    exporter = {"tensorflow": _export_tensorflow, "jax": _export_jax, "torch": _export_torch}[keras.backend.backend()]
    with quiet_exporters():
        exporter(model, path, input_dtype, opset)
    write_metadata(path, model, class_names)
    return path


def decoding_settings(model):
    """The settings of the model's decoding layer (confidence, IoU, top-k, fast or not)."""
    from ssd_keras.boxes.layout import decoding_layer

    layer = decoding_layer(model)
    layer = layer if layer is not None else model.layers[-1]
    config = layer.get_config()
    return dict(
        confidence_thresh=config.get("confidence_thresh"),
        iou_threshold=config.get("iou_threshold"),
        top_k=config.get("top_k"),
        nms_max_output_size=config.get("nms_max_output_size"),
        fast=type(layer).__name__ == "DecodeDetectionsFast",
    )


def write_metadata(path, model, class_names=None):
    """Stores the class names, number of classes, input size and decoding settings in the
    ONNX file's metadata (key ``ssd_keras``, JSON), where `ssd_keras.Detector` reads them."""
    import json

    import onnx

    from ssd_keras.models.decoding import n_classes_of

    info = dict(
        class_names=list(class_names) if class_names is not None else None,
        n_classes=n_classes_of(model),
        input_size=list(_input_shape(model)[:2]),
        decoding=decoding_settings(model),
    )
    proto = onnx.load(path)
    del proto.metadata_props[:]
    proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(info))
    onnx.save(proto, path)


def check_decoding_model(model):
    """Raises `ArgumentError` unless `model` outputs decoded detections ``(batch, top_k, 6)``."""
    shape = tuple(model.outputs[0].shape)
    if len(model.outputs) != 1 or len(shape) != 3 or shape[-1] != 6:
        raise ArgumentError(
            f"Expected a model with decoded output (batch, top_k, 6). Received: output shape {shape}; "
            "add the decoding layer first (ssd_keras.models.decoding.add_decoding)"
        )


@contextlib.contextmanager
def quiet_exporters():
    """Keeps the exporters' and onnxruntime's notes to themselves (torch.onnx lists the
    torchvision ops it skips, onnx_ir the values it cannot type, onnxruntime each unused
    constant it removes, and they warn of their own deprecations); errors still show."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript", "tf2onnx", "jax2onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _input_shape(model):
    height, width, channels = model.inputs[0].shape[1:]
    return int(height), int(width), int(channels)


def _require(module, extra="onnx"):
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(f'ONNX export on this backend needs {module}: pip install "ssd-keras[{extra}]"') from error


# ------------------------------------------------------------------------------- TensorFlow


def _select_as_where(ctx, node, name, args):
    """tf2onnx handler: TensorFlow's select is ONNX's ``Where`` (same broadcasting)."""
    node.type = "Where"


def _export_tensorflow(model, path, input_dtype, opset):
    import tensorflow as tf

    tf2onnx = _require("tf2onnx")
    from keras.src.export.tf2onnx_lib import patch_tf2onnx  # tf2onnx 1.17 under NumPy 2

    height, width, channels = _input_shape(model)
    spec = tf.TensorSpec((None, height, width, channels), getattr(tf, input_dtype), name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(images):
        return {OUTPUT_NAME: model(tf.cast(images, tf.float32), training=False)}

    patch_tf2onnx()
    tf2onnx.convert.from_function(
        serve,
        input_signature=[spec],
        opset=opset,
        output_path=path,
        custom_op_handlers={"SelectV2": (_select_as_where, []), "Select": (_select_as_where, [])},
    )


# ------------------------------------------------------------------------------- JAX


def _max_pool_as_flax(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Keras' 2-D max pooling (channels last) as ``flax.nnx.max_pool``, which jax2onnx
    lowers to ONNX's ``MaxPool`` between two transposes; onnxruntime cancels those against
    the convolutions' own, so the pooling runs in the convolutions' layout."""
    from flax import nnx

    if data_format not in (None, "channels_last"):
        raise NotImplementedError(f"ONNX export of max pooling with data_format={data_format!r}")

    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)

    window = pair(pool_size)
    # XLA's and ONNX's SAME_UPPER agree: the extra pixel of an odd padding goes after.
    return nnx.max_pool(
        inputs, window_shape=window, strides=pair(strides if strides is not None else window), padding=padding.upper()
    )


@contextlib.contextmanager
def _jax_export_ops():
    from keras.src.backend.jax import nn

    original = nn.max_pool
    nn.max_pool = _max_pool_as_flax
    try:
        yield
    finally:
        nn.max_pool = original


def _export_jax(model, path, input_dtype, opset):
    import jax
    import numpy as np
    from keras import ops

    jax2onnx = _require("jax2onnx")
    height, width, channels = _input_shape(model)

    def serve(images):
        return model(ops.cast(images, "float32"), training=False)

    kwargs = {"opset": opset} if opset is not None else {}
    with _jax_export_ops():
        jax2onnx.to_onnx(
            serve,
            inputs=[jax.ShapeDtypeStruct(("batch", height, width, channels), np.dtype(input_dtype))],
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            return_mode="file",
            output_path=path,
            **kwargs,
        )


# ------------------------------------------------------------------------------- PyTorch


@contextlib.contextmanager
def _torch_export_ops():
    """Keras' PyTorch ops, while exporting, as ``torch.export`` and ONNX need them."""
    import torch
    from keras.src.backend.torch import core
    from keras.src.backend.torch import numpy as tnp

    def cloned(values):
        # Higher-order ops refuse outputs that alias their inputs.
        return tuple(value.clone() if isinstance(value, torch.Tensor) else value for value in values)

    def while_loop(cond, body, loop_vars, maximum_iterations=None):
        if maximum_iterations is not None:
            raise NotImplementedError("ONNX export of a while_loop with maximum_iterations")
        is_tuple = isinstance(loop_vars, (tuple, list))
        loop_vars = tuple(core.convert_to_tensor(value) for value in (loop_vars if is_tuple else (loop_vars,)))

        def step(*values):
            out = body(*values)
            return cloned(tuple(out) if isinstance(out, (tuple, list)) else (out,))

        out = torch.while_loop(lambda *values: core.convert_to_tensor(cond(*values)).clone(), step, cloned(loop_vars))
        return tuple(out) if is_tuple else out[0]

    def cond(pred, true_fn, false_fn):
        # Both branches in the graph (Keras' `if pred:` would need the value while tracing).
        def branch(fn):
            def traced():
                out = fn()
                return cloned(out) if isinstance(out, (tuple, list)) else cloned((out,))[0]

            return traced

        return torch.cond(core.convert_to_tensor(pred), branch(true_fn), branch(false_fn), ())

    def argsort(x, axis=-1):
        x = tnp.convert_to_tensor(x)
        if axis is None:
            x, axis = x.reshape(-1), -1
        keys = -x if x.dtype.is_floating_point else -x.long()
        return tnp.cast(torch.topk(keys, x.shape[axis], dim=axis, largest=True, sorted=True).indices, "int32")

    def sort(x, axis=-1):
        x = tnp.convert_to_tensor(x)
        if axis is None:
            x, axis = x.reshape(-1), 0
        return torch.topk(x, x.shape[axis], dim=axis, largest=False, sorted=True).values

    def take(x, indices, axis=None):
        x, indices = tnp.convert_to_tensor(x), tnp.convert_to_tensor(indices).long()
        if axis is None:
            x, axis = x.reshape(-1), 0
        axis %= x.ndim
        indices = torch.where(indices < 0, indices + x.shape[axis], indices)
        shape = x.shape[:axis] + indices.shape + x.shape[axis + 1 :]
        return torch.index_select(x, dim=axis, index=indices.reshape(-1)).reshape(shape)

    saved = core.while_loop, core.cond, tnp.argsort, tnp.sort, tnp.take
    core.while_loop, core.cond, tnp.argsort, tnp.sort, tnp.take = while_loop, cond, argsort, sort, take
    try:
        yield
    finally:
        core.while_loop, core.cond, tnp.argsort, tnp.sort, tnp.take = saved


def _torch_serving(model, input_dtype):
    """The model as a `torch.nn.Module` taking a batch of images, a sample input and its
    dynamic batch dimension."""
    import numpy as np
    import torch

    height, width, channels = _input_shape(model)

    class Serve(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images):
            return self.model(images.to(torch.float32), training=False)

    device = next((v.value.device for v in model.weights), torch.device("cpu"))
    sample = torch.from_numpy(np.zeros((2, height, width, channels), np.dtype(input_dtype))).to(device)
    return Serve().eval(), sample, {"images": {0: torch.export.Dim("batch", min=1, max=4096)}}


def _export_torch(model, path, input_dtype, opset):
    import torch

    _require("onnxscript")  # torch.onnx's dynamo exporter
    module, sample, dynamic_shapes = _torch_serving(model, input_dtype)
    kwargs = {"opset_version": opset} if opset is not None else {}
    with _torch_export_ops(), torch.no_grad():
        program = torch.onnx.export(
            module,
            (sample,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            verbose=False,
            **kwargs,
        )
    program.save(path)


def exported_torch_module(model, input_dtype="uint8"):
    """The decoding model exported by ``torch.export`` (the same graph as for ONNX) as a
    callable module: it runs the model's ATen ops directly, without Keras' Python work per
    layer. Takes a batch of images ``(batch, height, width, 3)``; returns the detections.

    The graph's runtime assertions are left out, as the ONNX file leaves them out: tracing
    the ``torch.cond`` of the NMS with the two-image sample asserts a batch of at least 2,
    which the computation does not need (the tests run it on one image against Keras)."""
    import torch

    module, sample, dynamic_shapes = _torch_serving(model, input_dtype)
    with _torch_export_ops(), torch.no_grad():
        program = torch.export.export(module, (sample,), dynamic_shapes=dynamic_shapes)
    graph_module = program.module()
    for part in graph_module.modules():
        if isinstance(part, torch.fx.GraphModule):
            for node in list(part.graph.nodes):
                if node.op == "call_function" and node.target is torch.ops.aten._assert_scalar.default:
                    part.graph.erase_node(node)
            part.graph.eliminate_dead_code()
            part.recompile()
    return graph_module
