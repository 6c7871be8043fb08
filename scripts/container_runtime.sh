# shellcheck shell=bash
# Sourced by the launchers (run_cw20.sh, run_interactive.sh, run_on_HPC.sh): which container
# runtime to use for an image path.
#   container_runtime "$SIF"   -> prints "apptainer", "singularity", or nothing when SIF is
#                                 "none" or neither runtime is on PATH (run in the local .venv)
container_runtime() {
    if [ "$1" = "none" ]; then
        return 0
    fi
    if command -v apptainer >/dev/null 2>&1; then
        echo "apptainer"
    elif command -v singularity >/dev/null 2>&1; then
        echo "singularity"
    fi
}
