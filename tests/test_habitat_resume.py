"""DD-PPO on the MuJoCo stand-in: a run killed with SIGKILL (right after a checkpoint, in the
middle of a rollout, while the restarted run restores) and started again with the same command
ends bit-identical to an uninterrupted run (episodes, plasticity, parameter digests), with one
process and with 2 gloo ranks under torchrun; a resume with another world size or env count is
refused in one line (exit 2) and leaves the run untouched."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import List

import pytest

from test_habitat_ddppo import TINY, TINY_UPDATES_PER_ITERATION, TRAINER, _env, _free_port

ARGS = ["--config", str(TINY), "--seed", "2", "--set", "run.max_iterations=4",
        "--set", "run.checkpoint_interval=1", "--set", "run.tensorboard=false",
        "--set", "run.rank_digests=true",
        "--set", "ddppo.sync_frac=1.0"]  # no straggler preemption: rollouts of fixed length


def _command(outdir: pathlib.Path, nproc: int, *extra: str) -> List[str]:
    args = [str(TRAINER), *ARGS, "--outdir", str(outdir), *extra]
    if nproc == 1:
        return [sys.executable, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            str(nproc), *args]


def _iterations_saved(outdir: pathlib.Path) -> int:
    try:
        return int(json.loads((outdir / "result.json").read_text())["iterations"])
    except (OSError, ValueError, KeyError):
        return 0


def _descendants(pid: int) -> List[int]:
    found: List[int] = []
    try:
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child)] + _descendants(int(child))
    except OSError:  # the process is gone
        pass
    return found


def _kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it (torchrun's ranks run in their own
    sessions, so killing its process group would leave them running)."""
    for pid in [proc.pid] + _descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _final_digests(outdir: pathlib.Path, nproc: int) -> List[str]:
    """Each rank's parameter digest (palr_trainer.parameter_digest) after its last update."""
    digests = []
    for rank in range(nproc):
        lines = (outdir / "ranks" / f"rank{rank}.jsonl").read_text().splitlines()
        digests.append([json.loads(x) for x in lines if '"iteration"' in x][-1]["digest"])
    return digests


