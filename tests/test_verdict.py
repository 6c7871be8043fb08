"""The verdict statistics (palr.experiments.verdict) on synthetic runs with planted effects."""
import numpy as np
import pytest

from palr.experiments.summary import format_summary, merge_runs
from palr.experiments.verdict import (classify, compute_verdict, format_verdict, late_count,
                                      mean_ci,
                                      probability_of_improvement, reference_comparison,
                                      run_verdict_values, segments)

EPISODES = 10          # per phase
STEPS = 100            # per episode
PHASES = 12


def make_run(agent, idx, seed, returns, probe_ratio=None, q=None, erank=None, gamma=0.99):
    """A palr.run/1 run whose phase k has return ``returns[k]`` in every episode, and whose value
    network logs erank, mean |Q| and the probe (trained = ratio x fresh) at every phase end."""
    n = len(returns)
    scores = [float(r) for r in returns for _ in range(EPISODES)]
    ends = [STEPS * EPISODES * (k + 1) for k in range(n)]
    probe_ratio = probe_ratio or [1.0] * n
    q = q or [10.0] * n
    erank = erank or [8.0] * n
    return {
        "schema": "palr.run/1", "domain": "permuted_cartpole", "agent": agent, "agent_idx": idx,
        "seed": seed, "score_name": "return", "score_threshold": 195.0,
        "config": {"dqn": {"gamma": gamma}, "max_reward": 1.0},
        "tasks": [{"index": k, "name": f"p{k}", "start_step": k * 1000, "end_step": ends[k],
                   "start_episode": k * EPISODES, "end_episode": (k + 1) * EPISODES}
                  for k in range(n)],
        "episodes": {"return": scores, "score": scores,
                     "task": [k for k in range(n) for _ in range(EPISODES)],
                     "env_step": [STEPS * (i + 1) for i in range(len(scores))],
                     "length": [STEPS] * len(scores)},
        "plasticity": {"update": ends, "env_step": ends, "layers": {
            "q.0": {"erank": list(erank)}, "q.2": {"erank": list(erank)},
            "q.output": {"output_abs": list(q), "probe_residual_fresh": [0.2] * n,
                         "probe_residual": [0.2 * r for r in probe_ratio]}}},
        "status": "finished", "wall_time_s": 1.0,
    }


def noisy(base, seed, scale=3.0):
    return list(np.asarray(base, dtype=float) + np.random.default_rng(seed).normal(0, scale, len(base)))


def sweep_of(runs):
    return merge_runs(runs)


def planted_loss_runs(q_late=50.0):
    fixed_returns = np.linspace(100, 20, PHASES)
    runs = []
    for seed in range(5):
        runs.append(make_run("DQN-FixedLR", 0, seed, noisy(fixed_returns, seed),
                             probe_ratio=list(np.linspace(1.0, 2.0, PHASES)),
                             q=list(np.linspace(10.0, q_late, PHASES)),
                             erank=list(np.linspace(9.0, 3.0, PHASES))))
        runs.append(make_run("PALR-DQN", 4, seed, noisy([100.0] * PHASES, seed + 50),
                             probe_ratio=[1.0] * PHASES, erank=[9.0] * PHASES))
    return runs


def test_per_run_values_are_the_defined_means():
    returns = list(range(PHASES))                      # phase k returns k
    values = run_verdict_values(make_run("A", 0, 0, returns, probe_ratio=[1.0] * 8 + [3.0] * 4,
                                         q=[float(k) for k in range(PHASES)]))
    assert values["segments"] == PHASES and values["late_segments"] == 4
    assert values["early"] == pytest.approx(0.5)                    # phases 0 and 1
    assert values["late"] == pytest.approx((8 + 9 + 10 + 11) / 4)   # the last third
    assert values["change"] == pytest.approx(9.5 - 0.5)
    assert values["probe_ratio_late"] == pytest.approx(3.0)
    assert values["output_abs_early"] == pytest.approx(0.5)
    assert values["output_abs_late"] == pytest.approx(9.5)
    assert values["reward_bound"] == pytest.approx(100.0) and not values["diverged"]


