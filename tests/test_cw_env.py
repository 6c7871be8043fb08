"""Continual World env (palr.envs.continual_world): sequences, silent switches, seeding, success,
time limit, checkpointing. Tests that build Meta-World envs are marked ``metaworld``."""
from __future__ import annotations

import importlib.util
import warnings
from collections import Counter

import numpy as np
import pytest

from palr.envs.continual_world import (CW10_SEQUENCE, ENV_ID, MT10_SEQUENCE, ContinualWorldEnv,
                                       MetaWorldTask, describe_sequence, make_task_env,
                                       parse_sequence_label, sequence_label, task_seed,
                                       task_sequence, task_windows)

_HAS_MW = importlib.util.find_spec("metaworld") is not None


def metaworld(fn):
    """Mark a test that builds Meta-World envs (skipped without the cw extra)."""
    fn = pytest.mark.skipif(not _HAS_MW, reason="needs metaworld (pip install -e '.[cw]')")(fn)
    return pytest.mark.metaworld(fn)


def test_sequences_are_the_documented_ones():
    assert MT10_SEQUENCE == tuple(f"{n}-v3" for n in (
        "reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close",
        "button-press-topdown", "peg-insert-side", "window-open", "window-close"))
    assert CW10_SEQUENCE == tuple(f"{n}-v3" for n in (
        "hammer", "push-wall", "faucet-close", "push-back", "stick-pull", "handle-press-side",
        "push", "shelf-place", "window-close", "peg-unplug-side"))
    assert task_sequence("mt10", 10, seed=5) == list(MT10_SEQUENCE)
    assert task_sequence("cw10", 10, seed=5) == list(CW10_SEQUENCE)
    assert task_sequence("cw10", 3) == list(CW10_SEQUENCE[:3])


def test_cw20_orders():
    canonical = task_sequence("cw10", 20, seed=3)
    assert canonical == list(CW10_SEQUENCE) * 2
    assert task_sequence("cw10", 20, seed=4) == canonical  # canonical order ignores the seed
    seeded = task_sequence("mt10", 20, seed=0)
    assert Counter(seeded) == Counter(list(MT10_SEQUENCE) * 2)  # every task exactly twice
    assert seeded == task_sequence("mt10", 20, seed=0)  # deterministic under the seed
    assert seeded != task_sequence("mt10", 20, seed=1)  # and shuffled by it
    assert seeded != list(MT10_SEQUENCE) * 2


def test_named_sequences_cw20_is_cw10_twice_and_mt10x2_is_the_original_shuffle():
    assert task_sequence("cw20") == list(CW10_SEQUENCE) * 2 == task_sequence("cw10", 20)
    assert task_sequence("cw10") == list(CW10_SEQUENCE)
    assert task_sequence("mt10") == list(MT10_SEQUENCE)
    for seed in (0, 7):  # the original launcher's "cw20": MT10 doubled, shuffled by the seed
        assert task_sequence("mt10x2", seed=seed) == task_sequence("mt10", 20, seed=seed)
    assert task_sequence("mt10x2", 5, seed=3) == task_sequence("mt10x2", seed=3)[:5]
    assert task_sequence("mt10x2", 5, seed=3) != list(MT10_SEQUENCE[:5])


@pytest.mark.parametrize("sequence, num_tasks, label", [
    ("cw10", None, "cw10"), ("cw20", None, "cw20"), ("cw10", 20, "cw20"), ("mt10", None, "mt10"),
    ("mt10", 20, "mt10x2"), ("mt10x2", None, "mt10x2"), ("cw10", 3, "cw10first3"),
    ("cw10", 15, "cw20first15"), ("cw20", 5, "cw20first5"), ("mt10x2", 4, "mt10x2first4"),
    ("mt10", 1, "mt10first1"),
])
def test_sequence_labels_name_what_runs(sequence, num_tasks, label):
    assert sequence_label(sequence, num_tasks) == label
    name, n = parse_sequence_label(label)
    assert task_sequence(name, n, seed=2) == task_sequence(sequence, num_tasks, seed=2)


def test_only_whole_or_first_n_labels_parse_and_descriptions_say_what_runs():
    for text in ("cw30", "cw10first0", "cw10first10", "cw10first11", "mt10x2first20", "first3",
                 "cw20_seed0", "CW20", ""):
        assert parse_sequence_label(text) is None, text
    assert "CW10 twice in the same order" in describe_sequence("cw20")
    assert "shuffled with the run's seed" in describe_sequence("mt10x2")
    assert describe_sequence("cw10first3").startswith("the first 3 tasks of cw10")


