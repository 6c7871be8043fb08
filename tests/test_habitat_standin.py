"""The MuJoCo stand-in for habitat's Fetch tasks: observation contract, rendering, phases."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("metaworld")

from palr_habitat.ddppo_config import EnvConfig, default_phases  # noqa: E402
from palr_habitat.fetch_habitat_env import OBS_KEYS_HABITAT, habitat_observation  # noqa: E402
from palr_habitat.fetch_obs import observation_shapes  # noqa: E402
from palr_habitat.fetch_standin_env import MetaWorldPhase, StandInFetchEnv  # noqa: E402
from palr_habitat.fetch_vec_env import FetchVecEnv, resolve_backend  # noqa: E402

from habitat_helpers import check_observation  # noqa: E402

RES = 16


def test_every_phase_exposes_the_habitat_observation_contract():
    env = StandInFetchEnv(default_phases(), EnvConfig(resolution=RES, max_episode_steps=5), seed=1)
    try:
        assert env.action_dim == 4
        seen = []
        for phase in range(4):
            env.set_phase(phase)
            assert env.current.task.task_name == default_phases()[phase].standin_task
            obs = env.reset()
            check_observation(obs, RES)
            assert obs["rgb"].std() > 5  # an actual picture, not a blank buffer
            assert 0.0 < obs["depth"].min() < obs["depth"].max() <= 1.0
            seen.append(obs["rgb"])
            for t in range(5):
                obs, reward, terminated, truncated, info = env.step(np.zeros(4))
                check_observation(obs, RES)
                assert np.isfinite(reward) and info["phase"] == phase
            assert truncated and not terminated  # the 5-step limit
        assert not np.array_equal(seen[0], seen[2])  # a different scene per phase
        with pytest.raises(ValueError, match="4-d"):
            env.step(np.zeros(3))
    finally:
        env.close()


def test_standin_gives_the_habitat_backends_keys_and_resting_position():
    """The stand-in's observation has the keys, shapes and dtypes the habitat backend makes of a
    habitat-lab observation; ee_pos is the hand in the robot base's frame and
    relative_resting_position the resting (initial) hand position minus it."""
    sizes = {"joint": 7, "is_holding": 1, "obj_start_sensor": 3, "obj_goal_sensor": 3,
             "ee_pos": 3, "relative_resting_position": 3}
    raw = {"head_rgb": np.zeros((RES, RES, 3), np.uint8),
           "head_depth": np.zeros((RES, RES, 1), np.float32),
           **{k: np.zeros(n, np.float32) for k, n in sizes.items()}}
    assert sorted(raw) == sorted(OBS_KEYS_HABITAT)
    habitat = habitat_observation(raw, RES)
    phase = MetaWorldPhase("door-open-v3", 0, EnvConfig(resolution=RES))
    try:
        first = phase.reset()
        assert {k: (v.shape, v.dtype) for k, v in first.items()} == \
            {k: (v.shape, v.dtype) for k, v in habitat.items()}
        resting = np.asarray(phase.task.mw.hand_init_pos, np.float32)  # base frame = world here
        assert np.allclose(first["ee_pos"] + first["relative_resting_position"], resting,
                           atol=1e-5)
        assert np.linalg.norm(first["relative_resting_position"]) < 0.05  # starts at rest
        for _ in range(10):
            obs = phase.step(np.array([1.0, 0.0, 0.0, 0.0]))[0]
        assert obs["ee_pos"][0] > first["ee_pos"][0] + 0.02  # the hand moved along +x
        assert np.allclose(obs["ee_pos"] + obs["relative_resting_position"], resting, atol=1e-5)
    finally:
        phase.close()


def test_depth_and_orientation_match_mujocos_own_renderer():
    """Our single-pass RGB-D render equals mujoco.Renderer's (top row first, metric depth)."""
    import mujoco
    phase = MetaWorldPhase("pick-place-v3", 3, EnvConfig(resolution=32, max_depth=3.0))
    try:
        phase.reset()
        ours = phase.renderer.render(phase.task.mw.data)[1][..., 0] * 3.0
        reference = mujoco.Renderer(phase.task.mw.model, 32, 32)
        reference.enable_depth_rendering()
        reference.update_scene(phase.task.mw.data, camera="topview")
        theirs = np.minimum(reference.render(), 3.0)
        reference.close()
        assert np.allclose(ours, theirs, atol=1e-4)
        assert (np.abs(ours - theirs[::-1]) > 0.01).mean() > 0.3  # the flip matters
    finally:
        phase.close()


