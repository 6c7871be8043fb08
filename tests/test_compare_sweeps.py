"""palr.experiments.compare_sweeps: two studies of the same agents, figure by figure."""
from __future__ import annotations

import copy
import json
import pathlib
import subprocess
import sys

import pytest

from palr.experiments.compare_sweeps import compare, load_side, main, paired_difference
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


def test_a_study_agrees_with_itself_and_its_paired_differences_are_zero(sweep):
    rows = compare(sweep, sweep)
    assert len(rows) == sum(len(figures) for figures in sweep["summary"].values())
    assert all(r.agree for r in rows)
    assert all(r.paired["mean"] == 0 for r in rows if r.paired is not None)
    assert not any(r.paired_excludes_zero for r in rows)


def test_a_shifted_figure_disagrees_and_its_paired_difference_excludes_zero(sweep, tmp_path):
    values = sweep["summary"]["PALR-DQN"]["mean_score"]["values"]
    shifted = _with_values(sweep, "PALR-DQN", "mean_score", [v + 100 for v in values])
    rows = {(r.agent, r.figure): r for r in compare(sweep, shifted)}
    row = rows[("PALR-DQN", "mean_score")]
    assert not row.agree and row.paired_excludes_zero
    assert row.paired["mean"] == pytest.approx(100)
    assert all(r.agree for key, r in rows.items() if key != ("PALR-DQN", "mean_score"))
    b = tmp_path / "b.json"
    b.write_text(json.dumps(shifted))
    out = tmp_path / "report.txt"
    assert main([str(PUBLISHED), str(b), "--check", "--out", str(out)]) == 1
    text = out.read_text()
    assert "disagree: PALR-DQN mean_score" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    assert main([str(PUBLISHED), str(b)]) == 0  # without --check: a report, not a failure


def test_reshuffled_seeds_agree_but_are_not_paired_zero(sweep):
    """The same values on other seeds: the same distribution (agree), seed by seed different."""
    values = sweep["summary"]["DQN-FixedLR"]["mean_score"]["values"]
    rotated = _with_values(sweep, "DQN-FixedLR", "mean_score", values[1:] + values[:1])
    row = next(r for r in compare(sweep, rotated)
               if (r.agent, r.figure) == ("DQN-FixedLR", "mean_score"))
    assert row.agree and row.paired["mean"] == pytest.approx(0, abs=1e-9)
    assert row.paired["ci_low"] < 0 < row.paired["ci_high"]


def test_pairing_uses_common_finite_seeds_only():
    a = {"values": [1.0, 2.0, float("nan")], "seeds": [0, 1, 2]}
    b = {"values": [3.0, 5.0, 7.0, 9.0], "seeds": [1, 0, 2, 3]}
    assert paired_difference(a, b)["n"] == 2
    assert paired_difference(a, b)["mean"] == pytest.approx(((3 - 2) + (5 - 1)) / 2)
    assert paired_difference(a, {"values": [1.0], "seeds": [7]}) is None


def test_a_folder_of_runs_is_merged_like_the_sweep(sweep, tmp_path):
    folder = tmp_path / "runs"
    for k, run in enumerate(r for r in sweep["runs"] if r["agent"] == "PALR-DQN"):
        (folder / f"run{k}").mkdir(parents=True)
        (folder / f"run{k}" / "result.json").write_text(json.dumps(run))
    merged = load_side(folder)
    assert merged["agents"] == ["PALR-DQN"]
    rows = compare(sweep, merged)
    assert rows and all(r.agree for r in rows)
    assert all(r.paired["mean"] == pytest.approx(0) for r in rows if r.paired is not None)


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
