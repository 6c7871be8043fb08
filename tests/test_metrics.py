"""Known-answer tests of palr.experiments.metrics (docs/design.md#evaluation; Continual World metrics)."""
import math
import random

import numpy as np
import pytest

from palr.experiments.metrics import (bootstrap_ci, cw_average_performance, cw_final_scores,
                                      cw_forgetting, cw_forward_transfer, cw_task_auc,
                                      cw_window_evaluations, final_performance, iqm,
                                      moving_average, recovery_episodes, reward_rate)


def windows(*lengths):
    out, start = [], 0
    for i, n in enumerate(lengths):
        out.append({"index": i, "name": f"t{i}", "start_episode": start, "end_episode": start + n})
        start += n
    return out


# ----------------------------------------------------------------------------- moving average


def test_moving_average_partial_and_full_windows():
    np.testing.assert_allclose(moving_average([1, 2, 3, 4], window=2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(moving_average([1, 2, 3, 4], window=3, min_periods=3),
                               [np.nan, np.nan, 2, 3])
    # None/NaN are skipped inside a window
    np.testing.assert_allclose(moving_average([2, None, 4, 6], window=2), [2, 2, 4, 5])
    with pytest.raises(ValueError):
        moving_average([1, 2], window=0)


# ----------------------------------------------------------------------------- recovery


def test_recovery_planted_curve_with_censoring():
    # task 0: 30 solved episodes; task 1: 5 failures then solved; task 2: never solved
    scores = [1.0] * 30 + [0.0] * 5 + [1.0] * 25 + [0.0] * 15
    tasks = windows(30, 30, 15)
    rec = recovery_episodes(scores, tasks, threshold=0.95, window=10)
    assert [(r.task, r.switch_episode, r.episodes, r.censored, r.window_length) for r in rec] == [
        (1, 30, 15, False, 30),   # first full window of ten 1s ends at the 15th episode
        (2, 60, 15, True, 15),    # censored at the window length
    ]
    # a lower threshold is reached earlier: 5 ones in the first full window of 10 -> 0.5
    assert recovery_episodes(scores, tasks, threshold=0.5)[0].episodes == 10
    assert recovery_episodes(scores, tasks, threshold=0.55)[0].episodes == 11


def test_recovery_uses_only_the_new_tasks_episodes():
    # the old task's good episodes must not lift the new task's moving average
    scores = [1.0] * 20 + [1.0] * 3 + [0.0] * 17
    rec = recovery_episodes(scores, windows(20, 20), threshold=0.9)
    assert rec[0].censored and rec[0].episodes == 20


def test_recovery_short_window_and_running_run():
    # a window shorter than 10 uses its whole length as the averaging window
    rec = recovery_episodes([0.0] * 10 + [1.0] * 6, windows(10, 6), threshold=1.0)
    assert (rec[0].episodes, rec[0].censored) == (6, False)
    # a run still going: windows clipped to the recorded episodes; unstarted ones skipped
    tasks = windows(10, 50, 50)
    rec = recovery_episodes([1.0] * 10 + [0.0] * 12, tasks, threshold=1.0)
    assert len(rec) == 1 and rec[0].censored and rec[0].window_length == 12
    assert recovery_episodes([1.0] * 40, windows(40), threshold=1.0) == []
    with pytest.raises(ValueError, match="end_episode"):
        recovery_episodes([1.0], [{"start_episode": 5, "end_episode": 2}] * 2, threshold=1.0)


# ----------------------------------------------------------------------------- final performance


def test_final_performance_last_ten_percent_at_least_ten_episodes():
    long_task = [0.0] * 180 + [2.0] * 20            # 200 episodes -> last 20
    mid_task = [0.0] * 40 + [1.0] * 8 + [3.0] * 2   # 50 episodes -> last 10 (10% = 5 < 10)
    short_task = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]     # 6 episodes -> whole window
    scores = long_task + mid_task + short_task
    fp = final_performance(scores, windows(200, 50, 6))
    assert fp == pytest.approx([2.0, (8 * 1.0 + 2 * 3.0) / 10, 3.5])
    # 15% of a 200-episode window
    fp15 = final_performance(long_task, windows(200), fraction=0.15)
    assert fp15 == pytest.approx([20 * 2.0 / 30])
    assert math.isnan(final_performance([1.0] * 5, windows(5, 5))[1])


# ----------------------------------------------------------------------------- bootstrap / IQM


def test_bootstrap_ci_contains_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(5, 2, 10), rng.normal(5, 2, 1000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < 0.2 * (hi_s - lo_s)   # sqrt(1000/10) = 10x narrower in theory
    # width close to the normal-theory interval 2 * 1.96 * sd / sqrt(n)
    x = rng.normal(0, 1, 200)
    lo, hi = bootstrap_ci(x, n_resamples=8000)
    assert (hi - lo) == pytest.approx(2 * 1.96 * x.std() / math.sqrt(200), rel=0.1)
    # a 50% interval is narrower than a 95% one; same seed -> same answer
    lo50, hi50 = bootstrap_ci(x, confidence=0.5)
    assert lo < lo50 < hi50 < hi
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)


def test_bootstrap_ci_degenerate_inputs():
    assert bootstrap_ci([4.0]) == (4.0, 4.0)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([1.0, None, float("nan"), 3.0]) == bootstrap_ci([1.0, 3.0])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)


