"""Written tables fit 120 columns: the splitter, the verdict and the plasticity-by-task tables."""
from __future__ import annotations

import pytest

from palr.experiments.plasticity_trend import format_trend, plasticity_trend
from palr.experiments.text_tables import TABLE_WIDTH, split_table, text_table
from palr.experiments.verdict import compute_verdict, format_verdict
from tests.test_summary_plots import eight_agent_sweep, make_run
from palr.experiments.summary import format_summary, merge_runs


def _blocks(lines):
    """The tables of ``split_table``'s output (lists of lines, split at blank lines)."""
    blocks, current = [], []
    for line in lines + [""]:
        if line:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def test_split_table_repeats_the_label_column_and_keeps_every_cell():
    header = ["agent"] + [f"column {i}" for i in range(12)]
    rows = [[f"agent-{r}"] + [f"{r}.{c} [{r}, {c}]xxxxxxxx" for c in range(12)] for r in range(3)]
    lines = split_table(header, rows, width=80)
    assert max(len(line) for line in lines) <= 80
    blocks = _blocks(lines)
    assert len(blocks) > 1
    cells = set()
    for block in blocks:
        assert block[0].startswith("agent") and set(block[1]) <= {"-", " "}
        assert [b.split()[0] for b in block[2:]] == ["agent-0", "agent-1", "agent-2"]
        cells |= {cell for line in block[2:] for cell in line.split("  ") if cell.strip()}
    for r, row in enumerate(rows):
        for cell in row[1:]:
            assert cell in {c.strip() for c in cells}, cell


def test_split_table_is_one_table_when_it_fits_and_never_drops_a_wide_column():
    header, rows = ["a", "b"], [["x", "y"]]
    assert split_table(header, rows) == text_table(header, rows)
    wide = [["x", "y" * 150]]
    assert split_table(header, wide, width=40)[-1].endswith("y" * 150)


def test_whole_summary_with_verdict_fits_120_columns_for_8_agents():
    text = format_summary(eight_agent_sweep())
    assert "VERDICT" in text and "P(improve)" in text
    too_wide = [line for line in text.splitlines() if len(line) > TABLE_WIDTH]
    assert not too_wide, too_wide[:3]


def test_verdict_rows_stay_complete_after_the_split():
    sweep = eight_agent_sweep()
    lines = format_verdict(compute_verdict(sweep)).splitlines()
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    for agent in sweep["agents"]:  # one row per agent in each of the tables
        assert sum(line.startswith(agent + " ") for line in lines) >= 2, agent


@pytest.mark.parametrize("n_tasks", [4, 10])
def test_plasticity_by_task_tables_fit_120_columns(n_tasks):
    runs = [make_run(name, idx, seed, [3] * (n_tasks - 1),
                     task_names=[f"task-with-a-long-name-{k}" for k in range(n_tasks)])
            for idx, name in ((0, "DQN-FixedLR"), (4, "PALR-DQN")) for seed in range(2)]
    sweep = merge_runs(runs)
    text = format_trend(plasticity_trend(sweep), [t["name"] for t in runs[0]["tasks"]])
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH
    assert f"end {n_tasks - 1}:task-with-a-long-name-{n_tasks - 1}" in text
    assert sum(line.startswith("PALR-DQN [q]") for line in text.splitlines()) >= 2
