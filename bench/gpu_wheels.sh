#!/usr/bin/env bash
# Build .whl/: the wheels bench/gpu_check.sh installs on the lent GPU machine (no network there).
#
# For the device's Python (3.12, manylinux x86_64), the locked versions (requirements/lock.txt) of
# what lenshunt needs there and the machine lacks: Keras (JAX backend: TensorFlow is not carried),
# dask, distributed, dask-cuda, zarr, numcodecs, astropy, fitsio and their missing dependencies.
# numpy, pandas, scipy, xarray, pyarrow, h5py, ml_dtypes, JAX, CuPy and PyTorch are there already and
# are left out, so the folder fits the device tool's carry limit (64 MiB with the repository).
#     bash bench/gpu_wheels.sh && du -sh .whl
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${GPU_WHEELS_PYTHON_VERSION:-3.12}
rm -rf .whl.all && mkdir -p .whl.all .whl
python3 -m pip download --quiet --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -c requirements/lock.txt -d .whl.all \
    keras dask distributed dask-cuda zarr numcodecs astropy fitsio pydantic pyyaml threadpoolctl tqdm lz4
# Present on the device (environment.md: the lent GPU machine), or only for the dashboard:
skip='^(numpy|pandas|scipy|pillow|h5py|bokeh|contourpy|narwhals|xyzservices|ml_dtypes|python_dateutil|six|packaging|typing_extensions|jinja2|markupsafe)-'
rm -f .whl/*.whl
for wheel in .whl.all/*.whl; do
    name=$(basename "$wheel")
    if ! [[ $name =~ $skip ]]; then cp "$wheel" .whl/; fi
done
rm -rf .whl.all
echo "$(ls .whl | wc -l) wheels, $(du -sb .whl | cut -f1) bytes in .whl (limit with the repository: 67108864)"