def test_planted_loss_and_a_planted_improvement_are_found():
    sweep = sweep_of(planted_loss_runs())
    verdict = sweep["verdict"]
    fixed, palr = verdict["agents"]["DQN-FixedLR"], verdict["agents"]["PALR-DQN"]
    assert verdict["baseline"] == "DQN-FixedLR"
    assert fixed["change"]["ci_high"] < 0
    assert fixed["probe_ratio_late"]["ci_low"] > 1.5
    assert classify(fixed) == "loss of plasticity"
    assert classify(palr) == "no loss"
    late = palr["paired"]["late"]
    assert late["n"] == 5 and late["ci_low"] > 0
    assert late["p_improvement"] == pytest.approx(1.0)
    text = "\n".join(verdict["text"])
    assert "DQN-FixedLR LOSES PLASTICITY here" in text
    assert "PALR-DQN IMPROVES on DQN-FixedLR" in text
    summary = format_summary(sweep)
    assert "VERDICT" in summary and "LOSES PLASTICITY" in summary


def test_no_loss_and_no_difference_are_said_as_such():
    runs = []
    for seed in range(5):
        runs.append(make_run("DQN-FixedLR", 0, seed, noisy([80.0] * PHASES, seed, 10.0)))
        runs.append(make_run("PALR-DQN", 4, seed, noisy([80.0] * PHASES, seed + 9, 10.0)))
    verdict = compute_verdict(sweep_of(runs))
    assert classify(verdict["agents"]["DQN-FixedLR"]) == "no loss"
    late = verdict["agents"]["PALR-DQN"]["paired"]["late"]
    assert late["ci_low"] < 0 < late["ci_high"]
    text = "\n".join(verdict["text"])
    assert "DQN-FixedLR shows NO DETECTABLE loss of plasticity here" in text
    assert "PALR-DQN does not detectably change DQN-FixedLR" in text


def test_a_collapse_with_q_above_the_reward_bound_is_value_divergence():
    verdict = compute_verdict(sweep_of(planted_loss_runs(q_late=5e5)))
    fixed = verdict["agents"]["DQN-FixedLR"]
    assert fixed["diverged"] == 5 and fixed["reward_bound"] == pytest.approx(100.0)
    assert classify(fixed) == "value divergence"
    assert "COLLAPSES WITH VALUE DIVERGENCE" in verdict["text"][0]
    assert "5/5 seeds" in verdict["text"][0]


def test_one_seed_makes_no_claim():
    runs = [make_run("DQN-FixedLR", 0, 0, list(np.linspace(100, 20, PHASES)),
                     probe_ratio=[3.0] * PHASES)]
    assert classify(compute_verdict(sweep_of(runs))["agents"]["DQN-FixedLR"]) == "no loss"


def test_a_run_without_switches_is_cut_into_six_env_step_blocks():
    run = make_run("A", 0, 0, [50.0])
    run["episodes"]["score"] = [float(i) for i in range(EPISODES)]
    assert segments(run) == [(0, 1), (1, 3), (3, 5), (5, 6), (6, 8), (8, 10)]
    assert late_count(6) == 2 and late_count(12) == 4 and late_count(4) == 1 and late_count(2) == 1


def test_reference_comparison_pairs_seeds_against_the_reference_baseline():
    primed = [make_run("DQN-FixedLR", 0, s, [20.0 + s] * 3) for s in range(4)]
    unprimed = [make_run("DQN-FixedLR", 0, s, [60.0 + s] * 3) for s in range(4)]
    lines = reference_comparison(sweep_of(primed), sweep_of(unprimed), "unprimed")
    assert "DQN-FixedLR ends below DQN-FixedLR unprimed" in lines[1]
    assert "late return difference -40.0 [-40.0, -40.0]" in lines[1]


def test_statistics_use_scipy_bootstrap_and_the_mann_whitney_probability():
    ci = mean_ci([1.0, 2.0, 3.0, 4.0, 10.0])
    assert ci["mean"] == pytest.approx(4.0) and ci["n"] == 5
    assert 1.0 <= ci["ci_low"] < 4.0 < ci["ci_high"] <= 10.0
    assert mean_ci([2.0])["ci_low"] == mean_ci([2.0])["ci_high"] == 2.0
    assert mean_ci([float("nan")])["n"] == 0
    # pairs (x > y): 3>1, 3>2, 4>*, 5>*, ties 3=3 count half -> (2 + 3 + 3 + 0.5) / 9
    assert probability_of_improvement([3, 4, 5], [1, 2, 3]) == pytest.approx(8.5 / 9)
    assert probability_of_improvement([1], [2]) == 0.0


