"""Sweep merging, RESULTS_SUMMARY text and plots on synthetic palr.run/1 results."""
import json
import math
import os

import numpy as np
import pytest

from palr.experiments.plots import (layer_labels, plot_all, plot_cw_matrix, plot_learning_curves,
                                    plot_plasticity, plot_recovery, switch_positions)
from palr.experiments.summary import (TABLE_WIDTH, format_summary, load_runs, merge_runs,
                                      summary_exports, write_summary)
from palr.experiments.files import atomic_write_json

PHASE = 40
THRESHOLD = 195.0


def make_run(agent, idx, seed, fails_per_task, phase=PHASE, domain="cartpole", dead_null=False,
             evaluations=None, task_names=None):
    """A run whose task k (k >= 1) starts with ``fails_per_task[k-1]`` score-0 episodes, then 200s.

    ``None`` in ``fails_per_task`` = the task is never solved. Task 0 is always solved.
    """
    n_tasks = len(fails_per_task) + 1
    names = task_names or [f"phase{k}" for k in range(n_tasks)]
    scores, task_of = [], []
    for k in range(n_tasks):
        fails = 0 if k == 0 else fails_per_task[k - 1]
        fails = phase if fails is None else fails
        scores += [0.0] * fails + [200.0] * (phase - fails)
        task_of += [k] * phase
    n_meas = 6
    steps = [int(s) for s in np.linspace(500, 100 * len(scores), n_meas)]
    layers = {
        "q.0": {"dead": [None if dead_null else 0.01 * m + 0.1 * (seed + 1) - 0.05 for m in range(n_meas)],
                "erank": [60.0 - m for m in range(n_meas - 1)] + [50.0 + seed]},
        "q.2": {"dead": [None if dead_null else 0.3] * n_meas, "erank": [40.0] * n_meas},
        "head.0": {"dead": [None] * n_meas, "erank": [10.0 + idx] * n_meas},
    }
    run = {
        "schema": "palr.run/1", "domain": domain, "agent": agent, "agent_idx": idx, "seed": seed,
        "config": {"phase_episodes": phase, "lr": 1e-3},
        "score_name": "return", "score_threshold": THRESHOLD,
        "tasks": [{"index": k, "name": names[k], "start_episode": k * phase,
                   "end_episode": (k + 1) * phase} for k in range(n_tasks)],
        "episodes": {"return": list(scores), "score": scores, "task": task_of,
                     "env_step": [100 * (i + 1) for i in range(len(scores))]},
        "plasticity": {"update": list(range(n_meas)), "env_step": steps, "layers": layers},
        "status": "finished", "wall_time_s": 1.0,
    }
    if evaluations is not None:
        run["evaluations"] = evaluations
    return run


def two_agent_sweep_runs():
    # FixedLR recovers from switch 1 after 10/15/20 failures (recovery 20/25/30), never from switch 2
    fixed = [make_run("DQN-FixedLR", 0, s, [f, None]) for s, f in enumerate([10, 15, 20])]
    # PALR recovers after 0/2/4 failures on both switches (recovery 10/12/14)
    palr = [make_run("PALR-DQN", 4, s, [f, f]) for s, f in enumerate([0, 2, 4])]
    return palr + fixed   # out of order on purpose