def test_bad_sequence_arguments():
    with pytest.raises(ValueError, match="mt10"):
        task_sequence("cw30", 10)
    with pytest.raises(ValueError, match="num_tasks"):
        task_sequence("cw10", 21)
    with pytest.raises(ValueError, match="num_tasks"):
        task_sequence("cw10", 0)
    with pytest.raises(ValueError, match="episodes_per_task"):
        ContinualWorldEnv("cw10", 2, episodes_per_task=0)


@metaworld
def test_explicit_task_lists():
    assert task_sequence(["reach", "push-v3"], 3) == ["reach-v3", "push-v3", "reach-v3"]
    with pytest.raises(ValueError, match="valid tasks"):
        task_sequence(["reach", "not-a-task"])


def test_task_windows_and_seeds():
    assert task_windows(3, 5) == [(0, 5), (5, 10), (10, 15)]
    assert task_seed(0, "reach-v3", "train") != task_seed(0, "reach-v3", "eval")
    assert task_seed(0, "reach-v3") != task_seed(1, "reach-v3")
    assert task_seed(0, "reach-v3") != task_seed(0, "push-v3")
    with pytest.raises(ValueError, match="train"):
        task_seed(0, "reach-v3", "test")


@metaworld
def test_silent_switch_after_n_episodes():
    env = ContinualWorldEnv("cw10", num_tasks=2, episodes_per_task=2, max_episode_steps=3, seed=0)
    space = env.observation_space
    seen = []
    for episode in range(5):
        obs, info = env.reset()
        assert obs.shape == (39,) and obs.dtype == np.float32 and space.contains(obs)
        assert env.observation_space is space and env.action_space.shape == (4,)
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert obs.shape == (39,)
        seen.append((info["task_index"], info["task_name"]))
    # task 0 for episodes 0-1, task 1 for 2-3, then it stays on the last task
    assert seen == [(0, "hammer-v3")] * 2 + [(1, "push-wall-v3")] * 3
    assert env.finished and env.windows == [(0, 2), (2, 4)]
    env.close()


@metaworld
def test_time_limit_truncates_at_200_and_never_terminates():
    env = make_task_env("reach", seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    for t in range(1, 201):
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        assert not terminated
        assert truncated == (t == 200)
        assert ("episode_success" in info) == (t == 200)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="4-d"):
        env.reset()
        env.step(np.zeros(3, np.float32))


def _first_obs(env: ContinualWorldEnv, episodes: int) -> np.ndarray:
    out = []
    for _ in range(episodes):
        obs, _ = env.reset()
        out.append(obs)
        env.step(np.zeros(4, np.float32))
    return np.stack(out)


