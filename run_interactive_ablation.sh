#!/usr/bin/env bash
# Habitat Fetch ablation sweep: the four DD-PPO configs (PALR, baseline, LR scaling only,
# perturbation only) for every seed, one after the other, through run_interactive.sh (so with the
# container when there is one, else the local .venv and the MuJoCo stand-in).
#
#   bash run_interactive_ablation.sh
#   SEEDS="0 1 2" NPROC=3 bash run_interactive_ablation.sh
#   SIF=none TINY=1 bash run_interactive_ablation.sh --set run.max_updates=4   # quick local check
#
# Knobs: SEEDS (space-separated integers, default "0"), NPROC, SIF, TINY, CUDA_VISIBLE_DEVICES as
# in run_interactive.sh; RESULTS (default palr_habitat/results). Runs go to
# <RESULTS>/<config name without ddppo_ and _fetch>_seed<S> (palr, baseline, palr_lr_only,
# palr_perturb_only). In tiny mode (local without a GPU, or TINY=1) every run uses the tiny
# stand-in config with the agent of its experiment. The sweep stops at the first failing run; run
# it again to resume (finished runs end at once, interrupted ones resume from their checkpoints).
set -euo pipefail

PROJ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
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

die() {
    echo "run_interactive_ablation.sh: error: $*" >&2
    exit 2
}

read -r -a SEED_LIST <<< "$SEEDS"
[ "${#SEED_LIST[@]}" -gt 0 ] || die "SEEDS is empty; give space-separated integers, e.g. SEEDS=\"0 1 2\""
for seed in "${SEED_LIST[@]}"; do
    [[ "$seed" =~ ^[0-9]+$ ]] || die "SEEDS must be space-separated non-negative integers, got '$seed'"
done
if ! [[ "$NPROC" =~ ^[0-9]+$ ]] || [ "$NPROC" -lt 1 ]; then
    die "NPROC must be a positive integer, got '$NPROC'"
fi
case "$TINY" in
    auto | 0 | 1) ;;
    *) die "TINY must be auto, 0 or 1, got '$TINY'" ;;
esac

use_tiny=0
if [ "$TINY" = "1" ]; then
    use_tiny=1
elif [ "$TINY" = "auto" ]; then
    has_runtime=0
    if [ "$SIF" != "none" ] && { command -v apptainer >/dev/null 2>&1 || command -v singularity >/dev/null 2>&1; }; then
        has_runtime=1
    fi
    if [ "$has_runtime" = "0" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
        use_tiny=1
        echo "run_interactive_ablation.sh: local run without a GPU: tiny stand-in config for every experiment (TINY=0 to change)" >&2
    fi
fi

for seed in "${SEED_LIST[@]}"; do
    for experiment in "${EXPERIMENTS[@]}"; do
        IFS=: read -r name config agent <<< "$experiment"
        outdir="$RESULTS/${name}_seed${seed}"
        echo "run_interactive_ablation.sh: === $name seed $seed -> $outdir" >&2
        if [ "$use_tiny" = "1" ]; then
            SEED="$seed" NPROC="$NPROC" SIF="$SIF" TINY=1 CONFIG="$TINY_CONFIG" AGENT="$agent" \
                OUTDIR="$outdir" bash "$PROJ_DIR/run_interactive.sh" "$@"
        else
            SEED="$seed" NPROC="$NPROC" SIF="$SIF" TINY=0 CONFIG="$config" AGENT="" \
                OUTDIR="$outdir" bash "$PROJ_DIR/run_interactive.sh" "$@"
        fi
    done
done
echo "run_interactive_ablation.sh: all runs finished under $RESULTS" >&2
