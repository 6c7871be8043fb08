#!/usr/bin/env bash
# Check for the real Jelly Bean World simulator (the `jbw` Python package, a C++ extension by
# Platanios et al.) and smoke-test the JBW environment through palr.envs.jbw.
#
#   bash palr_plasticity_aware_lr/setup_jbw.sh
#
# When `jbw` imports in PYTHON, the smoke test runs on the real simulator (backend "jbw").
# Otherwise the script says how to install it and smoke-tests the built-in NumPy simulator
# (palr.envs.jbw_sim), which palr uses in its place. jbw is not on PyPI: install it from its
# source distribution by following the jelly-bean-world repository's README (its Python package
# lives under api/python; build with --no-build-isolation --no-deps against the installed numpy,
# since its setup.py asks for `enum34`, which shadows the standard library's enum). This project
# does not ship a build recipe for it.
# Knobs: PYTHON (default: <project>/.venv/bin/python if present, else python3).
# Exit status: 0 when the smoke test passed on either backend; 1 when it failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJ_DIR="$(cd "$HERE/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$PROJ_DIR/.venv/bin/python" ]; then
        PYTHON="$PROJ_DIR/.venv/bin/python"
    else
        PYTHON="python3"
    fi
fi

say() { printf '[setup_jbw] %s\n' "$*"; }

smoke_test() {  # backend
    "$PYTHON" - "$1" <<'EOF'
import sys

import numpy as np
from palr.envs.jbw import JellyBeanWorldEnv

backend = sys.argv[1]
env = JellyBeanWorldEnv(backend=backend, world="jbw-v0", episode_steps=100, seed=1)
obs, info = env.reset()
assert info["backend"] == backend, info
rng = np.random.default_rng(0)
total = 0.0
for _ in range(100):
    obs, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
    total += reward
assert obs.shape == env.observation_space.shape and np.isfinite(obs).all()
print(f"[setup_jbw] smoke test ok: backend={backend}, obs {obs.shape}, 100 steps, return {total:+.1f}, "
      f"items {info['episode_items']}")
EOF
}

if "$PYTHON" -c "import jbw, sys; sys.exit(0 if hasattr(jbw, 'Simulator') else 1)" >/dev/null 2>&1; then
    say "jbw imports in $PYTHON; smoke-testing the real simulator."
    smoke_test jbw
else
    say "jbw is not installed in $PYTHON: the built-in simulator (palr.envs.jbw_sim) will be used;"
    say "to use the real one, install jbw from its source (see this script's header), then re-run."
    smoke_test builtin
fi