@metaworld
def test_deterministic_under_the_seed():
    kwargs = dict(sequence="mt10", num_tasks=2, episodes_per_task=2, max_episode_steps=5)
    a = _first_obs(ContinualWorldEnv(seed=7, **kwargs), 4)
    b = _first_obs(ContinualWorldEnv(seed=7, **kwargs), 4)
    c = _first_obs(ContinualWorldEnv(seed=8, **kwargs), 4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # positions are re-drawn at every reset (reach: goal and hand/object start differ)
    assert not np.allclose(a[0], a[1])
    # reset(seed=) re-seeds the position streams as the constructor would
    reseeded = ContinualWorldEnv(seed=8, **kwargs)
    np.testing.assert_array_equal(reseeded.reset(seed=7)[0], a[0])


@metaworld
def test_eval_env_does_not_shift_training_stream_and_state_resumes():
    kwargs = dict(sequence="cw10", num_tasks=2, episodes_per_task=2, max_episode_steps=5, seed=1)
    plain = _first_obs(ContinualWorldEnv(**kwargs), 4)

    env = ContinualWorldEnv(**kwargs)
    first = _first_obs(env, 2)
    ev = env.eval_env(0)
    ev.reset()
    ev.step(np.zeros(4, np.float32))
    state = env.state_dict()
    rest = _first_obs(env, 2)
    np.testing.assert_array_equal(np.concatenate([first, rest]), plain)

    resumed = ContinualWorldEnv(**kwargs)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(_first_obs(resumed, 2), rest)
    np.testing.assert_array_equal(resumed.eval_env(0).reset()[0], env.eval_env(0).reset()[0])
    with pytest.raises(ValueError, match="sequence"):
        ContinualWorldEnv("mt10", 2, 2, 5, seed=1).load_state_dict(state)


@metaworld
def test_success_at_any_step_is_reported():
    from metaworld.policies import SawyerReachV3Policy

    env = ContinualWorldEnv(["reach"], num_tasks=1, episodes_per_task=5, seed=0)
    policy = SawyerReachV3Policy()
    obs, _ = env.reset()
    first_success = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(200):
            # the scripted policy reaches the goal, then the arm is driven away from it
            action = policy.get_action(obs) if first_success is None else np.array([0, -1, 1, 0])
            obs, _, _, truncated, info = env.step(action)
            if info["success"] and first_success is None:
                first_success = t
    assert truncated and first_success is not None and first_success < 150
    assert info["success"] == 0.0  # not successful at the last step ...
    assert info["episode_success"] == 1.0  # ... but at some step: the episode counts

    env.reset()
    for _ in range(200):  # doing nothing never reaches the goal
        _, _, _, truncated, info = env.step(np.zeros(4, np.float32))
    assert info["episode_success"] == 0.0


@metaworld
def test_registered_with_gymnasium():
    import gymnasium as gym

    env = gym.make(ENV_ID, sequence="cw10", num_tasks=2, episodes_per_task=1, seed=0)
    obs, info = env.reset()
    assert obs.shape == (39,) and info["task_name"] == "hammer-v3"
    env.close()


@metaworld
def test_task_id_appends_the_positions_one_hot_to_training_and_evaluation_observations():
    kwargs = dict(sequence="cw10", num_tasks=2, episodes_per_task=1, max_episode_steps=3, seed=0)
    plain, tagged = ContinualWorldEnv(**kwargs), ContinualWorldEnv(task_id=True, **kwargs)
    assert tagged.observation_space.shape == (41,) and plain.observation_space.shape == (39,)
    for task in (0, 1):
        obs, info = tagged.reset()
        reference, _ = plain.reset()
        assert info["task_index"] == task and obs.dtype == np.float32
        assert np.array_equal(obs[:39], reference)                  # the env itself is unchanged
        assert obs[39:].tolist() == [float(task == 0), float(task == 1)]
        step_obs = tagged.step(np.zeros(4, np.float32))[0]
        assert step_obs[39:].tolist() == obs[39:].tolist()
    evaluation = make_task_env(CW10_SEQUENCE[1], seed=0, task_id=(1, 2))
    assert evaluation.observation_space.shape == (41,)
    obs, _ = evaluation.reset()
    assert obs[39:].tolist() == [0.0, 1.0]
    assert evaluation.step(np.zeros(4, np.float32))[0][39:].tolist() == [0.0, 1.0]


@metaworld
def test_reward_versions_change_the_reward_only():
    """Meta-World v3's reward_function_version: v1 (the original release's reward functions) and
    v2 (its default) give other rewards for the same trajectory, the same observations and the
    same success flags."""
    from metaworld.policies import SawyerReachV3Policy

    runs = {}
    for version in ("v1", "v2"):
        env = MetaWorldTask("reach", seed=3, reward_version=version)
        assert env.mw.reward_function_version == version
        obs, _ = env.reset()
        observations, rewards, successes = [obs], [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(120):
                obs, reward, _, _, info = env.step(SawyerReachV3Policy().get_action(obs))
                observations.append(obs)
                rewards.append(reward)
                successes.append(info["success"])
        runs[version] = (np.array(observations), np.array(rewards), successes)
    assert np.array_equal(runs["v1"][0], runs["v2"][0])
    assert runs["v1"][2] == runs["v2"][2] and any(runs["v1"][2])
    assert not np.allclose(runs["v1"][1], runs["v2"][1])
    assert runs["v2"][1].max() <= 10.0 < runs["v1"][1].max()   # v2 rewards live in [0, 10]
    with pytest.raises(ValueError, match="reward version"):
        MetaWorldTask("reach", reward_version="v3")
    assert ContinualWorldEnv("cw10", 1, 1, reward_version="v1")._train_env("hammer-v3") \
        .mw.reward_function_version == "v1"
