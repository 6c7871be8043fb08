"""The CartPole environments need no explicit import of palr to be made with gymnasium."""
import subprocess
import sys
from importlib import metadata

import gymnasium
import pytest

from palr.envs.continual_cartpole import SCORE_THRESHOLD
from palr.gym_envs import SPECS

IDS = ("palr/ContinualCartPole-v0", "palr/ContinualPermutedCartPole-v0")
PLUGINS = int(gymnasium.__version__.split(".")[0]) < 1  # gymnasium < 1.0 loads entry points


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing of palr imported); returns its stdout."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_package_declares_the_gymnasium_entry_point():
    [plugin] = [ep for ep in metadata.entry_points(group="gymnasium.envs") if ep.name == "palr"]
    assert plugin.value == "palr.gym_envs:register_envs"


@pytest.mark.parametrize("env_id", IDS)
def test_the_entry_point_registers_without_importing_the_environments(env_id):
    """What gymnasium < 1.0 does at ``import gymnasium``: load the entry point and call it. It
    imports neither the environment modules nor torch; gymnasium.make then imports them."""
    code = f"""
import sys
from importlib import metadata
import gymnasium
[plugin] = [ep for ep in metadata.entry_points(group="gymnasium.envs") if ep.name == "palr"]
plugin.load()()
assert "palr.envs" not in sys.modules and "torch" not in sys.modules, sorted(sys.modules)
env = gymnasium.make("{env_id}")
obs, _ = env.reset(seed=0)
print(env.spec.id, env.spec.reward_threshold, obs.shape)
"""
    assert run_fresh(code).split() == [env_id, str(SCORE_THRESHOLD), "(4,)"]


@pytest.mark.parametrize("env_id", IDS)
def test_gym_make_works_in_a_fresh_process_without_importing_palr(env_id):
    """gymnasium < 1.0: the plain id (the entry point ran at import). gymnasium >= 1.0 loads no
    plugins: the id names the module that registers it."""
    make_id = env_id if PLUGINS else f"palr.envs:{env_id}"
    code = f"""
import sys
import gymnasium
assert not any(m == "palr" or m.startswith("palr.") for m in sys.modules)
env = gymnasium.make("{make_id}")
env.reset(seed=0)
print(env.spec.id, type(env.unwrapped).__module__)
"""
    assert run_fresh(code).split()[0] == env_id


def test_every_spec_names_an_importable_environment():
    for env_id, spec in SPECS.items():
        assert gymnasium.spec(env_id).entry_point == spec["entry_point"]
        assert spec["reward_threshold"] == SCORE_THRESHOLD
