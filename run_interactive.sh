#!/usr/bin/env bash
# Habitat Fetch rearrangement: DD-PPO + PALR, one seed (the original run_interactive.sh).
#
#   bash run_interactive.sh                       # seed 0, PALR, in the container if there is one
#   SEED=2 NPROC=3 bash run_interactive.sh        # 3 GPUs (torchrun processes)
#   CONFIG=palr_habitat/configs/ddppo_baseline_fetch.yaml bash run_interactive.sh
#   SIF=none bash run_interactive.sh --set run.max_iterations=10   # local .venv (via ./run.sh)
#
# With a container (apptainer or singularity found and SIF not "none") it runs the original command:
#   <runtime> exec --nv --bind <project>:/workspace <SIF> bash -c "cd /workspace &&
#     /opt/miniforge3/envs/palr_habitat/bin/torchrun --nproc_per_node=<NPROC>
#     palr_habitat/src/palr_trainer.py --config <CONFIG> --seed <SEED> --outdir <OUTDIR>"
# Without one, the same trainer runs from the local .venv through ./run.sh (torchrun --standalone);
# there habitat-sim is absent, so the trainer uses its MuJoCo stand-in (it prints the backend).
# Extra arguments go to palr_trainer.py (e.g. --set ppo.num_steps=64, --track); with --summary
# PATH... it only prints the summary table of the finished runs under PATH.
#
# Knobs (environment variables):
#   SEED     run seed (default 0)                  NPROC   processes = GPUs (default 1)
#   CONFIG   config file, relative to the project  (default palr_habitat/configs/ddppo_palr_fetch.yaml;
#            TINY=1 selects palr_habitat/configs/ddppo_palr_fetch_tiny.yaml)
#   TINY     auto (default: tiny config when running locally without nvidia-smi), 1 or 0
#   AGENT    override the config's agent (index or name, e.g. 0 or PALR-NoScale)
#   OUTDIR   run directory, relative to the project (default palr_habitat/results/palr_seed<SEED>)
#   SIF      container image (default <project>/palr_container.sif; "none" = local .venv)
#   CUDA_VISIBLE_DEVICES  passed through
# Before torchrun starts, the trainer validates the run (palr_trainer.py --check: config, --set,
# agent, backend, output directory, an existing checkpoint): bad input is one line and exit 2.
# SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 (passed to torchrun as SIGTERM: it has no SIGUSR1 handler)
# reach every trainer process, which saves its checkpoint; the launcher then exits 75, and the
# same command resumes from <OUTDIR>/checkpoints.
set -euo pipefail

PROJ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="run_interactive.sh"
# shellcheck source=scripts/launcher_lib.sh
. "$PROJ_DIR/scripts/launcher_lib.sh"
SEED="${SEED:-0}"
NPROC="${NPROC:-1}"
TINY="${TINY:-auto}"
AGENT="${AGENT:-}"
SIF="${SIF:-$PROJ_DIR/palr_container.sif}"
HABITAT_BIN="/opt/miniforge3/envs/palr_habitat/bin"
FULL_CONFIG="palr_habitat/configs/ddppo_palr_fetch.yaml"
TINY_CONFIG="palr_habitat/configs/ddppo_palr_fetch_tiny.yaml"

check_int SEED "$SEED" 0
check_int NPROC "$NPROC" 1
case "$TINY" in
    auto | 0 | 1) ;;
    *) die "TINY must be auto, 0 or 1, got '$TINY'" ;;
esac

# --- container or local ---------------------------------------------------------------------
RUNTIME="$(container_runtime "$SIF")"
if [ -n "$RUNTIME" ] && [ ! -f "$SIF" ]; then
    die "container image '$SIF' not found; build it (apptainer build palr_container.sif palr_container.def) or run locally with SIF=none"
fi

TINY_NOTE=""
if [ -z "${CONFIG:-}" ]; then
    if [ "$TINY" = "1" ] || { [ "$TINY" = "auto" ] && [ -z "$RUNTIME" ] && ! command -v nvidia-smi >/dev/null 2>&1; }; then
        CONFIG="$TINY_CONFIG"
        TINY_NOTE="local run without a GPU: using the tiny stand-in config $CONFIG (CONFIG=... or TINY=0 to change)"
    else
        CONFIG="$FULL_CONFIG"
    fi
