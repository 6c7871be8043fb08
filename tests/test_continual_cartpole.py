"""Continual CartPole: silent phase schedule, physics per phase, gymnasium API, checkpointing."""
import io

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from palr.envs.continual_cartpole import (DEFAULT_PHASES, ENV_ID, SCORE_THRESHOLD, CartPolePhase,
                                          ContinualCartPoleConfig, ContinualCartPoleEnv,
                                          register_env)


def run_episode(env, rng, max_steps=1000):
    """Random-action episode; returns (reset info, step infos, length, truncated)."""
    _, info = env.reset()
    infos = []
    for t in range(max_steps):
        _, _, terminated, truncated, step_info = env.step(int(rng.integers(2)))
        infos.append(step_info)
        if terminated or truncated:
            return info, infos, t + 1, truncated
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("cycle", [True, False])
def test_phase_switches_exactly_at_boundaries(cycle):
    env = ContinualCartPoleEnv(phase_episodes=3, cycle=cycle)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    phases = [0]  # the seeded reset above was episode 0
    env.step(0)
    for _ in range(4 * 3 * 2 - 1):
        info, step_infos, _, _ = run_episode(env, rng)
        assert all(s["phase"] == info["phase"] for s in step_infos)
        phases.append(info["phase"])
    expected_first = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert phases[:12] == expected_first
    if cycle:
        assert phases[12:] == expected_first
    else:
        assert phases[12:] == [3] * 12
    assert env.episode == 23


def test_physics_parameters_follow_the_phase():
    env = ContinualCartPoleEnv(phase_episodes=1)
    assert env.num_phases == 4 == len(DEFAULT_PHASES)
    seen = []
    for k in range(4):
        _, info = env.reset(seed=k)
        p = DEFAULT_PHASES[k]
        assert info == {"phase": k, "episode": k}
        assert (env.gravity, env.masscart, env.masspole, env.length, env.force_mag) == (
            p.gravity, p.masscart, p.masspole, p.length, p.force_mag)
        assert env.total_mass == pytest.approx(p.masscart + p.masspole)
        assert env.polemass_length == pytest.approx(p.masspole * p.length)
        seen.append((p.gravity, p.masscart, p.masspole, p.length, p.force_mag))
    assert len(set(seen)) == 4
    # phase 0 is gymnasium's CartPole-v1
    ref = gymnasium.make("CartPole-v1").unwrapped
    assert (ref.gravity, ref.masscart, ref.masspole, ref.length, ref.force_mag) == seen[0]


def test_same_state_and_action_give_different_next_states_per_phase():
    env = ContinualCartPoleEnv(phase_episodes=1)
    start = np.array([0.01, 0.2, 0.05, -0.1])
    nexts = []
    for _ in range(4):
        env.reset(seed=0)
        env.state = start.copy()
        for _ in range(5):
            obs, *_ = env.step(1)
        nexts.append(obs)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(nexts[i], nexts[j], atol=1e-4), (i, j)
    # and phase 0 equals gymnasium's own CartPole dynamics
    ref = gymnasium.make("CartPole-v1").unwrapped
    ref.reset(seed=0)
    ref.state = start.copy()
    for _ in range(5):
        obs, *_ = ref.step(1)
    np.testing.assert_array_equal(obs, nexts[0])


@pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning")  # CartPole's inf bounds
def test_gymnasium_check_env_and_registration():
    register_env()
    register_env()  # idempotent
    env = gymnasium.make(ENV_ID, phase_episodes=2)
    assert isinstance(env.unwrapped, ContinualCartPoleEnv)
    assert env.unwrapped.config.phase_episodes == 2
    assert env.spec.reward_threshold == SCORE_THRESHOLD
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and "phase" in info


def test_truncation_after_max_episode_steps_and_seeding():
    env = ContinualCartPoleEnv(max_episode_steps=5)
    env.reset(seed=0)
    for t in range(5):
        _, _, terminated, truncated, _ = env.step(t % 2)
    assert truncated and not terminated
    assert ContinualCartPoleEnv().config.max_episode_steps == 500
    a, b = ContinualCartPoleEnv(), ContinualCartPoleEnv()
    np.testing.assert_array_equal(a.reset(seed=5)[0], b.reset(seed=5)[0])


def test_state_dict_round_trip_resumes_identically():
    env = ContinualCartPoleEnv(phase_episodes=2)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        run_episode(env, rng)
    env.reset()  # episode 4 -> phase 2
    env.step(0)
    buf = io.BytesIO()
    torch.save(env.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    clone = ContinualCartPoleEnv(phase_episodes=2)
    clone.load_state_dict(state)
    assert clone.phase == env.phase == 2 and clone.episode == 4
    actions = np.random.default_rng(1).integers(2, size=400)
    for a in actions:
        o1, r1, te1, tr1, i1 = env.step(int(a))
        o2, r2, te2, tr2, i2 = clone.step(int(a))
        np.testing.assert_array_equal(o1, o2)
        assert (r1, te1, tr1, i1) == (r2, te2, tr2, i2)
        if te1 or tr1:
            np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(phase_episodes=0), "phase_episodes must be a positive integer"),
    (dict(phase_episodes=2.5), "phase_episodes must be a positive integer"),
    (dict(max_episode_steps=-1), "max_episode_steps"),
    (dict(phases=[]), "non-empty sequence"),
    (dict(phases=[{"name": "x", "gravity": -9.8}]), "gravity must be a positive"),
    (dict(phases=[{"name": "x", "gravty": 9.8}]), "valid: name, gravity"),
    (dict(phases=[{"gravity": 9.8}]), "needs a 'name'"),
    (dict(score_threshold=0), "score_threshold"),
])
def test_bad_config_raises_value_error_naming_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContinualCartPoleEnv(**kwargs)


def test_custom_phases_from_dicts_and_config_helpers():
    cfg = ContinualCartPoleConfig(phase_episodes=10, phases=[
        {"name": "a"}, CartPolePhase("b", gravity=12.0)], cycle=False)
    assert cfg.num_phases == 2
    assert [cfg.phase_of_episode(e) for e in (0, 9, 10, 19, 20, 1000)] == [0, 0, 1, 1, 1, 1]
    env = gymnasium.make(ENV_ID, phases=[{"name": "a"}, {"name": "b", "gravity": 12.0}],
                         phase_episodes=1)
    env.reset(seed=0)
    env.reset()
    assert env.unwrapped.gravity == 12.0
    assert env.unwrapped.current_phase.name == "b"
