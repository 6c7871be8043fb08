"""Fixed-width plain-text tables that fit a terminal: one table, or one split into column blocks.

Every table the launchers write (RESULTS_SUMMARY.txt, VERDICT.txt, PLASTICITY_BY_TASK.txt, the
evaluation report) goes through these two functions, so they share one layout: the first column
left-aligned, the others right-aligned, two spaces between columns, a dashed rule under the header.
"""
from __future__ import annotations

from typing import List, Sequence

#: the widest line of a written table (a terminal or e-mail width)
TABLE_WIDTH = 120


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """The lines of one table: header, dashed rule, one line per row."""
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cells[0].ljust(widths[0]) if c == 0 else cells[c].rjust(widths[c])
                         for c in range(len(cells))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def split_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int = TABLE_WIDTH,
                keep: int = 1) -> List[str]:
    """:func:`text_table` split into consecutive tables (a blank line between them) so that no
    line is wider than ``width``: each table repeats the first ``keep`` columns (the row labels)
    and takes as many of the remaining columns, in order, as fit (at least one, so a single
    column wider than ``width`` still appears)."""
    columns = [[header[c], *(r[c] for r in rows)] for c in range(len(header))]
    sizes = [max(len(cell) for cell in column) for column in columns]
    labels = list(range(min(keep, len(header))))
    label_width = sum(sizes[c] for c in labels) + 2 * (len(labels) - 1)
    blocks: List[List[int]] = []
    used = label_width
    current: List[int] = []
    for c in range(len(labels), len(header)):
        if current and used + 2 + sizes[c] > width:
            blocks.append(current)
            current, used = [], label_width
        current.append(c)
        used += 2 + sizes[c]
    if current or not blocks:
        blocks.append(current)
    lines: List[str] = []
    for block in blocks:
        if lines:
            lines.append("")
        chosen = labels + block
        lines += text_table([header[c] for c in chosen], [[r[c] for c in chosen] for r in rows])
    return lines


__all__ = ["TABLE_WIDTH", "text_table", "split_table"]