fi
OUTDIR="${OUTDIR:-palr_habitat/results/palr_seed${SEED}}"

# The container sees the project at /workspace: there, paths must lie inside the project.
relative_to_project() {
    local path="$1" name="$2"
    case "$path" in
        "$PROJ_DIR"/*) printf '%s\n' "${path#"$PROJ_DIR"/}" ;;
        /*)
            if [ -n "$RUNTIME" ]; then
                die "$name '$path' is outside the project directory $PROJ_DIR, which is all the container sees; give a path inside it"
            fi
            printf '%s\n' "$path"
            ;;
        *) printf '%s\n' "$path" ;;
    esac
}
CONFIG="$(relative_to_project "$CONFIG" CONFIG)"
OUTDIR="$(relative_to_project "$OUTDIR" OUTDIR)"
case "$CONFIG" in
    /*) config_file="$CONFIG" ;;
    *) config_file="$PROJ_DIR/$CONFIG" ;;
esac
[ -f "$config_file" ] || die "config '$CONFIG' not found (paths are relative to $PROJ_DIR)"

TRAINER_ARGS=(--config "$CONFIG" --seed "$SEED" --outdir "$OUTDIR")
if [ -n "$AGENT" ]; then
    TRAINER_ARGS+=(--agent "$AGENT")
fi
TRAINER_ARGS+=("$@")

# IN_ENV: the prefix that runs a command in the container (from /workspace) or the local .venv
cd "$PROJ_DIR"
if [ -n "$RUNTIME" ]; then
    # shellcheck disable=SC2016  # $@ expands inside the container's bash, not here
    IN_ENV=("$RUNTIME" exec --nv --bind "$PROJ_DIR:/workspace" --bind "$PROJ_DIR:/opt/palr" "$SIF"
            bash -c 'cd /workspace && exec "$@"' palr-habitat)
    PYTHON="$HABITAT_BIN/python"
    TORCHRUN=("$HABITAT_BIN/torchrun")
    WHERE="$RUNTIME $SIF"
else
    IN_ENV=("$PROJ_DIR/run.sh")
    PYTHON="python"
    TORCHRUN=(torchrun --standalone)
    WHERE="local .venv (./run.sh)"
fi

# --summary PATH...: print the summary table of finished runs and exit (the ablation's ending)
if [ "${1:-}" = "--summary" ]; then
    shift
    exec "${IN_ENV[@]}" "$PYTHON" -m palr.experiments.summarize "$@"
fi

trap_stop_signals
CHILD_USR1=TERM  # torchrun passes SIGTERM (not SIGUSR1) on to the trainers

stopped() {  # the trainers saved their checkpoints (or had not started)
    echo "$PROG: stopped by SIG$STOP_SIGNAL (status $CHILD_STATUS); run the same command again to resume from $OUTDIR/checkpoints" >&2
    exit 75
}

# 1. validate: a bad config, --set or agent is one line and exit 2, not an error of every rank
start_group "${IN_ENV[@]}" "$PYTHON" palr_habitat/src/palr_trainer.py --check "${TRAINER_ARGS[@]}"
wait_group "$CHILD_PID"
[ -z "$STOP_SIGNAL" ] || stopped
[ "$CHILD_STATUS" = 0 ] || exit "$CHILD_STATUS"

# 2. train
[ -z "$TINY_NOTE" ] || echo "$PROG: $TINY_NOTE" >&2
echo "$PROG: $WHERE | seed $SEED | $NPROC process(es) | $CONFIG -> $OUTDIR" >&2
start_group "${IN_ENV[@]}" "${TORCHRUN[@]}" --nproc_per_node="$NPROC" \
    palr_habitat/src/palr_trainer.py "${TRAINER_ARGS[@]}"
wait_group "$CHILD_PID"
if [ -n "$STOP_SIGNAL" ] && [ "$CHILD_STATUS" != 0 ]; then
    stopped
fi
exit "$CHILD_STATUS"
