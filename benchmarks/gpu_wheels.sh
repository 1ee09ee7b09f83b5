#!/usr/bin/env bash
# Fetches, here, the wheels that benchmarks/gpu_run.sh installs on the device machine
# (Python 3.12, x86-64, no network): Keras and what it needs that the machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
KERAS=$(.venv/bin/python -c "import keras; print(keras.__version__)" 2>/dev/null || echo 3.15.1)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    "keras==$KERAS" namex optree beautifulsoup4 soupsieve
ls -la .whl
