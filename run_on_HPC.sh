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
#   bash run_on_HPC.sh --dry-run [...]          # print the sbatch script(s) + commands, submit nothing
#   SIF=none bash run_on_HPC.sh                 # no container: tasks run ./run.sh (the local .venv)
#
# Options: --cw (default) | --habitat, --sweep, --nodes N and --gpus-per-node N (--habitat only),
# --no-merge (CW: no dependent merge job), --dry-run, -h/--help.
# Knobs (environment variables; integers are checked, bad input exits 2 with one line):
#   SIF          image (default <project>/palr_container.sif; "none" = no container)
#   SEEDS        seeds (default "0 1 2")      EXTRA_ARGS  more flags for the python launcher
#   PARTITION, ACCOUNT, QOS   optional sbatch --partition/--account/--qos
#   TIME         time limit per task (default 2-00:00:00)    SIGNAL_LEAD  seconds (default 90)
#   CPUS         CPUs per run process (default 4)    MEM  memory per node (default 32G; "" = none)
#   GPUS         GPUs per task, or per node with --habitat (default 1; 0 = CPU only)
#   ARRAY_LIMIT  at most this many tasks at once (default: no limit)
#   JOB_NAME     (default palr-<tasks> / palr-habitat)   SBATCH_EXTRA  more #SBATCH flags
#   LOG_DIR      task logs <JOB_NAME>_<array job>_<task>.out and the generated .sbatch files
#                (default <results>/logs/slurm)
#   CW:      TASKS (cw20 | cw10 | mt10 | mt10x2), EPISODES (200), BATCH_SIZE (2048), AGENT (4),
#            AGENTS (sweep: "0 3 4 5 6"), RESULTS_DIR (<project>/palr_plasticity_aware_lr/results)
#   Habitat: CONFIG (palr_habitat/configs/ddppo_palr_fetch.yaml), AGENT (optional override),
#            HABITAT_RESULTS (<project>/palr_habitat/results; runs in <name>_seed<S>),
#            HABITAT_LAUNCHER (torchrun: srun starts one torchrun per node; srun: one srun task
#            per GPU, which keeps the trainer's exit status 75), NODES (1)
# Finished runs are left out of the array: the Python side says which (run_cw_experiments.py
# --status, palr_trainer.py --check: the same settings, so a smoke run never passes for a
# production run, and other settings in a run's directory stop the submission with one line);
# interrupted ones resume from their checkpoints.
set -euo pipefail

PROJ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="run_on_HPC.sh"
HABITAT_BIN="/opt/miniforge3/envs/palr_habitat/bin"
# shellcheck source=scripts/launcher_lib.sh
. "$PROJ_DIR/scripts/launcher_lib.sh"

info() {
    echo "[run_on_HPC] $*" >&2
}

# --- options ----------------------------------------------------------------------------------
DOMAIN="cw"
SWEEP=0
DRY_RUN=0
MERGE=1
NODES_OPT=""
GPN_OPT=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --cw) DOMAIN="cw" ;;
        --habitat) DOMAIN="habitat" ;;
        --sweep) SWEEP=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --no-merge) MERGE=0 ;;
        --nodes | --gpus-per-node)
            [ "$#" -ge 2 ] || die "$1 needs a value, e.g. $1 2"
            if [ "$1" = "--nodes" ]; then NODES_OPT="$2"; else GPN_OPT="$2"; fi
            shift
            ;;
        --nodes=*) NODES_OPT="${1#*=}" ;;
        --gpus-per-node=*) GPN_OPT="${1#*=}" ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) die "unknown option '$1'; valid: --cw, --habitat, --sweep, --nodes N, --gpus-per-node N, --no-merge, --dry-run, --help" ;;
    esac
    shift
done

