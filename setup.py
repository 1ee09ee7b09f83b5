"""ssd_keras for Keras 3, on TensorFlow, JAX or PyTorch.

Installs the original's top-level packages under their original names, so
``from models.keras_ssd300 import ssd_300`` and friends work from any directory.

The backends are extras, because CPU and GPU users install different wheels:
``pip install .[cpu]`` (tensorflow-cpu) or ``.[gpu]`` (tensorflow[and-cuda]);
``.[jax]`` (jax; ``jax[cuda12]`` for GPUs, see JAX's install guide); ``.[torch]``
(torch; pick the CPU or CUDA wheel with pip's ``--index-url``, see pytorch.org).
Keras itself needs none of them to import; set ``KERAS_BACKEND`` to choose.
"""

from setuptools import setup

PACKAGES = [
    "bounding_box_utils",
    "data_generator",
    "eval_utils",
    "keras_layers",
    "keras_loss_function",
    "misc_utils",
    "models",
    "ssd_encoder_decoder",
    "ssd_keras_cli",
]

setup(
    name="ssd-keras",
    version="0.1.0",
    description="SSD (Single Shot MultiBox Detector) for Keras 3 on TensorFlow, JAX or PyTorch, a faithful port of ssd_keras",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=PACKAGES,
    install_requires=[
        "keras>=3.10",
        "numpy>=2.0",
        "h5py>=3.10",
        "opencv-python-headless>=4.9",
        "beautifulsoup4>=4.12",
        "lxml>=5.0",
        "tqdm>=4.66",
        # ml_dtypes (Keras, TensorFlow and JAX import it at start-up) 0.7.0 registers its NumPy
        # loops in quadratic time: 0.9-1.4 s of CPU in every process that imports Keras, against
        # 0.01 s for 0.6.0 (measured with NumPy 2.2 and 2.4).
        "ml_dtypes>=0.5.1,!=0.7.0",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu==2.21.0"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        "jax": ["jax>=0.4.36"],
        "torch": ["torch>=2.4"],
        "coco": ["pycocotools>=2.0.8"],
        "export": ["ai-edge-litert>=2.3"],  # LiteRT, the successor of tf.lite.Interpreter, to run .tflite files
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100", "nbmake>=1.5", "matplotlib>=3.8", "ipykernel>=6.29",
                 "ai-edge-litert>=2.3", "jupytext>=1.16"],
        "notebooks": ["jupyter", "matplotlib>=3.8", "jupytext>=1.16"],
    },
    entry_points={"console_scripts": ["ssd-keras = ssd_keras_cli.cli:main"]},
    license="Apache-2.0",
)
