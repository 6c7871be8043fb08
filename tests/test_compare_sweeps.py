"""palr.experiments.compare_sweeps: two studies of the same agents, figure by figure."""
from __future__ import annotations

import copy
import json
import pathlib
import subprocess
import sys

import pytest

import numpy as np

from palr.experiments.compare_sweeps import (compare, differing, first_differing_episodes,
                                             holm_adjusted, load_side, main, paired_differences,
                                             permutation_p_value, report, sign_flip_p_value)
from palr.experiments.summary import aggregate

ROOT = pathlib.Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "results" / "cartpole" / "cartpole_raw_results.json"


@pytest.fixture(scope="module")
def sweep():
    return json.loads(PUBLISHED.read_text())


def _with_values(sweep, agent, figure, values):
    """A copy of ``sweep`` whose ``agent``'s ``figure`` has ``values`` (statistics redone)."""
    other = copy.deepcopy(sweep)
    entry = other["summary"][agent][figure]
    entry.update(aggregate(values), values=list(values))
    return other


def test_a_study_agrees_with_itself(sweep):
    rows = compare(sweep, sweep, n_resamples=2000)
    assert len(rows) == sum(len(figures) for figures in sweep["summary"].values())
    assert all(r.overlap for r in rows) and differing(rows) == []
    assert all(r.paired_p_value == 1.0 for r in rows if r.paired_p_value is not None)
    assert min(r.p_value for r in rows if r.p_value is not None) > 0.9


def test_a_shifted_figure_differs(sweep, tmp_path):
    values = sweep["summary"]["PALR-DQN"]["mean_score"]["values"]
    shifted = _with_values(sweep, "PALR-DQN", "mean_score", [v + 100 for v in values])
    rows = {(r.agent, r.figure): r for r in compare(sweep, shifted, n_resamples=2000)}
    row = rows[("PALR-DQN", "mean_score")]
    assert not row.overlap and row.p_value < 0.001 and row.paired_p_value < 0.01
    assert [(r.agent, r.figure) for r in differing(list(rows.values()))] == \
        [("PALR-DQN", "mean_score")]
    b = tmp_path / "b.json"
    b.write_text(json.dumps(shifted))
    out = tmp_path / "report.txt"
    assert main([str(PUBLISHED), str(b), "--check", "--out", str(out)]) == 1
    text = out.read_text()
    assert "apart: PALR-DQN mean_score" in text
    assert "differ (CIs apart, or Holm-adjusted p < 0.05 over all figures): PALR-DQN mean_score" \
        in text
    assert max(len(line) for line in text.splitlines()) <= 120
    assert main([str(PUBLISHED), str(b)]) == 0  # without --check: a report, not a failure


def test_reshuffled_seeds_are_one_distribution_but_not_paired(sweep):
    """The same values on other seeds: the unpaired test sees one distribution (p = 1), the
    paired differences are not all 0."""
    values = sweep["summary"]["DQN-FixedLR"]["mean_score"]["values"]
    rotated = _with_values(sweep, "DQN-FixedLR", "mean_score", values[1:] + values[:1])
    row = next(r for r in compare(sweep, rotated, n_resamples=2000)
               if (r.agent, r.figure) == ("DQN-FixedLR", "mean_score"))
    assert row.overlap and row.p_value == 1.0 and row.paired_p_value == 1.0  # mean diff is 0
    assert any(d != 0 for d in paired_differences(sweep["summary"]["DQN-FixedLR"]["mean_score"],
                                                  rotated["summary"]["DQN-FixedLR"]["mean_score"]))


def test_permutation_tests_tell_one_distribution_from_two():
    rng = np.random.default_rng(1)
    same = [permutation_p_value(rng.normal(size=10), rng.normal(size=10), 2000, seed=k)
            for k in range(200)]
    assert 0.02 < np.mean(np.array(same) < 0.05) < 0.1  # about the nominal 5% false alarms
    assert permutation_p_value(rng.normal(size=10), rng.normal(3, 1, size=10), 2000) < 0.001
    assert sign_flip_p_value(rng.normal(2, 1, size=10), 2000) < 0.01
    assert sign_flip_p_value([0.0, 0.0, 0.0]) == 1.0 and sign_flip_p_value([1.0]) is None


def test_holm_adjustment_steps_down():
    assert holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjusted([0.5, 0.9]) == [1.0, 1.0]


def test_first_differing_episode_per_seed(sweep):
    changed = copy.deepcopy(sweep)
    run = next(r for r in changed["runs"] if (r["agent"], r["seed"]) == ("PALR-DQN", 3))
    run["episodes"]["score"][57] += 1.0
    firsts = first_differing_episodes(sweep, changed)
    length = len(run["episodes"]["score"])
    assert firsts["PALR-DQN"][3] == 57
    assert firsts["PALR-DQN"][:3] == [length] * 3 and firsts["DQN-FixedLR"][0] > 0
    assert "  PALR-DQN: " in "\n".join(report(sweep, changed, ("A", "B"), compare(sweep, changed,
                                                                                 200)))


def test_pairing_uses_common_finite_seeds_only():
    a = {"values": [1.0, 2.0, float("nan")], "seeds": [0, 1, 2]}
    b = {"values": [3.0, 5.0, 7.0, 9.0], "seeds": [1, 0, 2, 3]}
    assert paired_differences(a, b) == [3 - 2, 5 - 1]


def test_a_folder_of_runs_is_merged_like_the_sweep(sweep, tmp_path):
    folder = tmp_path / "runs"
    for k, run in enumerate(r for r in sweep["runs"] if r["agent"] == "PALR-DQN"):
        (folder / f"run{k}").mkdir(parents=True)
        (folder / f"run{k}" / "result.json").write_text(json.dumps(run))
    merged = load_side(folder)
    assert merged["agents"] == ["PALR-DQN"]
    rows = compare(sweep, merged, n_resamples=500)
    assert rows and all(r.overlap for r in rows) and not differing(rows)
    assert all(r.paired_p_value == 1.0 for r in rows if r.paired_p_value is not None)


@pytest.mark.parametrize("args, message", [
    (["missing.json", str(PUBLISHED)], "missing.json: no such file or folder"),
    ([str(PUBLISHED), "."], "no run results under it"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(empty) if a == "." else a for a in args]
    proc = subprocess.run([sys.executable, "-m", "palr.experiments.compare_sweeps", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