def test_a_baseline_that_learns_nothing_gets_no_claim_and_the_score_is_named():
    """Success rates near zero from the start (a Continual World budget far below the paper's):
    no "no detectable loss" claim, the score named as the runs name it, the probe that was
    never run said as such."""
    runs = []
    for seed in range(3):
        for agent, idx in (("SAC-FixedLR", 0), ("PALR-SAC", 4)):
            run = make_run(agent, idx, seed, list(np.clip(noisy([0.02] * PHASES, seed + idx, 0.01),
                                                          0, 1)))
            run.update(score_name="success", score_threshold=0.9)
            del run["plasticity"]["layers"]["q.output"]["probe_residual"]
            runs.append(run)
    verdict = compute_verdict(sweep_of(runs))
    text = "\n".join(verdict["text"])
    assert "SAC-FixedLR learns too little here for a loss of plasticity to show" in text
    assert "NO DETECTABLE" not in text and "late-phase success difference" in text
    table = format_verdict(verdict)
    assert "early success" in table and "early return" not in table
    assert "n/a [n/a, n/a]" not in table and "not measured" in table


def test_an_unknown_reward_bound_is_not_counted_as_kept():
    runs = [make_run("DQN-FixedLR", 0, seed, noisy([80.0] * PHASES, seed)) for seed in range(2)]
    for run in runs:
        del run["config"]["max_reward"]
    table = format_verdict(compute_verdict(sweep_of(runs)))
    rows = " ".join(line for line in table.splitlines() if line.startswith("DQN-FixedLR"))
    assert "0/2" not in rows and "n/a" in rows.split("->")[-1]


def test_bullets_wrap_long_sentences_to_the_table_width():
    from palr.experiments.verdict import bullets
    sentence = "PALR-DQN ends below DQN-FixedLR unprimed: late return difference " * 4
    lines = bullets([sentence, "short"])
    assert max(len(line) for line in lines) <= 120 and lines[0].startswith("- PALR-DQN")
    assert all(line.startswith("  ") for line in lines[1:-1]) and lines[-1] == "- short"
    assert " ".join(" ".join(lines[:-1])[2:].split()) == " ".join(sentence.split())


def test_segments_weigh_equally_whatever_their_episode_count():
    """Phases counted in env steps: phase 0 spent in 100 short episodes (return 10), phase 1 in 10
    long ones (return 200). Early = (10 + 200) / 2 = 105, not the episode-pooled 27.3."""
    run = make_run("DQN-FixedLR", 0, 0, [0.0] * PHASES)
    scores = [10.0] * 100 + [200.0] * 10 + [50.0] * (EPISODES * (PHASES - 2))
    bounds = [0, 100, 110] + [110 + EPISODES * k for k in range(1, PHASES - 1)]
    run["episodes"] = {"return": scores, "score": scores, "length": [STEPS] * len(scores),
                       "env_step": [STEPS * (i + 1) for i in range(len(scores))],
                       "task": [k for k in range(PHASES) for _ in range(bounds[k + 1] - bounds[k])]}
    for k, task in enumerate(run["tasks"]):
        task["start_episode"], task["end_episode"] = bounds[k], bounds[k + 1]
    values = run_verdict_values(run)
    assert values["early"] == pytest.approx(105.0)
    assert values["late"] == pytest.approx(50.0) and values["change"] == pytest.approx(-55.0)


def test_segment_ends_show_a_loss_that_segment_means_dilute():
    """Phase 0 climbs from 20 to 200 by its end (30 episodes), phase 1 averages 40 and the later
    phases 60: the segment means do not fall (change > 0), the ends do (200 -> 60): a loss."""
    runs = []
    for seed in range(4):
        run = make_run("DQN-FixedLR", 0, seed, [0.0] * PHASES, probe_ratio=[1.8] * PHASES)
        scores = [20.0] * 20 + [200.0 + seed] * 10 + [40.0] * EPISODES \
            + [60.0 + seed] * (EPISODES * (PHASES - 2))
        bounds = [0, 30] + [30 + EPISODES * k for k in range(1, PHASES)]
        run["episodes"] = {"return": scores, "score": scores, "length": [STEPS] * len(scores),
                           "env_step": [STEPS * (i + 1) for i in range(len(scores))],
                           "task": [k for k in range(PHASES)
                                    for _ in range(bounds[k + 1] - bounds[k])]}
        for k, task in enumerate(run["tasks"]):
            task["start_episode"], task["end_episode"] = bounds[k], bounds[k + 1]
        runs.append(run)
    verdict = compute_verdict(sweep_of(runs))
    fixed = verdict["agents"]["DQN-FixedLR"]
    assert fixed["first_end"]["mean"] == pytest.approx(201.5)
    assert fixed["late_end"]["mean"] == pytest.approx(61.5)
    assert fixed["end_change"]["ci_high"] < 0 and fixed["change"]["ci_low"] > 0
    assert classify(fixed) == "loss of plasticity"
    assert "LOSES PLASTICITY" in verdict["text"][0]
