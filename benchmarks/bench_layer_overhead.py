"""What a Keras layer call costs on the host, apart from its arithmetic (README, On a GPU).

A functional model of N small convolution layers (3x3, 8 channels, relu) on a 1x4x4x8 input:
the arithmetic is negligible, so the time per forward call divided by N is the host's work of
one layer call. Next to it, the same convolutions as plain calls of the backend (PyTorch only),
and the model as one compiled function (JAX only). SSD300 has 76 layers; a backend that runs
the model op by op, as Keras' PyTorch backend does, pays this per layer on every call.

    KERAS_BACKEND=torch python benchmarks/bench_layer_overhead.py [--layers 80] [--repeats 7]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks import results  # noqa: E402
from benchmarks.bench_core import run_times  # noqa: E402


def median_ms(call, calls, repeats):
    """Milliseconds a call of `call()`: the median of `repeats` runs of `calls` calls, after a
    warm-up call (and compilation, where there is one)."""

    def run():
        for _ in range(calls):
            call()

    return 1e3 * float(np.median(run_times(run, repeats, warmup=1))) / calls


def stacked_convolutions(n_layers):
    inputs = keras.Input((4, 4, 8))
    x = inputs
    for _ in range(n_layers):
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, x)


def plain_torch_forward(model, tensor):
    """The convolutions of `stacked_convolutions`' model as plain torch calls, as a function of
    no arguments (the model's own weights, NCHW inside, NHWC output like the model's)."""
    import torch

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    weights = [
        (layer.kernel.value.detach().permute(3, 2, 0, 1).contiguous(), layer.bias.value.detach()) for layer in layers
    ]

    def forward():
        x = tensor.permute(0, 3, 1, 2)
        for kernel, bias in weights:
            x = torch.relu(torch.nn.functional.conv2d(x, kernel, bias, padding=1))
        return x.permute(0, 2, 3, 1)

    return forward


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=80, help="convolution layers (default 80)")
    parser.add_argument("--calls", type=int, default=20, help="forward calls per timed run (default 20)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs (default 7)")
    results.add_argument(parser)
    args = parser.parse_args(argv)
    backend = keras.backend.backend()
    model = stacked_convolutions(args.layers)
    image = np.ones((1, 4, 4, 8), "float32")
    figures = {}
    if backend == "torch":
        import torch

        tensor = torch.from_numpy(image)
        plain = plain_torch_forward(model, tensor)
        with torch.no_grad():
            figures["keras"] = median_ms(lambda: model(tensor, training=False), args.calls, args.repeats)
            figures["plain torch calls"] = median_ms(plain, args.calls, args.repeats)
    else:
        tensor = keras.ops.convert_to_tensor(image)
        figures["keras"] = median_ms(lambda: model(tensor, training=False), args.calls, args.repeats)
        if backend == "jax":
            import jax

            state = [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]
            compiled = jax.jit(lambda trainable, other, x: model.stateless_call(trainable, other, x, training=False)[0])
            figures["one jitted stateless_call"] = median_ms(
                lambda: compiled(*state, tensor).block_until_ready(), args.calls, args.repeats
            )
    print(
        f"{args.layers} conv layers on 1x4x4x8, Keras {keras.__version__} ({backend}), medians of {args.repeats} runs:"
    )
    for name, ms in figures.items():
        print(f"  {name:28s} {ms:7.2f} ms per forward call, {1e3 * ms / args.layers:6.1f} us per layer")
    results.save(
        args,
        f"bench_layer_overhead_{backend}",
        f"Keras' per-layer cost: {args.layers} small convolutions on {backend}",
        ["forward call", "ms per call", "us per layer"],
        [[name, round(ms, 2), round(1e3 * ms / args.layers, 1)] for name, ms in figures.items()],
        f"1x4x4x8 input, medians of {args.repeats} runs of {args.calls} calls",
    )
    return figures


if __name__ == "__main__":
    main()
