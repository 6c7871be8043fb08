#!/usr/bin/env bash
# Habitat Fetch ablation sweep: the four DD-PPO configs (PALR, baseline, LR scaling only,
# perturbation only) for every seed, one after the other, through run_interactive.sh (so with the
# container when there is one, else the local .venv and the MuJoCo stand-in).
#
#   bash run_interactive_ablation.sh
#   SEEDS="0 1 2" NPROC=3 bash run_interactive_ablation.sh
#   SIF=none TINY=1 bash run_interactive_ablation.sh --set run.max_iterations=4   # quick local check
#
# Knobs: SEEDS (space-separated integers, default "0"), NPROC, SIF, TINY, CUDA_VISIBLE_DEVICES as
# in run_interactive.sh; RESULTS (default palr_habitat/results). Runs go to
# <RESULTS>/<config name without ddppo_ and _fetch>_seed<S> (palr, baseline, palr_lr_only,
# palr_perturb_only). In tiny mode (local without a GPU, or TINY=1) every run uses the tiny
# stand-in config with the agent of its experiment. The sweep stops at the first failing run (with
# its status: 2 for bad input) or stopped one: SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 go on to the
# running run_interactive.sh, whose trainers save their checkpoints, and the sweep exits 75. Run
# it again to resume (finished runs end at once, interrupted ones resume from their checkpoints).
# It ends with the summary table of every run (run_interactive.sh --summary).
set -euo pipefail

PROJ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="run_interactive_ablation.sh"
# shellcheck source=scripts/launcher_lib.sh
. "$PROJ_DIR/scripts/launcher_lib.sh"
SEEDS="${SEEDS:-0}"
NPROC="${NPROC:-1}"
TINY="${TINY:-auto}"
SIF="${SIF:-$PROJ_DIR/palr_container.sif}"
RESULTS="${RESULTS:-palr_habitat/results}"
TINY_CONFIG="palr_habitat/configs/ddppo_palr_fetch_tiny.yaml"
# experiment name : config : agent (the agent is what the tiny config needs)
EXPERIMENTS=(
    "palr:palr_habitat/configs/ddppo_palr_fetch.yaml:PALR-PPO"
    "baseline:palr_habitat/configs/ddppo_baseline_fetch.yaml:FixedLR"
    "palr_lr_only:palr_habitat/configs/ddppo_palr_lr_only_fetch.yaml:PALR-NoPerturb"
    "palr_perturb_only:palr_habitat/configs/ddppo_palr_perturb_only_fetch.yaml:PALR-NoScale"
)

check_int_list SEEDS "$SEEDS" 0
read -r -a SEED_LIST <<< "$SEEDS"
check_int NPROC "$NPROC" 1
case "$TINY" in
    auto | 0 | 1) ;;
    *) die "TINY must be auto, 0 or 1, got '$TINY'" ;;
esac

use_tiny=0
if [ "$TINY" = "1" ]; then
    use_tiny=1
elif [ "$TINY" = "auto" ] && [ -z "$(container_runtime "$SIF")" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
    use_tiny=1
    echo "$PROG: local run without a GPU: tiny stand-in config for every experiment (TINY=0 to change)" >&2
fi

trap_stop_signals
TOTAL=$(( ${#SEED_LIST[@]} * ${#EXPERIMENTS[@]} ))
STARTED_AT=$SECONDS
run=0
for seed in "${SEED_LIST[@]}"; do
    for experiment in "${EXPERIMENTS[@]}"; do
        IFS=: read -r name config agent <<< "$experiment"
        outdir="$RESULTS/${name}_seed${seed}"
        run=$((run + 1))
        elapsed=$((SECONDS - STARTED_AT))
        eta="?"
        if [ "$run" -gt 1 ]; then
            eta="$(( elapsed * (TOTAL - run + 1) / (run - 1) ))s"
        fi
        echo "$PROG: === run $run/$TOTAL: $name seed $seed -> $outdir (elapsed ${elapsed}s, ETA $eta)" >&2
        if [ "$use_tiny" = "1" ]; then
            config="$TINY_CONFIG"
        else
            agent=""
        fi
        start_group env SEED="$seed" NPROC="$NPROC" SIF="$SIF" TINY="$use_tiny" CONFIG="$config" \
            AGENT="$agent" OUTDIR="$outdir" bash "$PROJ_DIR/run_interactive.sh" "$@"
        wait_group "$CHILD_PID"
        if [ -n "$STOP_SIGNAL" ] || [ "$CHILD_STATUS" = 75 ]; then
            echo "$PROG: stopped at $name seed $seed${STOP_SIGNAL:+ (SIG$STOP_SIGNAL)}; run the same command again to resume" >&2
            exit 75
        fi
        [ "$CHILD_STATUS" = 0 ] || exit "$CHILD_STATUS"
    done
done
RUN_DIRS=()
for seed in "${SEED_LIST[@]}"; do
    for experiment in "${EXPERIMENTS[@]}"; do
        RUN_DIRS+=("$RESULTS/${experiment%%:*}_seed${seed}")
    done
done
SIF="$SIF" bash "$PROJ_DIR/run_interactive.sh" --summary \
    --title "Habitat ablation: ${#EXPERIMENTS[@]} configs x seeds $SEEDS" "${RUN_DIRS[@]}"
echo "$PROG: all runs finished under $RESULTS" >&2
