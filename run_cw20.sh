#!/usr/bin/env bash
# Production CW20 launcher: every (seed, agent) pair of run_cw_experiments.py inside
# palr_container.sif (apptainer or singularity), PARALLEL at a time, one log per run,
# auto-resume (a pair that finished with the same settings is skipped; run_cw_experiments.py
# --status decides), then merge + plots.
#
#   bash run_cw20.sh                      # full sweep: AGENTS x SEEDS
#   BATCH_SEEDS=1 bash run_cw20.sh   # the same, one process per agent
#   SEED=2 AGENT=4 bash run_cw20.sh --single
#   bash run_cw20.sh --merge              # merge existing checkpoints only
#
# Knobs (environment): SIF, PROJ_DIR, EPISODES, BATCH_SIZE, SEEDS, AGENTS, PARALLEL,
# CUDA_VISIBLE_DEVICES, plus RESULTS_DIR (default <proj>/palr_plasticity_aware_lr/results),
# TASKS (cw20 | cw10: Continual World's sequences; mt10 | mt10x2: the original MT10 ones),
# EXTRA_ARGS (more run_cw_experiments.py flags, word-split; e.g. "--preset cw-paper") and
# BATCH_SEEDS (0; 1 = each agent's SEEDS, consecutive, train as one seed batch in one process,
# --batch_seeds, one log per agent; configurations that do not batch are refused in one line).
# SIF=none (or no apptainer/singularity on PATH) runs in the local .venv through ./run.sh.
# SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 reach every running run, which saves its checkpoint; no
# further run starts, and the launcher exits 75 once they have stopped (the same command resumes).
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
BATCH_SEEDS="${BATCH_SEEDS:-0}"
RESULTS_DIR="${RESULTS_DIR:-$PROJ_DIR/palr_plasticity_aware_lr/results}"
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
LOG_DIR="$RESULTS_DIR/logs"

PROG="run_cw20.sh"
# shellcheck source=scripts/launcher_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/scripts/launcher_lib.sh"

MODE="sweep"
case "${1:-}" in
    "") ;;
    --single) MODE="single" ;;
    --merge) MODE="merge" ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown option '$1'; valid: --single, --merge (or none for the full sweep)" ;;
esac
[ "$#" -le 1 ] || die "one option at most, got: $*"

case "$TASKS" in
    cw20) TASK_FLAG="--cw20" ;;
    cw10) TASK_FLAG="--cw10" ;;
    mt10|mt10x2) TASK_FLAG="--sequence=$TASKS" ;;
    *) die "TASKS must be cw20, cw10, mt10 or mt10x2, got '$TASKS'" ;;
esac
check_int EPISODES "$EPISODES" 1
check_int BATCH_SIZE "$BATCH_SIZE" 1
check_int PARALLEL "$PARALLEL" 1
check_int BATCH_SEEDS "$BATCH_SEEDS" 0 1
if [ "$MODE" = "single" ]; then
    SEEDS="${SEED:-}"
    AGENTS="${AGENT:-}"
    if [ -z "$SEEDS" ] || [ -z "$AGENTS" ]; then
        die "--single needs SEED and AGENT, e.g. SEED=2 AGENT=4 bash run_cw20.sh --single"
    fi
    check_int SEED "$SEEDS" 0
    check_int AGENT "$AGENTS" 0 7
else
    check_int_list SEEDS "$SEEDS" 0
    check_agent_list AGENTS "$AGENTS"
fi
# the seed groups each process trains, "<first seed> <count>": one seed each, or with
# BATCH_SEEDS=1 all of them (a batch is --seed_offset S --seeds K: consecutive seeds)
declare -a GROUPS_OF_SEEDS=()
BATCH_ARGS=()
if [ "$BATCH_SEEDS" = 1 ] && [ "$MODE" != "merge" ]; then  # a merge is the same either way
    [ "$MODE" = "sweep" ] || die "BATCH_SEEDS=1 batches the seeds of a sweep; unset it for --$MODE"
    read -r -a seed_list <<< "$SEEDS"
    for i in "${!seed_list[@]}"; do
        if [ "$i" -gt 0 ] && [ "${seed_list[$i]}" != "$((seed_list[i - 1] + 1))" ]; then
            die "BATCH_SEEDS=1 trains an agent's SEEDS as one batch (--seed_offset S --seeds K), so they must be consecutive, e.g. SEEDS=\"0 1 2\"; got '$SEEDS'"
        fi
    done
    GROUPS_OF_SEEDS=("${seed_list[0]} ${#seed_list[@]}")
    BATCH_ARGS=(--batch_seeds)
