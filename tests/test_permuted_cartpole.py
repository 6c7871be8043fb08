"""The permuted-observation continual CartPole and step-counted phases of the original one."""
import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from palr.envs.continual_cartpole import ContinualCartPoleConfig, ContinualCartPoleEnv
from palr.envs.permuted_cartpole import (ENV_ID, ContinualPermutedCartPoleEnv, permutation_label,
                                         signed_permutations)


def play(env, steps, rng):
    """Random actions for ``steps`` env steps; (total steps before each reset, phase) per episode."""
    starts = []
    _, info = env.reset(seed=0)
    starts.append((0, info["phase"]))
    for t in range(1, steps + 1):
        _, _, terminated, truncated, step_info = env.step(int(rng.integers(2)))
        assert step_info["phase"] == starts[-1][1]       # no switch inside an episode
        if terminated or truncated:
            _, info = env.reset()
            starts.append((t, info["phase"]))
    return starts


def test_phases_switch_at_the_first_reset_after_each_multiple_of_phase_steps():
    env = ContinualPermutedCartPoleEnv(phase_steps=60, num_phases=4, permutation_seed=1)
    starts = play(env, 400, np.random.default_rng(0))
    assert [phase for _, phase in starts] == [min(before // 60, 3) for before, _ in starts]
    assert {phase for _, phase in starts} == {0, 1, 2, 3}
    assert env.total_steps == 400


def test_each_phase_shows_the_state_through_its_signed_permutation():
    env = ContinualPermutedCartPoleEnv(phase_steps=30, num_phases=5, permutation_seed=7)
    rng = np.random.default_rng(1)
    obs, info = env.reset(seed=3)
    seen = set()
    for _ in range(600):
        perm, signs = env.permutations[env.phase]
        np.testing.assert_array_equal(obs, (signs * env.state.astype(np.float32)[perm]))
        if env.phase == 0:
            np.testing.assert_array_equal(obs, env.state.astype(np.float32))   # identity
        seen.add(env.phase)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            obs, _ = env.reset()
    assert seen == set(range(5))


def test_permutations_come_from_the_seed_and_every_switch_changes_the_view():
    a = signed_permutations(12, seed=5)
    b = signed_permutations(12, seed=5)
    c = signed_permutations(12, seed=6)
    assert all(np.array_equal(p, q) and np.array_equal(s, t) for (p, s), (q, t) in zip(a, b))
    assert any(not (np.array_equal(p, q) and np.array_equal(s, t)) for (p, s), (q, t) in zip(a, c))
    assert permutation_label(*a[0]) == "+0+1+2+3"
    for (p0, s0), (p1, s1) in zip(a, a[1:]):
        assert sorted(p1) == [0, 1, 2, 3] and set(s1) <= {-1.0, 1.0}
        assert not (np.array_equal(p0, p1) and np.array_equal(s0, s1))
    names = [p.name for p in ContinualPermutedCartPoleEnv(num_phases=12, permutation_seed=5).phases]
    assert names[0] == "identity" and names[1:] == [permutation_label(*x) for x in a[1:]]


def test_two_envs_with_one_seed_give_identical_trajectories():
    runs = []
    for _ in range(2):
        env = ContinualPermutedCartPoleEnv(phase_steps=40, num_phases=3, permutation_seed=2)
        env.reset(seed=11)
        rng = np.random.default_rng(4)
        trace = []
        for _ in range(200):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(2)))
            trace.append((obs.tobytes(), reward, terminated, truncated, info["phase"]))
            if terminated or truncated:
                env.reset()
        runs.append(trace)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("swap", [False, True])
def test_actions_swap_on_odd_phases_only_when_asked(swap):
    env = ContinualPermutedCartPoleEnv(phase_steps=1, num_phases=3, swap_actions=swap)
    start = np.array([0.01, 0.2, 0.05, -0.1])
    pushed = {}
    for phase in range(3):
        env.reset(seed=0)
        assert env.phase == phase
        env.state = start.copy()
        env.step(1)
        pushed[phase] = env.state.copy()
        env.total_steps = phase + 1  # the next reset starts the next phase
    reference = ContinualPermutedCartPoleEnv(num_phases=1)
    for action in (0, 1):
        reference.reset(seed=0)
        reference.state = start.copy()
        reference.step(action)
        pushed[f"plain{action}"] = reference.state.copy()
    np.testing.assert_array_equal(pushed[0], pushed["plain1"])
    np.testing.assert_array_equal(pushed[2], pushed["plain1"])
    np.testing.assert_array_equal(pushed[1], pushed["plain0" if swap else "plain1"])


def test_registered_with_gymnasium_and_passes_the_env_checker():
    env = gymnasium.make(ENV_ID, permutation_seed=3, phase_steps=50, num_phases=2,
                         swap_actions=True)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_state_dict_resumes_mid_sequence_identically():
    rng = np.random.default_rng(0)
    env = ContinualPermutedCartPoleEnv(phase_steps=50, num_phases=4, permutation_seed=9)
    play(env, 120, rng)
    state = env.state_dict()
    clone = ContinualPermutedCartPoleEnv(phase_steps=50, num_phases=4, permutation_seed=9)
    clone.load_state_dict(state)
    assert (clone.phase, clone.total_steps, clone.episode) == (env.phase, env.total_steps, env.episode)
    for a, b in ((env, np.random.default_rng(5)), (clone, np.random.default_rng(5))):
        a.trace = []
        for _ in range(150):
            obs, _, terminated, truncated, info = a.step(int(b.integers(2)))
            a.trace.append((obs.tobytes(), info["phase"]))
            if terminated or truncated:
                a.reset()
    assert env.trace == clone.trace


# --- the original continual CartPole counted in env steps ------------------------------------


def test_original_cartpole_counts_phases_in_env_steps_when_asked():
    env = ContinualCartPoleEnv(phase_episodes=1, phase_steps=80)   # phase_episodes then ignored
    starts = play(env, 700, np.random.default_rng(2))
    assert [phase for _, phase in starts] == [(before // 80) % 4 for before, _ in starts]
    assert len({phase for _, phase in starts}) == 4
    gravity = {p.name: p.gravity for p in env.phases}
    assert env.gravity == gravity[env.current_phase.name]


def test_original_cartpole_still_counts_episodes_by_default():
    env = ContinualCartPoleEnv(phase_episodes=2)
    starts = play(env, 300, np.random.default_rng(3))
    assert [phase for _, phase in starts] == [(k // 2) % 4 for k in range(len(starts))]


@pytest.mark.parametrize("value", [0, -5, 2.5, True])
def test_bad_phase_steps_is_rejected(value):
    with pytest.raises(ValueError, match="phase_steps must be a positive integer"):
        ContinualCartPoleConfig(phase_steps=value)
