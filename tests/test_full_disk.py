"""A full disk while writing the merged sweep, RESULTS_SUMMARY.txt or the plots: one line naming
the file, exit status 1, and every file written before intact (atomic writes).

Two ways to fill a disk: a real small tmpfs (mounting needs root; skipped with the reason where
it is not permitted), and, in-process, ``os.fsync`` failing with ENOSPC for chosen files (the
point where a full disk surfaces for buffered writes)."""
from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import subprocess
import sys
from typing import Dict

import pytest

from palr.experiments.summary import merge_runs

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
EARLIER = b"an earlier result\n"


def _run(agent: str, seed: int, episodes: int = 3000) -> Dict:
    scores = [round((i % 97) / 97, 4) for i in range(episodes)]
    half = episodes // 2
    return {"schema": "palr.run/1", "domain": "cw", "agent": agent, "agent_idx": 0, "seed": seed,
            "score_name": "success", "score_threshold": 0.9,
            "tasks": [{"index": 0, "name": "reach-v3", "start_episode": 0, "end_episode": half},
                      {"index": 1, "name": "push-v3", "start_episode": half,
                       "end_episode": episodes}],
            "episodes": {"score": scores, "return": scores}, "status": "finished"}


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def _fill(disk: pathlib.Path, leave: int = 4096) -> None:
    """Fill ``disk`` up to ``leave`` bytes."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(free - leave, 0))


def _files(folder: pathlib.Path) -> Dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_merge_on_a_full_tmpfs_is_one_line_and_keeps_the_earlier_results(small_disk):
    for seed in (0, 1):
        (small_disk / f"cw_checkpoint_cw20_seed{seed}_agent0.json").write_text(
            json.dumps(_run("SAC-FixedLR", seed)))
    (small_disk / "cw20_raw_results.json").write_bytes(EARLIER)
    (small_disk / "RESULTS_SUMMARY.txt").write_bytes(EARLIER)
    _fill(small_disk)
    before = _files(small_disk)
    proc = subprocess.run([sys.executable, str(SRC / "merge_cw_checkpoints.py"), "--suffix", "cw20",
                           "--results_dir", str(small_disk)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("merge_cw_checkpoints.py: error: cannot write ")
    assert f"{small_disk / 'cw20_raw_results.json'}" in lines[0]
    assert "No space left on device" in lines[0] and "--results_dir" in lines[0]
    assert _files(small_disk) == before  # nothing torn, no temp file left


def test_plots_on_a_full_tmpfs_are_one_line_and_keep_the_earlier_plots(tmp_path, small_disk):
    results = tmp_path / "results"
    results.mkdir()
    sweep = merge_runs([_run("SAC-FixedLR", 0, 200), _run("PALR-SAC", 0, 200)])
    (results / "cw20_raw_results.json").write_text(json.dumps(sweep))
    (small_disk / "learning_curves.png").write_bytes(EARLIER)  # a plot of an earlier sweep
    _fill(small_disk, leave=0)
    before = _files(small_disk)
    proc = subprocess.run([sys.executable, str(SRC / "plot_cw_results.py"), "--suffix", "cw20",
                           "--results_dir", str(results), "--plots_dir", str(small_disk)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"plot_cw_results.py: error: cannot write '{small_disk}/")
    assert "No space left on device" in lines[0] and "--plots_dir" in lines[0]
    assert _files(small_disk) == before


def _fail_fsync_for(monkeypatch, name_part: str) -> None:
    """``os.fsync`` raises ENOSPC for files whose name contains ``name_part`` (the atomic
    write's temp file ``.<name>.tmp<pid>``)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if name_part in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.slow
def test_cartpole_summary_on_a_full_disk_keeps_runs_and_the_earlier_summary(tmp_path,
                                                                              monkeypatch, capsys):
    if not pathlib.Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to see which file is being written")
    from palr.experiments.cartpole import main
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "RESULTS_SUMMARY.txt").write_bytes(EARLIER)
    _fail_fsync_for(monkeypatch, "RESULTS_SUMMARY")
    with pytest.raises(SystemExit) as stop:
        main(["--agents", "0", "--seeds", "1", "--phase_episodes", "2", "--learning_starts", "20",
              "--jobs", "1", "--no_progress", "--no_tensorboard", "--outdir", str(outdir)])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    # the first summary file written (the CSV/Markdown exports or the text) is the one refused
    assert re.match(rf"run_experiments\.py: error: cannot write '{re.escape(str(outdir))}/"
                    r"RESULTS_SUMMARY\.(txt|csv|md)' \(No space left on device\)", last), err
    assert (outdir / "RESULTS_SUMMARY.txt").read_bytes() == EARLIER
    result = json.loads((outdir / "runs" / "DQN-FixedLR_seed0" / "result.json").read_text())
    assert result["status"] == "finished"  # the run itself is kept: rerunning only re-merges
    assert not [p for p in outdir.rglob("*") if ".tmp" in p.name]