# --- knobs ------------------------------------------------------------------------------------
SIF="${SIF:-$PROJ_DIR/palr_container.sif}"
SEEDS="${SEEDS:-0 1 2}"
PARTITION="${PARTITION:-}"
ACCOUNT="${ACCOUNT:-}"
QOS="${QOS:-}"
TIME="${TIME:-2-00:00:00}"
SIGNAL_LEAD="${SIGNAL_LEAD:-90}"
CPUS="${CPUS:-4}"
MEM="${MEM-32G}"
GPUS="${GPUS:-1}"
NODES="${NODES:-1}"
ARRAY_LIMIT="${ARRAY_LIMIT:-}"
SBATCH_EXTRA="${SBATCH_EXTRA:-}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
AGENT_OVERRIDE="${AGENT:-}"
TASKS="${TASKS:-cw20}"
EPISODES="${EPISODES:-200}"
BATCH_SIZE="${BATCH_SIZE:-2048}"
AGENT="${AGENT:-4}"
AGENTS="${AGENTS:-0 3 4 5 6}"
RESULTS_DIR="${RESULTS_DIR:-$PROJ_DIR/palr_plasticity_aware_lr/results}"
CONFIG="${CONFIG:-palr_habitat/configs/ddppo_palr_fetch.yaml}"
HABITAT_RESULTS="${HABITAT_RESULTS:-$PROJ_DIR/palr_habitat/results}"
HABITAT_LAUNCHER="${HABITAT_LAUNCHER:-torchrun}"
[ -n "$NODES_OPT" ] && NODES="$NODES_OPT"
[ -n "$GPN_OPT" ] && GPUS="$GPN_OPT"

# --- validation (nothing is written before this passes) ---------------------------------------
check_name() {  # name value: sbatch names, no spaces or shell characters
    [[ "$2" =~ ^[A-Za-z0-9_.,+-]*$ ]] || die "$1 may hold letters, digits and _ . , + - only, got '$2'"
}

absolute() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

if [ "$DOMAIN" = "cw" ] && { [ -n "$NODES_OPT" ] || [ -n "$GPN_OPT" ]; }; then
    die "--nodes/--gpus-per-node are for --habitat; a CW run uses one GPU (GPUS=1)"
fi
check_int_list SEEDS "$SEEDS" 0
check_int CPUS "$CPUS" 1
check_int GPUS "$GPUS" 0
check_int NODES "$NODES" 1
check_int SIGNAL_LEAD "$SIGNAL_LEAD" 1
[ -z "$ARRAY_LIMIT" ] || check_int ARRAY_LIMIT "$ARRAY_LIMIT" 1
[[ "$TIME" =~ ^[0-9]+(-[0-9]+)?(:[0-9]+){0,2}$ ]] || \
    die "TIME must be a SLURM time limit such as 90, 12:00:00 or 2-00:00:00, got '$TIME'"
[[ "$MEM" =~ ^([0-9]+[KMGTkmgt]?)?$ ]] || die "MEM must be like 32G or 64000M (or empty), got '$MEM'"
check_name PARTITION "$PARTITION"
check_name ACCOUNT "$ACCOUNT"
check_name QOS "$QOS"
read -r -a EXTRA <<< "$EXTRA_ARGS"
read -r -a SBATCH_MORE <<< "$SBATCH_EXTRA"

RUNS=()      # one entry per array task
if [ "$DOMAIN" = "cw" ]; then
    case "$TASKS" in
        cw20) TASK_FLAG="--cw20" ;;
        cw10) TASK_FLAG="--cw10" ;;
        mt10|mt10x2) TASK_FLAG="--sequence=$TASKS" ;;
        *) die "TASKS must be cw20, cw10, mt10 or mt10x2, got '$TASKS'" ;;
    esac
    check_int EPISODES "$EPISODES" 1
    check_int BATCH_SIZE "$BATCH_SIZE" 1
    if [ "$SWEEP" = 1 ]; then RUN_AGENTS="$AGENTS"; else RUN_AGENTS="$AGENT"; fi
    if [ "$SWEEP" = 1 ]; then check_agent_list AGENTS "$RUN_AGENTS"; else check_agent_list AGENT "$RUN_AGENTS"; fi
    [ "$GPUS" -le 1 ] || die "GPUS must be 0 or 1 for a CW run (one process per task), got '$GPUS'"
    RESULTS_DIR="$(absolute "$RESULTS_DIR")"
    JOB_NAME="${JOB_NAME:-palr-$TASKS}"
    LOG_DIR="$(absolute "${LOG_DIR:-$RESULTS_DIR/logs/slurm}")"
    for seed in $SEEDS; do
        for agent in $RUN_AGENTS; do
            RUNS+=("$seed $agent")
        done
    done