else
    for seed in $SEEDS; do
        GROUPS_OF_SEEDS+=("$seed 1")
    done
fi

# --- how to run python: container or local venv ---------------------------------------------
CONTAINER="$(container_runtime "$SIF")"
if [ -n "$CONTAINER" ] && [ ! -f "$SIF" ]; then
    die "$SIF not found; build it with: $CONTAINER build palr_container.sif palr_container.def (or SIF=none for the local .venv)"
fi

# run_python SCRIPT ARGS...: becomes (exec) a project script under the container's or the venv's
# python; only through start_group, whose PID is then the run's own process group
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
        exec "$CONTAINER" exec --nv "${binds[@]}" "$SIF" bash -c '
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
    fi
    cd "$PROJ_DIR"
    exec ./run.sh python "$@"
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

trap_stop_signals
FAILED=0
STOPPED=0
ENDED=0     # runs of this launch that have ended
TOTAL=0     # runs this launch starts (set once the finished ones are known)
STARTED_AT=$SECONDS

# sweep_status LABEL OUTCOME: one status line per ended run: run k/N, elapsed time, ETA
sweep_status() {
    ENDED=$((ENDED + 1))
    local elapsed=$((SECONDS - STARTED_AT))
    local eta="$(( elapsed * (TOTAL - ENDED) / ENDED ))s"
    echo "[run_cw20] run $ENDED/$TOTAL $2: $1 | elapsed ${elapsed}s | ETA $eta"
}

# finish_run PID LABEL LOG: wait for one run and count how it ended
finish_run() {
    wait_group "$1"
    if [ "$CHILD_STATUS" = 0 ]; then
        sweep_status "$2" "done"
        return
    fi
    sweep_status "$2" "ended with status $CHILD_STATUS"
    if [ -n "$STOP_SIGNAL" ] || [ "$CHILD_STATUS" = 75 ]; then
        # 75: checkpoint saved; any other status after a stop request: killed by the signal
        # before its handler was installed, so its last (atomic) checkpoint stands
        echo "[run_cw20] $2: stopped (status $CHILD_STATUS); log $3" >&2
        STOPPED=$((STOPPED + 1))
    else
        echo "[run_cw20] FAILED: $2 (status $CHILD_STATUS); see $3" >&2
        tail -n 5 "$3" >&2 || true
        FAILED=$((FAILED + 1))
    fi
}

stopped_exit() {
    echo "[run_cw20] stopped${STOP_SIGNAL:+ by SIG$STOP_SIGNAL}; run the same command again to resume (finished runs are skipped)" >&2
    exit 75
}

# run_step SCRIPT ARGS...: one python step (merge, plots) that a stop signal reaches too
run_step() {
    start_group run_python "$@"
    wait_group "$CHILD_PID"
    [ -z "$STOP_SIGNAL" ] || stopped_exit
    [ "$CHILD_STATUS" = 0 ] || exit "$CHILD_STATUS"
}

# The runs' sequence label, which names their files, logs and merge: TASKS, or <TASKS>first<N>
# when EXTRA_ARGS keeps only the first N tasks (a file named cw20 always holds CW20).
# shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags on purpose
LABEL="$(run_python palr_plasticity_aware_lr/src/run_cw_experiments.py "$TASK_FLAG" \
    --episodes_per_task "$EPISODES" --batch_size "$BATCH_SIZE" $EXTRA_ARGS --label)" || exit 2

merge() {
    echo "[run_cw20] merging $LABEL checkpoints in $RESULTS_DIR"
    run_step palr_plasticity_aware_lr/src/merge_cw_checkpoints.py --suffix "$LABEL" \
        --results_dir "$(results_arg)"
    run_step palr_plasticity_aware_lr/src/plot_cw_results.py --suffix "$LABEL" \
        --results_dir "$(results_arg)" --plots_dir "$(results_arg)/../plots"
}

if [ "$MODE" = "merge" ]; then
    merge
    exit 0
fi