def test_iqm_known_arrays():
    assert iqm(range(1, 9)) == pytest.approx(4.5)          # drop 1,2 and 7,8
    assert iqm([0, 0, 0, 100]) == pytest.approx(0.0)        # drop one at each end
    assert iqm([1, 2, 30]) == pytest.approx(11.0)           # n < 4: nothing dropped (rliable)
    assert iqm([7, 1, 5, 3, 100, -50, 2, 4]) == pytest.approx(np.mean([2, 3, 4, 5]))
    # exact interquartile mean with fractional boundary weights
    assert iqm([1, 2, 30], fractional=True) == pytest.approx((1 + 4 * 2 + 30) / 6)
    assert iqm([1, 2, 3, 4], fractional=True) == pytest.approx(2.5)
    # n=5: masses 0.2 each; [0.25, 0.75] holds 0.15 of x2, all of x3, 0.15 of x4
    assert iqm([50, 1, 10, 3, 2], fractional=True) == pytest.approx(
        (0.15 * 2 + 0.2 * 3 + 0.15 * 10) / 0.5)
    assert math.isnan(iqm([]))


def test_iqm_matches_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in range(1, 23):
        x = rng.standard_cauchy(n)
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))


# ----------------------------------------------------------------------------- Continual World

# Three tasks; evaluations (shuffled on purpose) of every task's success rate.
EVALS = [
    {"env_step": 1, "during_task": 0, "task_scores": [0.2, 0.0, 0.0]},
    {"env_step": 2, "during_task": 0, "task_scores": [0.6, 0.0, 0.0]},
    {"env_step": 3, "after_task": 0, "task_scores": [0.8, 0.1, 0.0]},
    {"env_step": 4, "during_task": 1, "task_scores": [0.7, 0.5, 0.1]},
    {"env_step": 5, "after_task": 1, "task_scores": [0.6, 0.9, 0.2]},
    {"env_step": 6, "after_task": 2, "task_scores": [0.4, 0.7, 1.0]},
]


def shuffled(evals, seed=0):
    out = list(evals)
    random.Random(seed).shuffle(out)
    return out


def test_cw_performance_and_forgetting_hand_computed():
    evals = shuffled(EVALS)
    assert cw_final_scores(evals) == pytest.approx([0.4, 0.7, 1.0])
    assert cw_average_performance(evals) == pytest.approx(0.7)
    # last evaluation of each own window minus the end: 0.8-0.4, 0.9-0.7, 1.0-1.0
    assert cw_forgetting(evals, last_k=1) == pytest.approx([0.4, 0.2, 0.0])
    # Continual World's last-5 averaging inside each own window
    assert cw_forgetting(evals, last_k=5) == pytest.approx([(0.2 + 0.6 + 0.8) / 3 - 0.4,
                                                             (0.5 + 0.9) / 2 - 0.7, 0.0])


def test_cw_average_performance_uses_last_five_evaluations_at_the_end():
    evals = [{"env_step": 10 + k, "during_task": 1, "task_scores": [0.1 * k, 1.0]} for k in range(7)]
    evals = [{"env_step": 0, "after_task": 0, "task_scores": [0.9, 0.0]}] + evals
    # last 5 of the final window: task 0 scores 0.2..0.6 -> 0.4; task 1: 1.0
    assert cw_final_scores(evals) == pytest.approx([0.4, 1.0])
    assert cw_average_performance(evals) == pytest.approx(0.7)
    assert cw_forgetting(evals)[0] == pytest.approx(0.9 - 0.4)


def test_cw_forward_transfer_hand_computed():
    auc = cw_task_auc(shuffled(EVALS, 1))
    assert auc == pytest.approx([(0.2 + 0.6 + 0.8) / 3, (0.5 + 0.9) / 2, 1.0])
    ft = cw_forward_transfer(auc, [0.5, 0.8, 1.0])
    assert ft[0] == pytest.approx(((1.6 / 3) - 0.5) / 0.5)
    assert ft[1] == pytest.approx((0.7 - 0.8) / 0.2)
    assert math.isnan(ft[2])            # reference always succeeds: undefined
    assert cw_forward_transfer(0.6, 0.2) == pytest.approx(0.5)
    assert cw_forward_transfer(0.2, 0.2) == 0.0


