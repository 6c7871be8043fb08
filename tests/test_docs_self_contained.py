"""The repository's docs stand on their own: no pointers to files it does not contain, no wording
that calls the original system "the seed", links into docs/ that resolve, and a README layout
block whose every path exists."""
from __future__ import annotations

import pathlib
import re
import subprocess
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
#: generated study outputs (data, not docs)
GENERATED = "docs/results/"

#: files outside the repository (case-sensitive: docs/design.md is the repository's own)
OUTSIDE = re.compile(r"DESIGN\.md|ANCHORS\.md|SEED-README|\.\./shared")
#: "seed" meaning the original system; never an RNG seed ("the seeds'", "seed 0", "--seeds")
ORIGINAL_AS_SEED = re.compile(r"\bthe\s+seed['’]s\b|\bseed\s+README\b|\bseed[- ]era\b"
                              r"|\bseed\s+entry\s+point\b", re.IGNORECASE)
#: files whose owners are rewording them on their own branches; remove an entry once it is clean
PENDING: Set[str] = set()

#: ``docs/<file>.md`` or ``README.md``, optionally ``#anchor``
DOC_LINK = re.compile(r"(?<![\w./-])(docs/[\w./-]+?\.md|README\.md)(?:#([\w-]+))?")


def tracked_text_files() -> Iterator[Tuple[str, str]]:
    """(path, text) of every tracked text file outside the generated study outputs."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True,
                           text=True).stdout.split("\0")
    for name in filter(None, names):
        if name.startswith(GENERATED) or not (ROOT / name).is_file():
            continue
        data = (ROOT / name).read_bytes()
        if b"\0" in data:
            continue  # binary
        yield name, data.decode("utf-8", errors="replace")


def offending_lines(text: str) -> List[str]:
    return [line.strip() for line in text.splitlines()
            if OUTSIDE.search(line) or ORIGINAL_AS_SEED.search(line)]


def test_patterns_tell_the_original_system_from_rng_seeds():
    for bad in ("see DESIGN.md section 2", "(ANCHORS.md)", "SEED-README.md", "../shared/x",
                "the seed's launcher", "The seed’s table", "the seed README", "seed-era flags",
                "(seed entry point)"):
        assert offending_lines(bad), bad
    for fine in ("docs/design.md#evaluation", "--seeds 0 1 2", "seed=3", "the seeds' rows",
                 "deterministic under the seed", "seed 0, PALR", "per-seed results",
                 "a seed's episode order", "random seed's value"):
        assert not offending_lines(fine), fine


def test_no_reference_outside_the_repository():
    this_file = str(pathlib.Path(__file__).resolve().relative_to(ROOT))  # quotes the patterns
    hits = {name: offending_lines(text) for name, text in tracked_text_files()
            if name not in PENDING and name != this_file}
    assert {name: lines for name, lines in hits.items() if lines} == {}


def test_pending_files_still_need_their_exemption():
    for name in PENDING:
        assert offending_lines((ROOT / name).read_text()), (
            f"{name} is clean now: remove it from PENDING in {pathlib.Path(__file__).name}")


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: pathlib.Path) -> Set[str]:
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.add(github_anchor(line.lstrip("#")))
    return found


def test_links_into_the_docs_resolve():
    known: Dict[str, Set[str]] = {}
    broken = []
    for name, text in tracked_text_files():
        for match in DOC_LINK.finditer(text):
            target, anchor = match.group(1), match.group(2)
            path = ROOT / target
            if not path.is_file():
                broken.append(f"{name}: {match.group(0)} (no such file)")
            elif anchor:
                if target not in known:
                    known[target] = anchors(path)
                if anchor not in known[target]:
                    broken.append(f"{name}: {match.group(0)} (no such section)")
    assert broken == []


def test_github_anchor():
    assert github_anchor(" Reliability rules") == "reliability-rules"
    assert github_anchor("Per layer (every hidden layer that feeds an activation)") == \
        "per-layer-every-hidden-layer-that-feeds-an-activation"
    assert github_anchor("PALR, exactly") == "palr-exactly"


def layout_block(readme: str) -> str:
    """The fenced block of the README's ``## Layout`` section."""
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def layout_paths(block: str) -> List[str]:
    """Every path the tree block names, relative to the repository root (comments dropped; a
    line may name several entries separated by ', '; a tree level is 4 characters wide)."""
    paths: List[str] = []
    parents: List[str] = []
    for line in block.splitlines():
        body = line.split("#", 1)[0].rstrip()
        names = body.lstrip("│├└─ \u00a0")
        if not names:
            continue
        depth = (len(body) - len(names)) // 4
        del parents[depth:]
        for name in names.split(", "):
            paths.append("/".join(parents + [name.rstrip("/")]))
        if names.endswith("/"):
            parents.append(names.rstrip("/"))
    return paths


def test_layout_parser_follows_the_tree():
    block = ("\ntop/\n├── src/\n│   ├── pkg/     # a comment, with/slashes.py\n│   │   └── a.py\n"
             "│   └── ...\nb.sh, c.sh   # two\n")
    assert layout_paths(block) == ["top", "top/src", "top/src/pkg", "top/src/pkg/a.py",
                                   "top/src/...", "b.sh", "c.sh"]


def path_exists(path: str) -> bool:
    pattern = path.replace("...", "*")
    if any(ch in pattern for ch in "*?["):
        return any(ROOT.glob(pattern))
    return (ROOT / path).exists()


def test_every_path_of_the_readme_layout_exists():
    readme = (ROOT / "README.md").read_text()
    paths = layout_paths(layout_block(readme))
    assert "palr_plasticity_aware_lr/src/palr/plasticity.py" in paths  # the parser saw the tree
    assert "run_on_HPC.sh" in paths
    assert [p for p in paths if not path_exists(p)] == []
    # the paragraph under the block names files of the original layout: they exist under src/
    after = readme.split("\n## Layout\n", 1)[1].split("```", 2)[2].split("\n## ", 1)[0]
    named = re.findall(r"`(\w+\.py)`", after)
    assert named and [n for n in named if not (SRC / n).is_file()] == []
