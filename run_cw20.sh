#!/usr/bin/env bash
# Production CW20 launcher: every (seed, agent) pair of run_cw_experiments.py inside
# palr_container.sif (apptainer or singularity), PARALLEL at a time, one log per run,
# auto-resume (a pair whose cw_checkpoint json exists is skipped), then merge + plots.
#
#   bash run_cw20.sh                      # full sweep: AGENTS x SEEDS
#   SEED=2 AGENT=4 bash run_cw20.sh --single
#   bash run_cw20.sh --merge              # merge existing checkpoints only
#
# Knobs (environment): SIF, PROJ_DIR, EPISODES, BATCH_SIZE, SEEDS, AGENTS, PARALLEL,
# CUDA_VISIBLE_DEVICES, plus RESULTS_DIR (default <proj>/palr_plasticity_aware_lr/results),
# TASKS (cw20 | cw10) and EXTRA_ARGS (more run_cw_experiments.py flags, word-split).
# SIF=none (or no apptainer/singularity on PATH) runs in the local .venv through ./run.sh.
set -euo pipefail

PROJ_DIR="${PROJ_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
SIF="${SIF:-$PROJ_DIR/palr_container.sif}"
EPISODES="${EPISODES:-200}"
BATCH_SIZE="${BATCH_SIZE:-2048}"
SEEDS="${SEEDS:-0 1 2}"
AGENTS="${AGENTS:-0 3 4 5 6}"
PARALLEL="${PARALLEL:-5}"
TASKS="${TASKS:-cw20}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
RESULTS_DIR="${RESULTS_DIR:-$PROJ_DIR/palr_plasticity_aware_lr/results}"
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
LOG_DIR="$RESULTS_DIR/logs"

die() {
    echo "run_cw20.sh: error: $*" >&2
    exit 2
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

check_positive() {  # name value
    if ! is_uint "$2" || [ "$2" -le 0 ]; then
        die "$1 must be a positive integer, got '$2'"
    fi
}

check_list() {  # name "values" max
    local v
    [ -n "${2// /}" ] || die "$1 is empty; give space-separated integers, e.g. $1=\"0 1 2\""
    for v in $2; do
        is_uint "$v" || die "$1 must hold space-separated integers, got '$v' in \"$2\""
        if [ -n "${3:-}" ] && [ "$v" -gt "$3" ]; then
            die "$1 value $v is not an agent index; valid: 0-$3 (see README, agent table)"
        fi
    done
}

MODE="sweep"
case "${1:-}" in
    "") ;;
    --single) MODE="single" ;;
    --merge) MODE="merge" ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown option '$1'; valid: --single, --merge (or none for the full sweep)" ;;
esac
[ "$#" -le 1 ] || die "one option at most, got: $*"

case "$TASKS" in
    cw20) TASK_FLAG="--cw20" ;;
    cw10) TASK_FLAG="--cw10" ;;
    *) die "TASKS must be cw20 or cw10, got '$TASKS'" ;;
esac
check_positive EPISODES "$EPISODES"
check_positive BATCH_SIZE "$BATCH_SIZE"
check_positive PARALLEL "$PARALLEL"
if [ "$MODE" = "single" ]; then
    SEEDS="${SEED:-}"
    AGENTS="${AGENT:-}"
    if [ -z "$SEEDS" ] || [ -z "$AGENTS" ]; then
        die "--single needs SEED and AGENT, e.g. SEED=2 AGENT=4 bash run_cw20.sh --single"
    fi
fi
check_list SEEDS "$SEEDS"
check_list AGENTS "$AGENTS" 7

# --- how to run python: container or local venv ---------------------------------------------
# shellcheck source=scripts/container_runtime.sh
. "$(dirname "${BASH_SOURCE[0]}")/scripts/container_runtime.sh"
CONTAINER="$(container_runtime "$SIF")"
if [ -n "$CONTAINER" ] && [ ! -f "$SIF" ]; then
    die "$SIF not found; build it with: $CONTAINER build palr_container.sif palr_container.def (or SIF=none for the local .venv)"
fi