def paper_protocol_curve():
    """Continual World's protocol on two tasks: 10 evaluations per task window (every 20k of
    200k steps; the last one at the task end), each of both tasks' stochastic success (plus the
    deterministic policy's, which no metric reads). Piecewise constant, so every answer is known:

    task 0: 0.0 (evals 1-5), 0.8 (6-10) in its window; 0.6 (11-15), 0.2 (16-20) afterwards;
    task 1: 0.1 throughout window 0; 0.5 (11-15), 1.0 (16-20) in its own window.
    """
    evals = []
    for k in range(1, 21):
        task = 0 if k <= 10 else 1
        s0 = [0.0, 0.8, 0.6, 0.2][(k - 1) // 5]
        s1 = 0.1 if task == 0 else (0.5 if k <= 15 else 1.0)
        entry = {"env_step": 20_000 * k, "task_scores": [s0, s1],
                 "task_scores_deterministic": [1.0 - s0, 0.0]}
        if k % 10 == 0:
            entry["after_task"] = task
        else:
            entry.update(after_task=task, during_task=task)
        evals.append(entry)
    return evals


def test_cw_metrics_on_the_paper_protocol_curve_known_answers():
    evals = shuffled(paper_protocol_curve(), 3)
    # the end = the last 5 evaluations (evals 16-20): task 0 at 0.2, task 1 at 1.0
    assert cw_final_scores(evals) == pytest.approx([0.2, 1.0])
    assert cw_average_performance(evals) == pytest.approx(0.6)
    # Continual World's tail(5) of the whole log is the same here: the final window has 10
    rows = np.array([e["task_scores"] for e in sorted(evals, key=lambda e: e["env_step"])])
    assert cw_final_scores(evals) == pytest.approx(rows[-5:].mean(axis=0).tolist())
    # forgetting: last 5 inside each own window minus the end: 0.8 - 0.2, 1.0 - 1.0
    assert cw_forgetting(evals) == pytest.approx([0.6, 0.0])
    # AUC: mean own success over the window's 10 evaluations: (5 x 0 + 5 x 0.8) / 10, (5 x 0.5 +
    # 5 x 1.0) / 10; forward transfer against references of AUC 0.2 and 0.5
    assert cw_task_auc(evals) == pytest.approx([0.4, 0.75])
    assert cw_window_evaluations(evals) == [10, 10]
    ft = cw_forward_transfer(cw_task_auc(evals), [0.2, 0.5])
    assert ft.tolist() == pytest.approx([(0.4 - 0.2) / 0.8, (0.75 - 0.5) / 0.5])
    # the deterministic policy's scores are recorded, never a metric
    flipped = [dict(e, task_scores_deterministic=[0.5, 0.5]) for e in evals]
    assert cw_average_performance(flipped) == pytest.approx(0.6)


def test_cw_metrics_reject_bad_evaluations():
    with pytest.raises(ValueError, match="no evaluations"):
        cw_average_performance([])
    with pytest.raises(ValueError, match="every task"):
        cw_forgetting([{"env_step": 0, "after_task": 0, "task_scores": [1.0]},
                       {"env_step": 1, "after_task": 1, "task_scores": [1.0, 0.0]}])
    with pytest.raises(ValueError, match="after_task"):
        cw_task_auc([{"env_step": 0, "task_scores": [1.0]}])


# ----------------------------------------------------------------------------- reward rate


def test_reward_rate_is_reward_per_step_over_the_trailing_window():
    """Episodes of 100 steps, window 200 steps: the last two episodes' returns over 200, the
    divisor 200 from the first episode on (upstream JBW's moving sum over its period)."""
    returns = [2.0, 4.0, -1.0, 0.0, 6.0]
    steps = [100, 200, 300, 400, 500]
    np.testing.assert_allclose(reward_rate(returns, steps, 200),
                               [2 / 200, 6 / 200, 3 / 200, -1 / 200, 6 / 200])
    np.testing.assert_allclose(reward_rate(returns, steps, 100), np.array(returns) / 100)
    np.testing.assert_allclose(reward_rate(returns, steps, 10_000), np.cumsum(returns) / 10_000)


def test_reward_rate_leaves_out_an_episode_straddling_the_window_start():
    # window 250 at step 500 covers steps 251..500: episodes (300, 400] and (400, 500] only
    out = reward_rate([1.0, 1.0, 1.0, 1.0, 1.0], [100, 200, 300, 400, 500], 250)
    np.testing.assert_allclose(out, [1 / 250, 2 / 250, 2 / 250, 2 / 250, 2 / 250])
    assert reward_rate([], [], 5).size == 0


@pytest.mark.parametrize("returns, steps, window, match", [
    ([1.0], [100], 0, "positive integer"),
    ([1.0], [100], 2.5, "positive integer"),
    ([1.0, 2.0], [100], 100, "differ in length"),
    ([1.0, 2.0], [100, 100], 100, "increasing"),
])
def test_reward_rate_rejects_bad_input(returns, steps, window, match):
    with pytest.raises(ValueError, match=match):
        reward_rate(returns, steps, window)