@pytest.mark.slow
@pytest.mark.parametrize("nproc, kills", [
    # (iterations saved, then seconds): after checkpoint 1 at once, while the restarted run
    # restores or collects, mid-rollout after checkpoint 2
    (1, ((1, 0.0), (1, 3.0), (2, 0.3))),
    (2, ((1, 0.0), (2, 0.4))),
], ids=["1-process", "2-ranks-torchrun"])
def test_killed_run_resumes_bit_identical(tmp_path, nproc, kills):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # a phase lasts two iterations of all ranks: every env finishes a 50-step episode in each
    phase = ("--set", f"curriculum.steps_per_phase={64 * nproc}")
    reference = subprocess.run(_command(straight, nproc, *phase), env=_env(), capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-3000:]
    for iterations, delay in kills:
        proc = subprocess.Popen(_command(killed, nproc, *phase), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        while _iterations_saved(killed) < iterations:
            assert proc.poll() is None, "the run ended before it was killed"
            time.sleep(0.02)
        time.sleep(delay)
        _kill_run(proc)
    resumed = subprocess.run(_command(killed, nproc, *phase), env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref, res = (json.loads((d / "result.json").read_text()) for d in (straight, killed))
    assert ref["iterations"] == 4 and len(ref["episodes"]["return"]) >= 2 * nproc
    assert [t["index"] for t in ref["tasks"]] == [0, 1]
    assert len(ref["plasticity"]["update"]) >= 4
    assert any(e["kind"] == "resumed" for e in res["events"])
    for key in ("episodes", "plasticity", "tasks", "env_steps", "iterations", "updates"):
        assert res[key] == ref[key], key
    digests = _final_digests(killed, nproc)
    assert digests == _final_digests(straight, nproc) and len(set(digests)) == 1


def _as_format3(state: dict) -> dict:
    """A checkpoint as the earlier format (palr_habitat.ddppo/3) held it: the trainer's
    iterations named ``updates`` (``run.max_updates``, ``update`` in events), the gradient updates
    ``gradient_steps``."""
    def renamed(record: dict, old: str, new: str) -> dict:
        return {(new if k == old else k): v for k, v in record.items()}
    out = dict(state, format="palr_habitat.ddppo/3")
    out["counters"] = renamed(state["counters"], "iterations", "updates")
    out["updater"] = renamed(state["updater"], "updates", "gradient_steps")
    out["config"] = dict(state["config"], run=renamed(state["config"]["run"], "max_iterations",
                                                      "max_updates"))
    out["curriculum"] = dict(state["curriculum"], events=[
        renamed(e, "iteration", "update") for e in state["curriculum"]["events"]])
    out["recorder"] = dict(state["recorder"], events=[
        renamed(e, "iteration", "update") for e in state["recorder"]["events"]])
    return out


@pytest.mark.slow
def test_a_checkpoint_of_the_earlier_format_resumes_bit_identical(tmp_path):
    from palr.experiments.checkpoint import load_checkpoint, save_checkpoint
    from palr_habitat.palr_trainer import CHECKPOINT
    straight, old = tmp_path / "straight", tmp_path / "old"
    phase = ("--set", "curriculum.steps_per_phase=64")
    reference = subprocess.run(_command(straight, 1, *phase), env=_env(), capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-3000:]
    first = subprocess.run(_command(old, 1, *phase, "--set", "run.max_iterations=2"), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    state = load_checkpoint(old / CHECKPOINT)
    assert state["counters"]["iterations"] == 2
    assert state["updater"]["updates"] == 2 * TINY_UPDATES_PER_ITERATION
    save_checkpoint(old / CHECKPOINT, _as_format3(state))
    resumed = subprocess.run(_command(old, 1, *phase), env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref, res = (json.loads((d / "result.json").read_text()) for d in (straight, old))
    assert res["iterations"] == 4 and res["updates"] == 4 * TINY_UPDATES_PER_ITERATION
    for key in ("episodes", "plasticity", "tasks", "env_steps", "iterations", "updates"):
        assert res[key] == ref[key], key
    assert [e for e in res["events"] if e["kind"] == "resumed"][0]["iteration"] == 2
    assert _final_digests(old, 1) == _final_digests(straight, 1)
    events = json.loads((old / "curriculum_events.json").read_text())["events"]
    assert all("iteration" in e and "update" not in e for e in events)
    assert load_checkpoint(old / CHECKPOINT)["format"] == "palr_habitat.ddppo/4"


@pytest.mark.slow
def test_resume_with_another_world_size_or_env_count_is_refused(tmp_path):
    outdir = tmp_path / "run"
    first = subprocess.run(_command(outdir, 1, "--set", "run.max_iterations=1"), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    saved = {p: p.read_bytes() for p in outdir.rglob("*") if p.is_file()}

    more_envs = subprocess.run(_command(outdir, 1, "--set", "env.num_envs=2"), env=_env(),
                               capture_output=True, text=True, timeout=300)
    assert more_envs.returncode == 2
    assert more_envs.stderr.count("\n") == 1
    assert "error:" in more_envs.stderr and "--set env.num_envs=1" in more_envs.stderr

    port = _free_port()
    ranks = []
    for rank in range(2):  # what torchrun gives each of 2 ranks
        env = _env()
        env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        ranks.append(subprocess.Popen(_command(outdir, 1), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for proc in ranks:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2
        assert stderr.count("\n") == 1 and "world size 1, this run has world size 2" in stderr
    assert {p: p.read_bytes() for p in outdir.rglob("*") if p.is_file()} == saved


@pytest.mark.slow
def test_a_finished_run_is_its_settings_and_one_writer_holds_it(tmp_path):
    """--check reports a finished run with the same settings; other settings in its directory
    are refused in one line (exit 2, nothing changed); a second launch while one runs is
    refused naming the holder's PID."""
    outdir = tmp_path / "run"
    first = subprocess.run(_command(outdir, 1, "--set", "run.max_iterations=1"), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads((outdir / "result.json").read_text())
    assert len(result["fingerprint"]) == 16 and result["identity"]["ppo"]["lr"] == 3e-4
    saved = {p: p.read_bytes() for p in outdir.rglob("*") if p.is_file() and p.name != ".lock"}
    check = subprocess.run(_command(outdir, 1, "--set", "run.max_iterations=1", "--check"),
                           env=_env(), capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and check.stdout.split() == ["running"], check.stderr
    other = subprocess.run(_command(outdir, 1, "--set", "ppo.lr=0.001"), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr
    assert "ppo.lr 0.0003 -> 0.001" in other.stderr and "--outdir" in other.stderr
    assert {p: p.read_bytes() for p in outdir.rglob("*")
            if p.is_file() and p.name != ".lock"} == saved
    longer = subprocess.Popen(_command(outdir, 1, "--set", "run.max_iterations=40"), env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while _iterations_saved(outdir) < 2:  # the first run holds the lock and trains
            assert time.time() < deadline and longer.poll() is None, longer.stderr.read()
            time.sleep(0.2)
        second = subprocess.run(_command(outdir, 1, "--set", "run.max_iterations=40"), env=_env(),
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"in use by process {longer.pid}" in second.stderr
    finally:
        _kill_run(longer)
