#!/usr/bin/env bash
# Simple local launcher (the original run.sh): creates .venv on first use, sets the rendering and
# thread environment, and runs the command it is given inside the venv, e.g.
#   ./run.sh python palr_plasticity_aware_lr/src/run_experiments.py
#   ./run.sh python -m pytest -q
# Knobs: VENV (default <project>/.venv), PYTHON (interpreter that creates it, default python3),
# TORCH_SPEC (default torch==2.13.0: the CPU wheel; on a CUDA machine e.g. "torch==2.3.1"),
# PALR_EXTRAS (default cw,dev,sb3), MUJOCO_GL (default egl), OMP_NUM_THREADS (default 1).
set -euo pipefail

PROJ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$PROJ_DIR/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
PALR_EXTRAS="${PALR_EXTRAS:-cw,dev,sb3}"

if [ "$#" -eq 0 ]; then
    echo "usage: ./run.sh COMMAND [ARGS...]   e.g. ./run.sh python palr_plasticity_aware_lr/src/run_experiments.py" >&2
    exit 2
fi

install_stamp() {
    # what the venv was built from: re-install when pyproject.toml or the extras change
    printf '%s %s %s\n' "$(sha256sum "$PROJ_DIR/pyproject.toml" | cut -d' ' -f1)" "$TORCH_SPEC" "$PALR_EXTRAS"
}

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.palr-installed" 2>/dev/null)" != "$(install_stamp)" ]; then
    echo "[run.sh] setting up $VENV (first use) ..." >&2
    "$PYTHON" -m venv "$VENV"
    # torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
    "$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
    "$VENV/bin/python" -m pip install --quiet -e "${PROJ_DIR}[${PALR_EXTRAS}]"
    install_stamp > "$VENV/.palr-installed"
fi

export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$OMP_NUM_THREADS}"
export TF_FORCE_GPU_ALLOW_GROWTH="${TF_FORCE_GPU_ALLOW_GROWTH:-true}"
if [ "$MUJOCO_GL" = "egl" ]; then
    unset DISPLAY
fi
exec "$@"