# Which runs have finished: the Python side decides (same settings = same run identity), so a
# finished run of other settings (e.g. a 2-episode smoke run) stops the launch with one line, as
# does (BATCH_SEEDS=1) a configuration that does not batch.
declare -A STATE=()
for group in "${GROUPS_OF_SEEDS[@]}"; do
    read -r first count <<< "$group"
    errors="$(mktemp)"
    # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags on purpose
    if ! lines="$(run_python palr_plasticity_aware_lr/src/run_cw_experiments.py "$TASK_FLAG" \
        --episodes_per_task "$EPISODES" --seeds "$count" --batch_size "$BATCH_SIZE" \
        --seed_offset "$first" --agents $AGENTS --outdir "$(results_arg)" "${BATCH_ARGS[@]}" \
        $EXTRA_ARGS --status 2>"$errors")"; then
        error="$(tail -n 1 "$errors")"
        case "$error" in  # a configuration that does not batch: the knobs that fix it
            *"without --batch_seeds"*) rm -f "$errors"
                die "${error#*: error: } (here: BATCH_SEEDS=0, or AGENTS without that agent)" ;;
        esac
        cat "$errors" >&2
        rm -f "$errors"
        exit 2
    fi
    cat "$errors" >&2
    rm -f "$errors"
    while read -r run_seed run_agent run_state _; do
        STATE["$run_seed $run_agent"]="$run_state"
    done <<< "$lines"
done

# finished FIRST COUNT AGENT: whether every run of that process has finished
finished() {
    local seed
    for ((seed = $1; seed < $1 + $2; seed++)); do
        [ "${STATE["$seed $3"]:-}" = finished ] || return 1
    done
}

for group in "${GROUPS_OF_SEEDS[@]}"; do
    read -r first count <<< "$group"
    for agent in $AGENTS; do
        finished "$first" "$count" "$agent" || TOTAL=$((TOTAL + 1))
    done
done
WHAT="run(s)"
[ "$BATCH_SEEDS" = 0 ] || WHAT="seed batch(es), one per agent,"
echo "[run_cw20] $TOTAL $WHAT of $LABEL to run, $PARALLEL at a time; per-run logs (a progress line every 10 episodes) in $LOG_DIR"

mkdir -p "$LOG_DIR"
declare -a PIDS=()
declare -a LABELS=()
declare -a LOGS=()
LAST_LOG=""

launch_one() {  # first_seed count agent: one run, or (BATCH_SEEDS=1) the agent's seed batch
    local first="$1" count="$2" agent="$3"
    local seeds="$first" suffix=(--ckpt_suffix "_${LABEL}_seed${first}_agent${agent}")
    if [ "$BATCH_SEEDS" = 1 ]; then
        seeds="$(seq -s - "$first" $((first + count - 1)))"
        suffix=()  # each member names its files _<label>_seed<S>_agent<A> itself
    fi
    local which="seed=$seeds"
    [ "$BATCH_SEEDS" = 0 ] || which="seeds=$seeds"
    local log="$LOG_DIR/${LABEL}_${which%%=*}${seeds}_agent${agent}.log"
    if finished "$first" "$count" "$agent"; then
        echo "[run_cw20] $which agent=$agent: finished earlier with the same settings, skipped"
        return
    fi
    echo "[run_cw20] $which agent=$agent -> $log"
    # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags on purpose
    start_group run_python palr_plasticity_aware_lr/src/run_cw_experiments.py "$TASK_FLAG" \
        --episodes_per_task "$EPISODES" --seeds "$count" --batch_size "$BATCH_SIZE" \
        --seed_offset "$first" --agent_idx "$agent" "${suffix[@]}" "${BATCH_ARGS[@]}" \
        --outdir "$(results_arg)" --no_progress $EXTRA_ARGS >"$log" 2>&1
    PIDS+=("$CHILD_PID")
    LABELS+=("$which agent=$agent")
    LOGS+=("$log")
    LAST_LOG="$log"
}

wait_batch() {
    local i
    for i in "${!PIDS[@]}"; do
        finish_run "${PIDS[$i]}" "${LABELS[$i]}" "${LOGS[$i]}"
    done
    PIDS=()
    LABELS=()
    LOGS=()
}

for group in "${GROUPS_OF_SEEDS[@]}"; do
    read -r first count <<< "$group"
    for agent in $AGENTS; do
        [ -z "$STOP_SIGNAL" ] || break 2  # stopping: no further run starts
        launch_one "$first" "$count" "$agent"
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
if [ -n "$STOP_SIGNAL" ] || [ "$STOPPED" -gt 0 ]; then
    stopped_exit
fi
if [ "$MODE" = "sweep" ]; then
    merge
elif [ "${#LAST_LOG}" -gt 0 ]; then
    # a single run: its own summary and where its files are, from the end of its log
    sed -n '/^\[summary\]/,$p' "$LAST_LOG"
fi