else
    case "$HABITAT_LAUNCHER" in
        torchrun | srun) ;;
        *) die "HABITAT_LAUNCHER must be torchrun or srun, got '$HABITAT_LAUNCHER'" ;;
    esac
    if [ -n "$AGENT_OVERRIDE" ]; then
        [[ "$AGENT_OVERRIDE" =~ ^[A-Za-z0-9_.+-]+$ ]] || die "AGENT must be an agent index or name, got '$AGENT_OVERRIDE'"
    fi
    HABITAT_RESULTS="$(absolute "$HABITAT_RESULTS")"
    JOB_NAME="${JOB_NAME:-palr-habitat}"
    LOG_DIR="$(absolute "${LOG_DIR:-$HABITAT_RESULTS/logs/slurm}")"
    if [ "$SWEEP" = 1 ]; then
        EXPERIMENTS=(
            "palr palr_habitat/configs/ddppo_palr_fetch.yaml"
            "baseline palr_habitat/configs/ddppo_baseline_fetch.yaml"
            "palr_lr_only palr_habitat/configs/ddppo_palr_lr_only_fetch.yaml"
            "palr_perturb_only palr_habitat/configs/ddppo_palr_perturb_only_fetch.yaml"
        )
    else
        case "$CONFIG" in
            "$PROJ_DIR"/*) CONFIG="${CONFIG#"$PROJ_DIR"/}" ;;
            /*) die "CONFIG '$CONFIG' is outside the project $PROJ_DIR; give a path inside it" ;;
        esac
        name="$(basename "$CONFIG" .yaml)"
        name="${name#ddppo_}"
        name="${name/_fetch/}"
        EXPERIMENTS=("$name $CONFIG")
    fi
    for experiment in "${EXPERIMENTS[@]}"; do
        read -r name config <<< "$experiment"
        [ -f "$PROJ_DIR/$config" ] || die "config '$config' not found (paths are relative to $PROJ_DIR)"
        for seed in $SEEDS; do
            RUNS+=("$name $seed $config")
        done
    done
fi
check_name JOB_NAME "$JOB_NAME"
[[ "$LOG_DIR" =~ ^[^[:space:]%]+$ ]] || die "LOG_DIR may not contain spaces or %, got '$LOG_DIR'"

# --- container or local .venv -----------------------------------------------------------------
RUNTIME="$(container_runtime "$SIF")"
if [ "$SIF" != "none" ] && [ -z "$RUNTIME" ]; then
    info "no apptainer/singularity on PATH: tasks run without a container, in the local .venv (./run.sh)"
fi
if [ -n "$RUNTIME" ]; then
    SIF="$(absolute "$SIF")"
fi

# --- image ------------------------------------------------------------------------------------
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

# --- which runs have finished: asked of the Python side (same settings = same run identity) ---
# status_python ARGS...: a project script run with the tasks' python (container or local .venv)
status_python() {
    if [ -n "$RUNTIME" ]; then
        local python="python"
        [ "$DOMAIN" = cw ] || python="$HABITAT_BIN/python"
        # shellcheck disable=SC2016  # $@ is expanded by the container's bash
        "$RUNTIME" exec --bind "$PROJ_DIR:/workspace" --bind "$PROJ_DIR:/opt/palr" \
            --bind "$RESULTS_ROOT:$RESULTS_ROOT" "$SIF" \
            bash -c 'cd /workspace && exec "$0" "$@"' "$python" "$@"
    else
        (cd "$PROJ_DIR" && exec ./run.sh python "$@")
    fi
}

# finished_runs: prints the indices of RUNS that finished with these settings (exits 2, after the
# one-line error, when a run's directory holds a run of other settings)
finished_runs() {
    local i
    if [ "$DOMAIN" = cw ]; then
        local seed lines run_seed run_agent state
        declare -A state_of=()
        for seed in $SEEDS; do  # one query per seed, for all its agents
            # shellcheck disable=SC2086  # the agent list is word-split on purpose
            lines="$(status_python palr_plasticity_aware_lr/src/run_cw_experiments.py "$TASK_FLAG" \
                --episodes_per_task "$EPISODES" --seeds 1 --batch_size "$BATCH_SIZE" \
                --seed_offset "$seed" --agents $RUN_AGENTS --outdir "$RESULTS_DIR" "${EXTRA[@]}" \
                --status)" || exit 2
            while read -r run_seed run_agent state _; do
                state_of["$run_seed $run_agent"]="$state"
            done <<< "$lines"
        done
        for i in "${!RUNS[@]}"; do
            [ "${state_of["${RUNS[$i]}"]:-}" != finished ] || echo "$i"
        done
        return
    fi
    local name seed config agent_args=() log state
    [ -z "$AGENT_OVERRIDE" ] || agent_args=(--agent "$AGENT_OVERRIDE")
    log="$(mktemp)"
    for i in "${!RUNS[@]}"; do
        read -r name seed config <<< "${RUNS[$i]}"
        # as the array task will run it (the world size of one run); the device is not part of a
        # run's settings, and the login node may have no GPU
        state="$(WORLD_SIZE="$((NODES * (GPUS > 0 ? GPUS : 1)))" RANK=0 LOCAL_RANK=0 \
            status_python palr_habitat/src/palr_trainer.py --config "$config" --seed "$seed" \
            --outdir "$HABITAT_RESULTS/${name}_seed${seed}" "${agent_args[@]}" "${EXTRA[@]}" \
            --set run.device=auto --check 2>"$log")" || { cat "$log" >&2; rm -f "$log"; exit 2; }
        [ "$state" != finished ] || echo "$i"
    done
    rm -f "$log"
}

# --- the array --------------------------------------------------------------------------------
TODO=()
RESULTS_ROOT="$RESULTS_DIR"
[ "$DOMAIN" = cw ] || RESULTS_ROOT="$HABITAT_RESULTS"
if [ ! -d "$RESULTS_ROOT" ]; then  # nothing has run yet
    TODO=("${!RUNS[@]}")
elif [ -n "$RUNTIME" ] && [ ! -f "$SIF" ]; then  # a dry run before the image exists
    info "no image yet: cannot ask which runs have finished; every run is listed"
    TODO=("${!RUNS[@]}")
else
    FINISHED="$(finished_runs)" || exit 2
    for i in "${!RUNS[@]}"; do
        grep -qx "$i" <<< "$FINISHED" || TODO+=("$i")
    done
fi
if [ "${#TODO[@]}" -eq 0 ]; then
    info "all ${#RUNS[@]} runs have finished already; nothing to submit"
    if [ "$DOMAIN" = "cw" ]; then
        info "merge them with: TASKS=$TASKS EXTRA_ARGS='$EXTRA_ARGS' RESULTS_DIR=$RESULTS_DIR SIF=$SIF bash run_cw20.sh --merge"
    fi
    exit 0
fi

array_spec() {  # indices -> "0-2,5,7-9"
    local spec="" start="" prev="" i
    for i in "$@"; do
        if [ -n "$prev" ] && [ "$i" -eq $((prev + 1)) ]; then
            prev="$i"
            continue
        fi
        if [ -n "$start" ]; then
            spec+="${spec:+,}$start"
            [ "$prev" = "$start" ] || spec+="-$prev"
        fi
        start="$i"
        prev="$i"
    done
    spec+="${spec:+,}$start"
    [ "$prev" = "$start" ] || spec+="-$prev"
    printf '%s\n' "$spec"
}
ARRAY="$(array_spec "${TODO[@]}")"
if [ -n "$ARRAY_LIMIT" ]; then
    ARRAY+="%$ARRAY_LIMIT"
fi

# quote WORDS...: the words as one shell-quoted line
quote() {
    local out="" w
    for w in "$@"; do
        out+="${out:+ }$(printf '%q' "$w")"
    done
    printf '%s\n' "$out"
}

# squote WORDS...: each word in single quotes (readable in the generated scripts)
squote() {
    local out="" w q="'"
    for w in "$@"; do
        out+="${out:+ }'${w//$q/$q\\$q$q}'"
    done
    printf '%s\n' "$out"
}

# the path the python process sees (the container sees the project at /workspace)
run_path() {
    if [ -n "$RUNTIME" ]; then
        case "$1" in
            "$PROJ_DIR") echo "/workspace"; return ;;
            "$PROJ_DIR"/*) echo "/workspace/${1#"$PROJ_DIR"/}"; return ;;
        esac
    fi
    printf '%s\n' "$1"
}

# container prefix: <runtime> exec --nv --bind project:/workspace --bind project:/opt/palr [...]
container_prefix() {  # extra dirs to bind at the same path
    local binds=(--bind "$PROJ_DIR:/workspace" --bind "$PROJ_DIR:/opt/palr") d
    for d in "$@"; do
        case "$d" in
            "$PROJ_DIR" | "$PROJ_DIR"/*) ;;
            *) binds+=(--bind "$d:$d") ;;
        esac
    done
    quote "$RUNTIME" exec --nv "${binds[@]}" "$SIF"
}

sbatch_header() {  # nodes tasks-per-node cpus-per-task gres
    echo "#!/bin/bash"
    echo "#SBATCH --job-name=$JOB_NAME"
    echo "#SBATCH --array=$ARRAY"
    echo "#SBATCH --output=$LOG_DIR/%x_%A_%a.out"
    echo "#SBATCH --open-mode=append"
    echo "#SBATCH --nodes=$1"
    echo "#SBATCH --ntasks-per-node=$2"
    echo "#SBATCH --cpus-per-task=$3"
    echo "#SBATCH --time=$TIME"
    [ -z "$MEM" ] || echo "#SBATCH --mem=$MEM"
    [ "$4" -eq 0 ] || echo "#SBATCH --gres=gpu:$4"
    [ -z "$PARTITION" ] || echo "#SBATCH --partition=$PARTITION"
    [ -z "$ACCOUNT" ] || echo "#SBATCH --account=$ACCOUNT"
    [ -z "$QOS" ] || echo "#SBATCH --qos=$QOS"
    echo "#SBATCH --signal=B:USR1@$SIGNAL_LEAD"
    echo "#SBATCH --requeue"
    local flag
    for flag in "${SBATCH_MORE[@]}"; do
        echo "#SBATCH $flag"
    done
}

# The part every batch script shares: pick this task's run, start it in the background, pass
# SIGUSR1/SIGTERM on, and requeue the task when the run stopped with a checkpoint.
supervisor() {
    cat <<'EOF'

TASK_ID="${SLURM_ARRAY_TASK_ID:-0}"
if [ "$TASK_ID" -ge "${#RUNS[@]}" ]; then
    echo "[palr] array task $TASK_ID has no run (${#RUNS[@]} runs)" >&2
    exit 2
fi
JOB_REF="${SLURM_JOB_ID:-local}"
if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then
    JOB_REF="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}"
select_run "${RUNS[$TASK_ID]}"
echo "[palr] $(date '+%F %T') $JOB_REF on $(hostname): $RUN_LABEL (start $((${SLURM_RESTART_COUNT:-0} + 1)))"
if declare -F check_task >/dev/null; then
    check_task || exit $?  # bad input: the task ends here (status 2), without requeue
fi

child=0
pending=0
stop_signal=""
# shellcheck disable=SC2317  # called by the traps below
on_signal() {  # SIGNAL
    stop_signal="$1"
    pending=1
    echo "[palr] $(date '+%F %T') got SIG$1: asking the run to checkpoint and stop" >&2
    if [ "$child" -gt 0 ]; then
        forward_stop "$1"
    fi
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM

run_task &
child=$!
while :; do
    status=0
    wait "$child" || status=$?
    # a trapped signal interrupts wait while the run goes on: wait again for its exit status
    if [ "$pending" = 1 ]; then
        pending=0
        continue
    fi
    break
done
echo "[palr] $(date '+%F %T') run exited with status $status"

# 75 = stopped by a signal after saving its checkpoint (torchrun reports another non-zero status)
if [ "$stop_signal" != TERM ] && { [ "$status" = 75 ] || { [ "$stop_signal" = USR1 ] && [ "$status" != 0 ]; }; }; then
    if [ -n "${SLURM_JOB_ID:-}" ] && command -v scontrol >/dev/null 2>&1; then
        echo "[palr] checkpoint saved: requeueing $JOB_REF; its next start resumes the run"
        if scontrol requeue "$JOB_REF"; then
            exit 0
        fi
        echo "[palr] scontrol requeue $JOB_REF failed: submit again to resume" >&2
    else
        echo "[palr] checkpoint saved; not under SLURM: run this script again to resume" >&2
    fi
    exit 75
fi
exit "$status"
EOF
}

cw_script() {
    local results device=()
    results="$(run_path "$RESULTS_DIR")"
    [ "$GPUS" -gt 0 ] || device=(--device cpu)
    sbatch_header 1 1 "$CPUS" "$GPUS"
    echo "# Generated by $PROG on $(date '+%F %T'): Continual World $TASKS, ${#RUNS[@]} runs (seed agent);"
    echo "# array task i runs RUNS[i]. Rerunning $PROG leaves finished runs out."
    echo "set -uo pipefail"
    echo
    echo "PROJ_DIR=$(printf '%q' "$PROJ_DIR")"
    echo "RUNS=($(squote "${RUNS[@]}"))"
    echo
    echo "# shellcheck disable=SC2317  # called by the signal traps"
    echo "forward_stop() {  # SIGNAL: the run checkpoints at its next episode end and exits 75"
    echo "    kill -s \"\$1\" \"\$child\" 2>/dev/null || true"
    echo "}"
    echo
    echo "select_run() {  # \"seed agent\""
    echo "    read -r seed agent <<< \"\$1\""
    echo "    RUN_LABEL=\"$TASKS seed \$seed agent \$agent -> $(printf '%q' "$RESULTS_DIR")\""
    echo "}"
    echo
    echo "run_task() {"
    echo "    mkdir -p $(printf '%q' "$RESULTS_DIR")"
    echo "    cd \"\$PROJ_DIR\" || exit 2"
    local python_args
    python_args="$(quote palr_plasticity_aware_lr/src/run_cw_experiments.py "$TASK_FLAG" \
        --episodes_per_task "$EPISODES" --seeds 1 --batch_size "$BATCH_SIZE")"
    # no --ckpt_suffix: the run names its file cw_checkpoint_<sequence label>_seed<S>_agent<A>.json
    python_args+=" --seed_offset \"\$seed\" --agent_idx \"\$agent\""
    python_args+=" $(quote --outdir "$results" --no_progress "${device[@]}" "${EXTRA[@]}")"
    if [ -n "$RUNTIME" ]; then
        echo "    # shellcheck disable=SC2016  # \$@ is expanded by the container's bash"
        echo "    exec $(container_prefix "$RESULTS_DIR") bash -c 'cd /workspace && exec python \"\$@\"' palr-cw \\"
    else
        echo "    exec ./run.sh python \\"
    fi
    echo "        $python_args"
    echo "}"
    supervisor
}

habitat_script() {
    local nproc=1 tasks_per_node=1 cpus launcher
    [ "$GPUS" -eq 0 ] || nproc="$GPUS"
    if [ "$HABITAT_LAUNCHER" = "srun" ]; then
        tasks_per_node="$nproc"
        cpus="$CPUS"
    else
        cpus=$((CPUS * nproc))
    fi
    sbatch_header "$NODES" "$tasks_per_node" "$cpus" "$GPUS"
    echo "# Generated by $PROG on $(date '+%F %T'): Habitat DD-PPO, ${#RUNS[@]} runs (name seed config),"
    echo "# $NODES node(s) x $nproc process(es) each ($HABITAT_LAUNCHER); array task i runs RUNS[i]."
    echo "set -uo pipefail"
    echo
    echo "PROJ_DIR=$(printf '%q' "$PROJ_DIR")"
    echo "RESULTS=$(printf '%q' "$(run_path "$HABITAT_RESULTS")")"
    echo "RUNS=($(squote "${RUNS[@]}"))"
    cat <<'SCRIPT'

# srun ends its step at once on SIGTERM, and torchrun has no SIGUSR1 handler: ask SLURM to send
# SIGTERM to every process of this job's steps (torchrun and the trainers), which checkpoint and stop.
# shellcheck disable=SC2317  # called by the signal traps
forward_stop() {  # SIGNAL
    if [ -n "${SLURM_JOB_ID:-}" ] && scancel --signal=TERM "$SLURM_JOB_ID" 2>/dev/null; then
        return
    fi
    kill -s TERM "$child" 2>/dev/null || true
}
SCRIPT
    echo
    echo "select_run() {  # \"name seed config\""
    echo "    read -r name seed config <<< \"\$1\""
    echo "    outdir=\"\$RESULTS/\${name}_seed\${seed}\""
    echo "    RUN_LABEL=\"\$name seed \$seed (\$config) -> \$outdir\""
    echo "}"
    echo
    local trainer_flags trainer_args
    trainer_flags="--config \"\$config\" --seed \"\$seed\" --outdir \"\$outdir\""
    if [ -n "$AGENT_OVERRIDE" ]; then
        trainer_flags+=" $(quote --agent "$AGENT_OVERRIDE")"
    fi
    if [ "${#EXTRA[@]}" -gt 0 ]; then
        trainer_flags+=" $(quote "${EXTRA[@]}")"
    fi
    trainer_args="palr_habitat/src/palr_trainer.py $trainer_flags"
    # the trainer validates the run first (one line, exit 2), not every rank under srun/torchrun
    echo "check_task() {  # palr_trainer.py --check: config, agent, backend, outdir, checkpoint"
    echo "    cd \"\$PROJ_DIR\" || exit 2"
    if [ -n "$RUNTIME" ]; then
        echo "    # shellcheck disable=SC2016  # \$@ is expanded by the container's bash"
        echo "    $(container_prefix "$HABITAT_RESULTS") bash -c 'cd /workspace && exec \"\$@\"' palr-habitat \\"
        echo "        $HABITAT_BIN/python palr_habitat/src/palr_trainer.py --check $trainer_flags"
    else
        echo "    ./run.sh python palr_habitat/src/palr_trainer.py --check $trainer_flags"
    fi
    echo "}"
    echo
    echo "run_task() {"
    echo "    mkdir -p $(printf '%q' "$HABITAT_RESULTS")"
    echo "    cd \"\$PROJ_DIR\" || exit 2"
    echo "    MASTER_ADDR=\"\$(scontrol show hostnames \"\${SLURM_JOB_NODELIST:-127.0.0.1}\" 2>/dev/null | head -n 1)\""
    echo "    export MASTER_ADDR=\"\${MASTER_ADDR:-127.0.0.1}\""
    echo "    export MASTER_PORT=\"\${MASTER_PORT:-\$((20000 + \${SLURM_JOB_ID:-0} % 20000))}\""
    local srun_args="srun --kill-on-bad-exit=1 --ntasks-per-node=$tasks_per_node --cpus-per-task=\"\${SLURM_CPUS_PER_TASK:-1}\""
    if [ "$HABITAT_LAUNCHER" = "torchrun" ]; then
        launcher="torchrun --nnodes=\"\${SLURM_JOB_NUM_NODES:-1}\" --nproc_per_node=$nproc --rdzv_id=\"\$JOB_REF\" --rdzv_backend=c10d --rdzv_endpoint=\"\$MASTER_ADDR:\$MASTER_PORT\""
        if [ -n "$RUNTIME" ]; then
            launcher="$HABITAT_BIN/$launcher"
        fi
    else
        launcher="python"
        if [ -n "$RUNTIME" ]; then
            launcher="$HABITAT_BIN/python"
        fi
    fi
    if [ -n "$RUNTIME" ]; then
        echo "    # shellcheck disable=SC2016  # \$@ is expanded by the container's bash"
        echo "    exec $srun_args \\"
        echo "        $(container_prefix "$HABITAT_RESULTS") bash -c 'cd /workspace && exec \"\$@\"' palr-habitat \\"
    else
        echo "    exec $srun_args ./run.sh \\"
    fi
    echo "        $launcher \\"
    echo "        $trainer_args"
    echo "}"
    supervisor
}

merge_script() {
    echo "#!/bin/bash"
    echo "#SBATCH --job-name=$JOB_NAME-merge"
    echo "#SBATCH --output=$LOG_DIR/%x_%j.out"
    echo "#SBATCH --ntasks=1"
    echo "#SBATCH --cpus-per-task=1"
    echo "#SBATCH --time=00:30:00"
    [ -z "$PARTITION" ] || echo "#SBATCH --partition=$PARTITION"
    [ -z "$ACCOUNT" ] || echo "#SBATCH --account=$ACCOUNT"
    [ -z "$QOS" ] || echo "#SBATCH --qos=$QOS"
    echo "# Generated by $PROG on $(date '+%F %T'): merge + plots of the $TASKS checkpoints after the array."
    echo "set -euo pipefail"
    echo "cd $(printf '%q' "$PROJ_DIR")"
    echo "SIF=$(printf '%q' "$SIF") TASKS=$TASKS RESULTS_DIR=$(printf '%q' "$RESULTS_DIR") \\"
    echo "    EXTRA_ARGS=$(printf '%q' "$EXTRA_ARGS") \\"
    echo "    SEEDS=$(squote "$SEEDS") AGENTS=$(squote "$RUN_AGENTS") EPISODES=$EPISODES BATCH_SIZE=$BATCH_SIZE PARALLEL=1 \\"
    echo "    exec bash ./run_cw20.sh --merge"
}

# --- write, print, submit ---------------------------------------------------------------------
STAMP="$(date '+%Y%m%d-%H%M%S')_$$"
ARRAY_FILE="$LOG_DIR/${JOB_NAME}_${STAMP}.sbatch"
MERGE_FILE="$LOG_DIR/${JOB_NAME}-merge_${STAMP}.sbatch"
if [ "$DOMAIN" = "cw" ]; then
    ARRAY_TEXT="$(cw_script)"
else
    ARRAY_TEXT="$(habitat_script)"
    MERGE=0
fi
[ "$MERGE" = 0 ] || MERGE_TEXT="$(merge_script)"

if [ "$DRY_RUN" = 1 ]; then
    echo "# ---- sbatch script: $ARRAY_FILE ----"
    printf '%s\n' "$ARRAY_TEXT"
    echo "# ---- end of sbatch script ----"
    echo "# ---- would run: sbatch --parsable $(printf '%q' "$ARRAY_FILE")"
    if [ "$MERGE" = 1 ]; then
        echo "# ---- sbatch script: $MERGE_FILE ----"
        printf '%s\n' "$MERGE_TEXT"
        echo "# ---- end of sbatch script ----"
        echo "# ---- would run: sbatch --parsable --dependency=afterany:<array job id> $(printf '%q' "$MERGE_FILE")"
    fi
    info "dry run: ${#TODO[@]} of ${#RUNS[@]} runs would be submitted as array $ARRAY; nothing submitted"
    exit 0
fi

command -v sbatch >/dev/null 2>&1 || \
    die "sbatch not found: run this on a SLURM login node (--dry-run shows the job scripts; run_cw20.sh runs locally)"
mkdir -p "$LOG_DIR"
printf '%s\n' "$ARRAY_TEXT" > "$ARRAY_FILE"
ARRAY_JOB="$(sbatch --parsable "$ARRAY_FILE")"
ARRAY_JOB="${ARRAY_JOB%%;*}"
echo "[run_on_HPC] submitted job array $ARRAY_JOB: ${#TODO[@]} task(s) ($ARRAY) of ${#RUNS[@]} runs; logs $LOG_DIR/${JOB_NAME}_${ARRAY_JOB}_<task>.out"
if [ "$MERGE" = 1 ]; then
    printf '%s\n' "$MERGE_TEXT" > "$MERGE_FILE"
    MERGE_JOB="$(sbatch --parsable --dependency="afterany:$ARRAY_JOB" "$MERGE_FILE")"
    MERGE_JOB="${MERGE_JOB%%;*}"
    echo "[run_on_HPC] submitted merge job $MERGE_JOB (after array $ARRAY_JOB): $TASKS results in $RESULTS_DIR"
fi
echo "[run_on_HPC] watch: squeue -j $ARRAY_JOB    stop: scancel $ARRAY_JOB    preempt+requeue a task: scancel --signal=USR1 --batch ${ARRAY_JOB}_<task>"