def test_merge_two_agents_three_seeds_expected_values():
    sweep = merge_runs(two_agent_sweep_runs())
    assert sweep["schema"] == "palr.sweep/1" and sweep["domain"] == "cartpole"
    assert sweep["agents"] == ["DQN-FixedLR", "PALR-DQN"]      # agent_idx order
    fixed, palr = sweep["summary"]["DQN-FixedLR"], sweep["summary"]["PALR-DQN"]

    rec = fixed["recovery_episodes"]
    assert rec["values"] == pytest.approx([(20 + 40) / 2, (25 + 40) / 2, (30 + 40) / 2])
    assert rec["mean"] == pytest.approx(32.5) and rec["iqm"] == pytest.approx(32.5)
    assert rec["n"] == 3 and (rec["censored"], rec["switches"]) == (3, 6)
    assert rec["ci_low"] <= 32.5 <= rec["ci_high"] and 30.0 <= rec["ci_low"] and rec["ci_high"] <= 35.0
    assert palr["recovery_episodes"]["values"] == pytest.approx([10, 12, 14])
    assert (palr["recovery_episodes"]["censored"], palr["recovery_episodes"]["switches"]) == (0, 6)

    assert fixed["final_performance"]["mean"] == pytest.approx(400 / 3)   # 200, 200, 0
    assert palr["final_performance"]["mean"] == pytest.approx(200.0)
    assert fixed["mean_score"]["values"] == pytest.approx([14000 / 120, 13000 / 120, 12000 / 120])
    assert palr["mean_score"]["mean"] == pytest.approx((24000 + 23200 + 22400) / 360)

    # last logged value per layer, averaged over the layers of a network (prefix before the dot)
    assert fixed["dead_final/q"]["values"] == pytest.approx([(0.1 + 0.3) / 2, (0.2 + 0.3) / 2,
                                                             (0.3 + 0.3) / 2])
    assert fixed["erank_final/q"]["values"] == pytest.approx([45.0, 45.5, 46.0])
    assert palr["erank_final/head"]["mean"] == pytest.approx(14.0)
    assert "dead_final/head" not in palr                         # all null: not applicable
    assert "cw_performance" not in palr                          # no evaluations
    assert sweep["run_counts"] == {"DQN-FixedLR": {"n": 3, "running": 0},
                                   "PALR-DQN": {"n": 3, "running": 0}}
    assert [(p["agent"], p["seed"]) for p in sweep["per_run"]][:2] == [("DQN-FixedLR", 0),
                                                                         ("DQN-FixedLR", 1)]