def test_is_holding_and_success_with_a_scripted_grasp():
    from metaworld.policies import SawyerPickPlaceV3Policy
    phase = MetaWorldPhase("pick-place-v3", 1, EnvConfig(resolution=RES, end_on_success=True))
    policy = SawyerPickPlaceV3Policy()
    try:
        state, _ = phase.task.reset()
        holding = []
        for _ in range(150):
            obs, reward, terminated, truncated, success = phase.step(policy.get_action(state))
            state = phase.task.mw._get_obs()
            holding.append(obs["is_holding"][0])
            if terminated:
                break
        assert success and terminated  # habitat's end_on_success
        assert holding[0] == 0.0 and max(holding) == 1.0
    finally:
        phase.close()


def test_several_envs_in_one_process_render_consistently():
    cfg = EnvConfig(resolution=RES, num_envs=2, vector="inline", max_episode_steps=3)
    vec = FetchVecEnv("standin", default_phases(), cfg, seed=0, rank=0)
    try:
        first = vec.reset()
        again = vec.envs[0].env.current.observation(vec.envs[0].env.current.task.mw._get_obs())
        assert np.array_equal(first["rgb"][0], again["rgb"])  # env 1's context did not clobber it
        shapes = observation_shapes(RES)
        assert all(first[k].shape == (2,) + shapes[k][0] for k in shapes)
        episodes = []
        for _ in range(3):
            obs, rewards, dones, finished = vec.step(np.zeros((2, 4)))
            episodes += finished
        assert dones.all() and len(episodes) == 2 and episodes[0]["length"] == 3.0
        obs = vec.set_phase(2)
        assert obs["rgb"].shape == (2, RES, RES, 3)
        assert vec.envs[1].env.current.task.task_name == "door-open-v3"
    finally:
        vec.close()


def _saved_and_loaded_envs_continue_identically(source_vector: str, phase: int) -> None:
    """Envs saved mid-episode (after an episode ended) and loaded into inline envs with another
    history and phase: every later step is identical (observations, rewards, dones, finished
    episodes with their return, length and success so far)."""
    cfg = EnvConfig(resolution=RES, num_envs=2, max_episode_steps=7)
    rng = np.random.default_rng(phase)
    source = FetchVecEnv("standin", default_phases(), replace(cfg, vector=source_vector), seed=5,
                         rank=1, phase=phase)
    copy = FetchVecEnv("standin", default_phases(), replace(cfg, vector="inline"), seed=5,
                       rank=1, phase=(phase + 1) % 4)
    try:
        source.reset()
        copy.reset()
        finished = []
        for _ in range(11):  # one episode ends at step 7, the next is 4 steps in
            finished += source.step(rng.uniform(-1.5, 1.5, (2, 4)))[3]
            copy.step(rng.uniform(-1.5, 1.5, (2, 4)))  # a different history
        assert len(finished) == 2
        copy.load_state_dict(source.state_dict())
        assert copy.envs[0].env.phase == phase
        for _ in range(12):
            actions = rng.uniform(-1.5, 1.5, (2, 4))
            (obs_a, rew_a, done_a, eps_a), (obs_b, rew_b, done_b, eps_b) = \
                source.step(actions), copy.step(actions)
            assert all(np.array_equal(obs_a[k], obs_b[k]) for k in obs_a)
            assert np.array_equal(rew_a, rew_b) and np.array_equal(done_a, done_b)
            assert eps_a == eps_b
            finished += eps_a
        assert len(finished) == 6 and {e["length"] for e in finished} == {7.0}
    finally:
        source.close()
        copy.close()


@pytest.mark.parametrize("phase", [0, 1, 2, 3])
def test_saved_envs_continue_bit_identically(phase):
    _saved_and_loaded_envs_continue_identically("inline", phase)


@pytest.mark.slow
def test_env_workers_save_and_load_their_state():
    """The same through subprocess workers (their state_dict / load_state_dict commands)."""
    _saved_and_loaded_envs_continue_identically("subprocess", 2)


def test_backend_selection():
    assert resolve_backend("standin") == "standin"
    assert resolve_backend("auto") in ("habitat", "standin")
    from palr_habitat.fetch_habitat_env import habitat_available
    if not habitat_available():
        assert resolve_backend("auto") == "standin"
        with pytest.raises(ValueError, match="habitat_sim is not importable"):
            resolve_backend("habitat")
