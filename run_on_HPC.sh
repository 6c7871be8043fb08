#!/usr/bin/env bash
# SLURM launcher: builds palr_container.sif when it is missing (apptainer or singularity on the
# login node), then submits the sweep as ONE job array, one array task per run, with preemption
# handling: each task gets SIGUSR1 SIGNAL_LEAD seconds before its time limit (--signal=B:USR1@90),
# passes it on to the run, which checkpoints and exits 75, and the task then requeues itself
# (scontrol requeue; --requeue) so its next start resumes from the checkpoint.
#
#   bash run_on_HPC.sh                          # CW20, PALR-SAC (AGENT=4), seeds 0 1 2: 3 tasks
#   bash run_on_HPC.sh --sweep                  # CW20, AGENTS (0 3 4 5 6) x SEEDS: 15 tasks
#   bash run_on_HPC.sh --habitat --nodes 2 --gpus-per-node 4    # DD-PPO PALR, srun + torchrun
#   bash run_on_HPC.sh --habitat --sweep        # the 4 DD-PPO configs x SEEDS
#   bash run_on_HPC.sh --cartpole --sweep       # continual CartPole DQN, AGENTS x SEEDS, on CPU
#   BATCH_SEEDS=1 bash run_on_HPC.sh --permuted-cartpole --sweep   # one task per agent (seeds batched)
#   BATCH_SEEDS=1 bash run_on_HPC.sh --sweep        # CW20, the same
#   bash run_on_HPC.sh --dry-run [...]          # print the job list + sbatch script(s), submit nothing
#   SIF=none bash run_on_HPC.sh                 # no container: tasks run ./run.sh (the local .venv)
#
# Options: the domain, --cw (default) | --habitat | --cartpole | --permuted-cartpole | --jbw (or the
# DOMAIN knob), --sweep, --nodes N and --gpus-per-node N (--habitat only), --no-merge (no
# dependent merge job after the array; CW and DQN have one), --dry-run, -h/--help.
# Knobs (environment variables; integers are checked, bad input exits 2 with one line):
#   DOMAIN       cw | habitat | cartpole | permuted_cartpole | jbw (default cw; an option wins)
#   SIF          image (default <project>/palr_container.sif; "none" = no container)
#   SEEDS        seeds (default "0 1 2")      EXTRA_ARGS  more flags for the python launcher
#   PARTITION, ACCOUNT, QOS   optional sbatch --partition/--account/--qos
#   TIME         time limit per task (default 2-00:00:00)    SIGNAL_LEAD  seconds (default 90)
#   CPUS         CPUs per run process (default 4; DQN 1)    MEM  memory per node (default 32G;
#                DQN 8G; "" = none)
#   GPUS         GPUs per task, or per node with --habitat (default 1, DQN 0; 0 = CPU only)
#   ARRAY_LIMIT  at most this many tasks at once (default: no limit)
#   JOB_NAME     (default palr-<tasks> / palr-habitat)   SBATCH_EXTRA  more #SBATCH flags
#   LOG_DIR      task logs <JOB_NAME>_<array job>_<task>.out, the .sbatch scripts and the .jobs
#                job lists (default <results>/logs/slurm)
#   CW:      TASKS (cw20 | cw10 | mt10 | mt10x2), EPISODES (200), BATCH_SIZE (2048), AGENT (4),
#            AGENTS (sweep: "0 3 4 5 6"), RESULTS_DIR (<project>/palr_plasticity_aware_lr/results),
#            BATCH_SEEDS (as DQN; configurations that do not batch, i.e. reference runs,
#            are refused in one line)
#   DQN:     AGENT (4), AGENTS (sweep: the launcher's default agents), RESULTS_DIR (runs in
#            <RESULTS_DIR>/<domain>, as the launcher's default), BATCH_SEEDS (0; 1 = the
#            consecutive SEEDS of one agent train together in one task, --batch_seeds); the
#            tasks only train, the merge job summarises <RESULTS_DIR>/<domain> after them
#   Habitat: CONFIG (palr_habitat/configs/ddppo_palr_fetch.yaml), AGENT (optional override),
#            HABITAT_RESULTS (<project>/palr_habitat/results; runs in <name>_seed<S>),
#            HABITAT_LAUNCHER (torchrun: srun starts one torchrun per node; srun: one srun task
#            per GPU, which keeps the trainer's exit status 75), NODES (1)
# The array is planned by `python -m palr.experiments.slurm` in the tasks' python (the image, or
# the local .venv): it checks the knobs, builds the runs from the launchers' own job lists and
# run identities (finished runs with the same settings are left out; other settings in a run's
# directory stop the submission with one line; interrupted runs resume from their checkpoints)
# and fills in scripts/slurm/*.sbatch.template. This script builds the image and submits.
set -euo pipefail

PROJ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="run_on_HPC.sh"
HABITAT_BIN="/opt/miniforge3/envs/palr_habitat/bin"
# shellcheck source=scripts/launcher_lib.sh
. "$PROJ_DIR/scripts/launcher_lib.sh"

info() {
    echo "[$PROG] $*" >&2
}