def test_summary_text_and_files(tmp_path):
    sweep = merge_runs(two_agent_sweep_runs())
    text = format_summary(sweep)
    for needle in ("DQN-FixedLR", "PALR-DQN", "recovery (episodes)", "32.50 [", "3/6", "0/6",
                   "12.00 [", "dead final [q]", "erank final [head]", "95% CI", "cartpole"):
        assert needle in text, needle
    rows = [line for line in text.splitlines() if line.startswith(("DQN-FixedLR", "PALR-DQN"))]
    assert len(rows) >= 4   # one row per agent in each table block
    path = tmp_path / "out" / "RESULTS_SUMMARY.txt"
    assert write_summary(sweep, path) == text and path.read_text() == text
    sweep_path = tmp_path / "out" / "sweep.json"
    atomic_write_json(sweep_path, sweep)
    loaded = json.loads(sweep_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert loaded["summary"]["PALR-DQN"]["recovery_episodes"]["mean"] == pytest.approx(12.0)
    assert not list((tmp_path / "out").glob(".*tmp*"))      # no temp file left behind


def test_load_runs_from_folder_skips_other_json(tmp_path, capsys):
    runs = two_agent_sweep_runs()
    for k, run in enumerate(runs):
        (tmp_path / "runs" / f"r{k}").mkdir(parents=True)
        (tmp_path / "runs" / f"r{k}" / "result.json").write_text(json.dumps(run))
    atomic_write_json(tmp_path / "runs" / "sweep.json", merge_runs(runs))
    (tmp_path / "runs" / "torn.json").write_text('{"schema": "palr.run/1", "epis')
    loaded = load_runs(tmp_path / "runs")
    assert len(loaded) == 6
    assert "torn.json" in capsys.readouterr().err
    assert load_runs([tmp_path / "runs" / "r0" / "result.json"])[0]["agent"] == "PALR-DQN"
    with pytest.raises(ValueError, match="palr.run/1"):
        load_runs(tmp_path / "runs" / "sweep.json")
    with pytest.raises(ValueError, match="no such file"):
        load_runs(tmp_path / "missing")


def test_merge_rejects_bad_input():
    runs = two_agent_sweep_runs()
    with pytest.raises(ValueError, match="domain"):
        merge_runs(runs + [make_run("DQN-L2Reg", 3, 0, [1, 1], domain="jbw")])
    with pytest.raises(ValueError, match="seed 1"):
        merge_runs(runs + [make_run("PALR-DQN", 4, 1, [1, 1])])
    bad = dict(runs[0])
    del bad["tasks"]
    with pytest.raises(ValueError, match="tasks"):
        merge_runs([bad])
    with pytest.raises(ValueError, match="no runs"):
        merge_runs([])


def cw_evals(final_task0):
    """Two tasks; evaluations during and after each task (success rates)."""
    return [
        {"env_step": 100, "during_task": 0, "task_scores": [0.4, 0.0]},
        {"env_step": 200, "after_task": 0, "task_scores": [0.8, 0.1]},
        {"env_step": 300, "during_task": 1, "task_scores": [0.6, 0.5]},
        {"env_step": 400, "after_task": 1, "task_scores": [final_task0, 0.9]},
    ]


def test_merge_cw_metrics_with_reference_runs():
    runs = [make_run("PALR-SAC", 4, s, [0], evaluations=cw_evals(0.5 + 0.1 * s),
                     task_names=["hammer", "push-wall"], domain="cw") for s in range(2)]
    for run in runs:
        run["score_name"], run["score_threshold"] = "success", 0.9
    refs = []
    for name, auc in (("hammer", 0.2), ("push-wall", 0.5)):
        ref = make_run("SAC-FixedLR", 0, 0, [], evaluations=[
            {"env_step": 1, "during_task": 0, "task_scores": [auc - 0.1]},
            {"env_step": 2, "after_task": 0, "task_scores": [auc + 0.1]}], task_names=[name], domain="cw")
        ref["reference"] = True
        refs.append(ref)
    sweep = merge_runs(runs + refs)
    assert len(sweep["runs"]) == 2 and len(sweep["reference_runs"]) == 2
    s = sweep["summary"]["PALR-SAC"]
    # the end = mean of the last (up to 5) evaluations of the final window: steps 300 and 400
    end0 = [(0.6 + 0.5) / 2, (0.6 + 0.6) / 2]          # task 0, seeds 0 and 1
    end1 = (0.5 + 0.9) / 2                              # task 1
    assert s["cw_performance"]["values"] == pytest.approx([(e + end1) / 2 for e in end0])
    # forgetting: task 0's own window averages (0.4 + 0.8) / 2; task 1's own window is the end
    assert s["cw_forgetting"]["values"] == pytest.approx([(0.6 - e + 0.0) / 2 for e in end0])
    # AUC from evaluations: task 0 (0.4+0.8)/2 = 0.6, task 1 (0.5+0.9)/2 = 0.7
    ft = [(0.6 - 0.2) / 0.8, (0.7 - 0.5) / 0.5]
    assert s["cw_forward_transfer"]["mean"] == pytest.approx(np.mean(ft))
    assert sweep["per_run"][0]["cw_evaluations_per_task"] == [2, 2]
    text = format_summary(sweep)
    assert "CW forward transfer" in text and "CW forgetting" in text


def cw_identity(agent_idx, seed, sequence, episodes_per_task=200):
    return {"domain": "cw", "agent_idx": agent_idx, "seed": seed, "sequence": sequence,
            "env": {"task_id": True, "reward_version": "v1"},
            "episodes_per_task": episodes_per_task, "max_episode_steps": 200,
            "sac": {"network": "cw", "multi_head": True}, "interventions": {"palr": {}}
            if agent_idx == 4 else {"monitor": {}}}


def paper_run(seed):
    """A cw-paper-protocol run on two tasks (the curve of test_metrics' known answers)."""
    from test_metrics import paper_protocol_curve
    run = make_run("PALR-SAC", 4, seed, [0], evaluations=paper_protocol_curve(),
                   task_names=["hammer", "push-wall"], domain="cw")
    run.update(score_name="success", score_threshold=0.9, sequence="cw10first2",
               sequence_description="the first 2 tasks of cw10 (Continual World's CW10)",
               identity=cw_identity(4, seed, {"name": "cw10", "num_tasks": 2}))
    return run


def reference_run(name, auc, seed=7, **identity_changes):
    evals = [{"env_step": 20_000 * k, "during_task": 0, "after_task": 0,
              "task_scores": [auc + (0.1 if k % 2 else -0.1)]} for k in range(1, 11)]
    ref = make_run("SAC-FixedLR", 0, seed, [], evaluations=evals, task_names=[name], domain="cw")
    identity = cw_identity(0, seed, {"reference_task": name})
    identity.update(identity_changes)
    ref.update(reference=True, identity=identity)
    return ref


def test_cw_sweep_on_the_evaluation_curve_with_checked_references():
    refs = [reference_run("hammer", 0.2), reference_run("push-wall", 0.5, seed=8)]
    sweep = merge_runs([paper_run(0), paper_run(1)], reference_runs=refs)
    s = sweep["summary"]["PALR-SAC"]
    assert s["cw_performance"]["mean"] == pytest.approx(0.6)
    assert s["cw_forgetting"]["mean"] == pytest.approx(0.3)
    assert s["cw_forward_transfer"]["mean"] == pytest.approx((0.25 + 0.5) / 2)
    assert sweep["per_run"][0]["cw_evaluations_per_task"] == [10, 10]
    assert sweep["sequence"] == "cw10first2"
    assert "task sequence: cw10first2 (the first 2 tasks of cw10" in format_summary(sweep)


def test_references_made_with_other_settings_are_refused():
    runs = [paper_run(0)]
    other = reference_run("hammer", 0.2, episodes_per_task=5)
    with pytest.raises(ValueError, match=r"reference run hammer seed 7 was made with other "
                                         r"settings than the main runs \(episodes_per_task 200 -> 5\)"):
        merge_runs(runs, reference_runs=[other])
    silent = reference_run("hammer", 0.2, env={"task_id": False, "reward_version": "v2"})
    with pytest.raises(ValueError, match="env.reward_version 'v1' -> 'v2'"):
        merge_runs(runs, reference_runs=[silent])
    unlabelled = reference_run("hammer", 0.2)
    del unlabelled["identity"]
    with pytest.raises(ValueError, match="carries no run settings"):
        merge_runs(runs, reference_runs=[unlabelled])
    # the sequence, the seed and the agent may differ: that is what a reference run is
    merge_runs(runs, reference_runs=[reference_run("hammer", 0.2, seed=99)])


def assert_png(path):
    with open(path, "rb") as handle:
        head = handle.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 5000


def test_plots_write_non_empty_pngs(tmp_path):
    runs = two_agent_sweep_runs()
    for run in runs:
        run["evaluations"] = cw_evals(0.5) + [{"env_step": 500, "after_task": 2,
                                               "task_scores": [0.3, 0.6]}]
        for e in run["evaluations"]:
            e["task_scores"] = e["task_scores"] + [0.0]
    sweep = merge_runs(runs)
    paths = plot_all(sweep, tmp_path / "plots")
    names = sorted(p.rsplit("/", 1)[1] for p in paths)
    assert names == ["cw_matrix.png", "learning_curves.png", "plasticity_dead.png",
                     "plasticity_erank.png", "recovery.png"]
    for path in paths:
        assert_png(path)


def test_plots_single_seed_single_task_and_null_dead(tmp_path):
    # one seed, one task (no switch -> no recovery figure), dead fraction null everywhere
    sweep = merge_runs([make_run("SAC-FixedLR", 0, 0, [], dead_null=True)])
    assert sweep["summary"]["SAC-FixedLR"]["recovery_episodes"]["n"] == 0
    assert math.isnan(sweep["summary"]["SAC-FixedLR"]["recovery_episodes"]["mean"])
    assert "n/a" in format_summary(sweep)
    out = tmp_path / "p"
    assert plot_recovery(sweep, out) is None
    assert plot_cw_matrix(sweep, out) is None
    assert_png(plot_learning_curves(sweep, out))
    dead, erank = plot_plasticity(sweep, out)
    assert_png(dead) and assert_png(erank)
    assert sorted(p.name for p in out.iterdir()) == ["learning_curves.png", "plasticity_dead.png",
                                                     "plasticity_erank.png"]
    # a single seed with switches still gets a recovery bar (zero-width CI)
    one = merge_runs([make_run("PALR-DQN", 4, 0, [3])])
    assert_png(plot_recovery(one, out))
    with pytest.raises(ValueError, match="palr.sweep/1"):
        plot_all({"schema": "palr.run/1"}, out)


def test_runs_with_a_reward_rate_get_its_metrics_table_and_plot(tmp_path):
    """JBW runs carry their reward rate (records.RunRecorder with a reward_rate header): the sweep
    reports the whole run's reward per step, the last window's and each task end's; the summary
    has a reward-rate table and the plots a reward_rate.png."""
    from palr.experiments.records import RunRecorder
    runs = []
    for seed in range(2):
        rec = RunRecorder({"domain": "jbw", "agent": "DQN-FixedLR", "agent_idx": 0, "seed": seed,
                           "score_name": "return", "score_threshold": 5.0,
                           "reward_rate": {"window": 200},
                           "tasks": [{"index": k, "name": f"t{k}", "start_episode": 2 * k,
                                      "end_episode": 2 * k + 2} for k in range(2)]})
        for i, ret in enumerate([1.0, 3.0, -2.0, -2.0 + seed]):
            rec.episode(ret, ret, i // 2, 100 * (i + 1), 100)
        runs.append(rec.to_dict("finished", 1.0))
    assert runs[0]["reward_rate"] == {"window": 200, "value": [0.005, 0.02, 0.005, -0.02]}
    sweep = merge_runs(runs)
    per_run = sweep["per_run"][0]
    assert per_run["metrics"]["reward_rate"] == pytest.approx(0.0 / 400)
    assert per_run["metrics"]["reward_rate_final"] == pytest.approx(-0.02)
    assert per_run["reward_rate_per_task"] == pytest.approx([0.02, -0.02])
    entry = sweep["summary"]["DQN-FixedLR"]["reward_rate_final"]
    assert entry["values"] == pytest.approx([-0.02, -0.015]) and entry["n"] == 2
    text = format_summary(sweep)
    assert "rate (last) = reward rate (last window)" in text and "last 200 env steps" in text
    assert any(p.endswith("reward_rate.png") for p in plot_all(sweep, tmp_path))
    assert_png(tmp_path / "reward_rate.png")
    bad = dict(runs[0], reward_rate={"window": 200, "value": [0.1]})
    with pytest.raises(ValueError, match="reward_rate"):
        merge_runs([bad])


def eight_agent_sweep():
    """Every agent of the table (their real names), 2 seeds, a Q-network and a head."""
    from palr.agent_table import AGENTS
    return merge_runs([make_run(spec.display_name("DQN"), spec.index, seed, [3 + seed, 5])
                       for spec in AGENTS for seed in range(2)])


def test_summary_tables_fit_120_columns_for_8_agents():
    sweep = eight_agent_sweep()
    assert len(sweep["agents"]) == 8
    text = format_summary(sweep)
    tables = [line for line in text.splitlines() if line.startswith(tuple(sweep["agents"]))]
    assert len(tables) >= 8 * 3  # every agent in every table
    # the header, the tables and their legend: nothing wider than 120 columns
    up_to_legend = text[:text.index("\n\n", text.index("Columns:"))]
    assert max(len(line) for line in up_to_legend.splitlines()) <= TABLE_WIDTH
    # every metric is in a table (a short header) and explained in the legend
    for short, full in (("recovery", "recovery (episodes)"), ("dead [q]", "dead final [q]"),
                        ("erank [head]", "erank final [head]"), ("final perf", "final performance")):
        assert f"{short} = {full}" in " ".join(text.split()), short
    assert "DQN-ShrinkAndPerturb" in text and "censored" in text


def test_summary_csv_and_markdown_exports(tmp_path):
    import csv
    sweep = merge_runs(two_agent_sweep_runs())
    path = tmp_path / "RESULTS_SUMMARY.txt"
    write_summary(sweep, path)
    exports = summary_exports(path)
    assert exports == {"csv": tmp_path / "RESULTS_SUMMARY.csv", "md": tmp_path / "RESULTS_SUMMARY.md"}
    rows = list(csv.DictReader(exports["csv"].open()))
    by_key = {(r["agent"], r["metric"]): r for r in rows}
    rec = by_key[("DQN-FixedLR", "recovery_episodes")]
    assert float(rec["mean"]) == pytest.approx(32.5) and rec["n"] == "3" and rec["runs"] == "3"
    assert (rec["censored"], rec["switches"]) == ("3", "6")
    assert float(by_key[("PALR-DQN", "dead_final/q")]["mean"]) == pytest.approx(
        sweep["summary"]["PALR-DQN"]["dead_final/q"]["mean"])
    assert ("PALR-DQN", "dead_final/head") not in by_key  # not applicable: no row
    md = exports["md"].read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0].startswith("| agent | seeds | recovery (episodes) mean [95% CI] | IQM |")
    assert set(table[1]) <= set("|-:") and len(table[1].split("|")) == len(table[0].split("|"))
    assert any(line.startswith("| PALR-DQN | 3 | 12.00 [") for line in table)
    assert "VERDICT" in md or "verdict" in md.lower()
    assert not list(tmp_path.glob(".*tmp*"))


def _with_episode_lengths(run, length):
    """``run`` with every episode ``length`` env steps long (its switches move in env steps)."""
    run["episodes"]["env_step"] = [length * (i + 1) for i in range(len(run["episodes"]["score"]))]
    return run


def test_each_run_draws_its_own_task_switches(tmp_path):
    """Phases counted in episodes switch at other env steps in runs whose episodes differ in
    length: every run's switches are drawn, not the first run's for all."""
    from matplotlib.figure import Figure
    from palr.experiments.plots import _draw_switches
    short = _with_episode_lengths(make_run("DQN-FixedLR", 0, 0, [3, 4]), 100)
    long = _with_episode_lengths(make_run("PALR-DQN", 4, 0, [3, 4]), 150)
    sweep = merge_runs([short, long])
    positions = switch_positions(sweep)
    assert positions == {("DQN-FixedLR", 0): [4000.0, 8000.0], ("PALR-DQN", 0): [6000.0, 12000.0]}
    ax = Figure().add_subplot(1, 1, 1)
    words = _draw_switches(ax, sweep, {"DQN-FixedLR": "r", "PALR-DQN": "b"})
    drawn = sorted((line.get_xdata()[0], line.get_color()) for line in ax.lines)
    assert drawn == [(4000.0, "r"), (6000.0, "b"), (8000.0, "r"), (12000.0, "b")]
    bands = sorted((round(p.get_x()), round(p.get_x() + p.get_width())) for p in ax.patches)
    assert bands == [(4000.0, 6000.0), (8000.0, 12000.0)]  # first to last run, per switch
    assert "each agent's median" in words
    # an agent's seeds: its median switch, in its colour
    seeds = merge_runs([short, _with_episode_lengths(make_run("DQN-FixedLR", 0, 1, [3, 4]), 200),
                        _with_episode_lengths(make_run("DQN-FixedLR", 0, 2, [3, 4]), 120)])
    ax = Figure().add_subplot(1, 1, 1)
    _draw_switches(ax, seeds, {"DQN-FixedLR": "r"})
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [4800.0, 9600.0]
    # runs nearly together (within half a percent of the axis): one dashed line per switch
    near = merge_runs([_with_episode_lengths(make_run("DQN-FixedLR", 0, 0, [3, 4]), 1000),
                       _with_episode_lengths(make_run("PALR-DQN", 4, 0, [3, 4]), 1002)])
    ax = Figure().add_subplot(1, 1, 1)
    assert _draw_switches(ax, near, {"DQN-FixedLR": "r", "PALR-DQN": "b"}).startswith("dashed")
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [40040.0, 80080.0]
    # the same switches everywhere: one grey dashed line per switch
    same = merge_runs([make_run("DQN-FixedLR", 0, 0, [3, 4]), make_run("PALR-DQN", 4, 0, [3, 4])])
    ax = Figure().add_subplot(1, 1, 1)
    assert _draw_switches(ax, same, {"DQN-FixedLR": "r", "PALR-DQN": "b"}).startswith("dashed")
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [4000.0, 8000.0]
    assert_png(plot_plasticity(sweep, tmp_path)[0])


def test_curves_that_end_earlier_say_so_in_the_legend(tmp_path):
    from palr.experiments.plots import _coverage_note
    assert _coverage_note([100.0, 100.0], 100.0, 100.0, "steps") == ""
    assert _coverage_note([80.0, 100.0], 80.0, 100.0, "steps") == \
        "seeds cut to the shortest, 80 steps"
    assert _coverage_note([60.0], 60.0, 100.0, "steps") == "ends at 60 steps"
    short = make_run("PALR-DQN", 4, 0, [3, 4])
    short["plasticity"]["env_step"] = [s // 2 for s in short["plasticity"]["env_step"]]
    assert_png(plot_plasticity(merge_runs([make_run("DQN-FixedLR", 0, 0, [3, 4]), short]),
                               tmp_path)[0])


def test_layer_labels_from_module_names():
    labels = layer_labels(["q.0", "q.2", "q.10", "q.output", "critic.q1.0", "critic.q1.2",
                           "critic.q2.0", "trunk.visual_fc"])
    assert labels == {"q.0": "hidden 1 (q.0)", "q.2": "hidden 2 (q.2)", "q.10": "hidden 3 (q.10)",
                      "q.output": "output (q)", "critic.q1.0": "hidden 1 (critic.q1.0)",
                      "critic.q1.2": "hidden 2 (critic.q1.2)",
                      "critic.q2.0": "hidden 1 (critic.q2.0)",
                      "trunk.visual_fc": "hidden 1 (trunk.visual_fc)"}