# run_python DIR ARGS...: run a project script with the container's or the venv's python
run_python() {
    if [ -n "$CONTAINER" ]; then
        # the working tree over /workspace and over the image's installed copy (/opt/palr)
        local binds=(--bind "$PROJ_DIR:/workspace" --bind "$PROJ_DIR:/opt/palr")
        case "$RESULTS_DIR" in
            "$PROJ_DIR"/*) ;;
            *) binds+=(--bind "$RESULTS_DIR:$RESULTS_DIR") ;;
        esac
        local script="$1"
        shift
        # shellcheck disable=SC2016  # expanded by the container's bash, not here
        "$CONTAINER" exec --nv "${binds[@]}" "$SIF" bash -c '
            cd /workspace
            export CUDA_VISIBLE_DEVICES="$0"
            export MUJOCO_GL=egl
            export PYOPENGL_PLATFORM=egl
            export EGL_PLATFORM=surfaceless
            export TF_FORCE_GPU_ALLOW_GROWTH=true
            export OMP_NUM_THREADS=4
            unset DISPLAY
            exec python "$@"
        ' "$CUDA_VISIBLE_DEVICES" "$script" "$@"
    else
        (cd "$PROJ_DIR" && exec ./run.sh python "$@")
    fi
}

results_arg() {
    # the container sees the project at /workspace
    if [ -n "$CONTAINER" ]; then
        case "$RESULTS_DIR" in
            "$PROJ_DIR"/*) echo "/workspace/${RESULTS_DIR#"$PROJ_DIR"/}"; return ;;
        esac
    fi
    echo "$RESULTS_DIR"
}

merge() {
    echo "[run_cw20] merging $TASKS checkpoints in $RESULTS_DIR"
    run_python palr_plasticity_aware_lr/src/merge_cw_checkpoints.py --suffix "$TASKS" \
        --results_dir "$(results_arg)"
    run_python palr_plasticity_aware_lr/src/plot_cw_results.py --suffix "$TASKS" \
        --results_dir "$(results_arg)" --plots_dir "$(results_arg)/../plots"
}

if [ "$MODE" = "merge" ]; then
    merge
    exit 0
fi

mkdir -p "$LOG_DIR"
declare -a PIDS=()
declare -a LOGS=()
FAILED=0

launch_one() {  # seed agent
    local seed="$1" agent="$2"
    local suffix="_${TASKS}_seed${seed}_agent${agent}"
    local log="$LOG_DIR/${TASKS}_seed${seed}_agent${agent}.log"
    if [ -f "$RESULTS_DIR/cw_checkpoint${suffix}.json" ]; then
        echo "[run_cw20] seed=$seed agent=$agent: checkpoint exists, skipped"
        return
    fi
    echo "[run_cw20] seed=$seed agent=$agent -> $log"
    # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags on purpose
    run_python palr_plasticity_aware_lr/src/run_cw_experiments.py "$TASK_FLAG" \
        --episodes_per_task "$EPISODES" --seeds 1 --batch_size "$BATCH_SIZE" \
        --seed_offset "$seed" --agent_idx "$agent" --ckpt_suffix "$suffix" \
        --outdir "$(results_arg)" --no_progress $EXTRA_ARGS >"$log" 2>&1 &
    PIDS+=("$!")
    LOGS+=("$log")
}

wait_batch() {
    local i
    for i in "${!PIDS[@]}"; do
        if ! wait "${PIDS[$i]}"; then
            echo "[run_cw20] FAILED: see ${LOGS[$i]}" >&2
            tail -n 5 "${LOGS[$i]}" >&2 || true
            FAILED=$((FAILED + 1))
        fi
    done
    PIDS=()
    LOGS=()
}

stop_runs() {
    local pid
    echo "[run_cw20] interrupted: stopping my runs" >&2
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait
    exit 130
}
trap stop_runs INT TERM

for seed in $SEEDS; do
    for agent in $AGENTS; do
        launch_one "$seed" "$agent"
        if [ "${#PIDS[@]}" -ge "$PARALLEL" ]; then
            wait_batch
        fi
    done
done
wait_batch

if [ "$FAILED" -gt 0 ]; then
    echo "[run_cw20] $FAILED run(s) failed; fix and re-run: finished runs are skipped" >&2
    exit 1
fi
if [ "$MODE" = "sweep" ]; then
    merge
fi