# --- options: forwarded to the planner -------------------------------------------------------
PLAN=(--project "$PROJ_DIR" --workdir "$PWD" --prog "$PROG")
DOMAIN="${DOMAIN:-cw}"
DRY_RUN=0
NODES_OPT=""
GPN_OPT=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --cw) DOMAIN="cw" ;;
        --habitat) DOMAIN="habitat" ;;
        --cartpole) DOMAIN="cartpole" ;;
        --permuted-cartpole) DOMAIN="permuted_cartpole" ;;
        --jbw) DOMAIN="jbw" ;;
        --sweep | --no-merge) PLAN+=("$1") ;;
        --dry-run) DRY_RUN=1; PLAN+=("$1") ;;
        --nodes | --gpus-per-node)
            [ "$#" -ge 2 ] || die "$1 needs a value, e.g. $1 2"
            if [ "$1" = "--nodes" ]; then NODES_OPT="$2"; else GPN_OPT="$2"; fi
            shift
            ;;
        --nodes=*) NODES_OPT="${1#*=}" ;;
        --gpus-per-node=*) GPN_OPT="${1#*=}" ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) die "unknown option '$1'; valid: --cw, --habitat, --cartpole, --permuted-cartpole, --jbw, --sweep, --nodes N, --gpus-per-node N, --no-merge, --dry-run, --help" ;;
    esac
    shift
done
if [ "$DOMAIN" != "habitat" ] && { [ -n "$NODES_OPT" ] || [ -n "$GPN_OPT" ]; }; then
    die "--nodes/--gpus-per-node are for --habitat; a CW or DQN run uses one process (GPUS)"
fi
PLAN+=(--domain "$DOMAIN")
[ -z "$NODES_OPT" ] || export NODES="$NODES_OPT"
[ -z "$GPN_OPT" ] || export GPUS="$GPN_OPT"
if [ "$DRY_RUN" = 0 ] && ! command -v sbatch >/dev/null 2>&1; then
    die "sbatch not found: run this on a SLURM login node (--dry-run shows the job scripts; run_cw20.sh runs locally)"
fi

# --- container or local .venv; the image ------------------------------------------------------
export SIF="${SIF:-$PROJ_DIR/palr_container.sif}"
RUNTIME="$(container_runtime "$SIF")"
if [ "$SIF" != "none" ] && [ -z "$RUNTIME" ]; then
    info "no apptainer/singularity on PATH: tasks run without a container, in the local .venv (./run.sh)"
fi
if [ -n "$RUNTIME" ]; then
    case "$SIF" in /*) ;; *) SIF="$PWD/$SIF" ;; esac
    PLAN+=(--runtime "$RUNTIME")
fi
if [ -n "$RUNTIME" ] && [ ! -f "$SIF" ]; then
    BUILD=("$RUNTIME" build)
    [ "$RUNTIME" = "singularity" ] && BUILD+=(--fakeroot)
    BUILD+=("$SIF" palr_container.def)
    if [ "$DRY_RUN" = 1 ]; then
        echo "# ---- would run (in $PROJ_DIR): ${BUILD[*]}"
    else
        info "$SIF not found: building it (30-60 minutes): ${BUILD[*]}"
        (cd "$PROJ_DIR" && "${BUILD[@]}") || { echo "$PROG: error: image build failed" >&2; exit 1; }
    fi
fi

# --- plan (python -m palr.experiments.slurm) in the tasks' python -----------------------------
cd "$PROJ_DIR"
if [ -n "$RUNTIME" ] && [ -f "$SIF" ]; then
    BINDS=(--bind "$PROJ_DIR:/workspace" --bind "$PROJ_DIR:/opt/palr")
    for dir in "${RESULTS_DIR:-}" "${HABITAT_RESULTS:-}"; do  # results outside the project
        case "$dir" in "" | "$PROJ_DIR" | "$PROJ_DIR"/*) continue ;; /*) ;; *) dir="$OLDPWD/$dir" ;; esac
        [ ! -d "$dir" ] || BINDS+=(--bind "$dir:$dir")
    done
    # shellcheck disable=SC2016  # $@ is expanded by the container's bash
    PLANNER=("$RUNTIME" exec "${BINDS[@]}" "$SIF" bash -c 'cd /workspace && exec python -m palr.experiments.slurm "$@"' planner)
    PLAN+=(--habitat-python "$HABITAT_BIN/python")
else
    PLANNER=(./run.sh python -m palr.experiments.slurm)
    [ -z "$RUNTIME" ] || PLAN+=(--no-status)  # a dry run before the image exists
fi
if [ "$DRY_RUN" = 1 ]; then
    exec "${PLANNER[@]}" "${PLAN[@]}"
fi
PLANNED="$("${PLANNER[@]}" "${PLAN[@]}")"

# --- submit what the planner wrote: "array <script>" and "merge <script>" ---------------------
ARRAY_FILE="$(awk '$1 == "array" { print $2 }' <<< "$PLANNED")"
MERGE_FILE="$(awk '$1 == "merge" { print $2 }' <<< "$PLANNED")"
[ -n "$ARRAY_FILE" ] || exit 0  # every run has finished (the planner said so)
ARRAY_JOB="$(sbatch --parsable "$ARRAY_FILE")"
ARRAY_JOB="${ARRAY_JOB%%;*}"
echo "[$PROG] submitted job array $ARRAY_JOB ($ARRAY_FILE); logs $(dirname "$ARRAY_FILE")/<JOB_NAME>_${ARRAY_JOB}_<task>.out"
if [ -n "$MERGE_FILE" ]; then
    MERGE_JOB="$(sbatch --parsable --dependency="afterany:$ARRAY_JOB" "$MERGE_FILE")"
    MERGE_JOB="${MERGE_JOB%%;*}"
    echo "[$PROG] submitted merge job $MERGE_JOB (after array $ARRAY_JOB)"
fi
echo "[$PROG] watch: squeue -j $ARRAY_JOB    stop: scancel $ARRAY_JOB    preempt+requeue a task: scancel --signal=USR1 --batch ${ARRAY_JOB}_<task>"
