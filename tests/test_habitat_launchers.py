"""The Habitat launchers (run_interactive.sh, run_interactive_ablation.sh) without a container, and
the trainer's validation-only mode (palr_trainer.py --check) that they run before torchrun: stop
signals reach the trainers through ./run.sh and torchrun (exit 75, nothing left running, resume),
bad input is one line and exit 2 before torchrun starts."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import torch

from processes import alive, as_terminal_job, processes_mentioning, wait_for

from palr_habitat.ddppo_config import CONFIG_DIR
from palr_habitat.palr_trainer import main as trainer_main

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
HUGE = "99999999999999999999"  # beyond bash's 64-bit integers
#: 6 updates of 16 steps, a checkpoint after each
SHORT = ["--set", "ppo.num_steps=16", "--set", "curriculum.steps_per_phase=24",
         "--set", "run.checkpoint_interval=1", "--set", "run.tensorboard=false",
         "--set", "run.log_interval=100"]


def _env(**knobs) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
           and not k.startswith("SLURM_")}
    env.update(SIF="none", TINY="1", OMP_NUM_THREADS="1", PALR_TORCH_THREADS="1")
    env.update(knobs)
    return env


def _launch(script: str, args, **knobs) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(ROOT / script), *args], env=_env(**knobs),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=as_terminal_job)


def _stop_when_checkpointed(proc, outdir: pathlib.Path, sig, to_group: bool) -> str:
    """Send ``sig`` once the run saved a checkpoint; checks exit 75 and that no process of the
    run is left; returns the launcher's stderr."""
    wait_for(lambda: (outdir / "checkpoints" / "ckpt.pt").exists(), proc, "a checkpoint")
    trainers = processes_mentioning(str(outdir))
    assert trainers, "no trainer process found"
    groups = {os.getpgid(pid) for pid in trainers}  # torchrun's, and each trainer's with its envs
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    assert not any(alive(pid) for pid in trainers), err[-3000:]
    assert processes_mentioning(str(outdir)) == []
    assert _groups_end(groups, within=10), "a process of the run outlived its launcher"
    assert json.loads((outdir / "result.json").read_text())["status"] == "running"
    return err


def _groups_end(groups, within: float) -> bool:
    """True once no process of these process groups is left (a trainer's forkserver notices its
    parent's exit within moments; everything else is gone when the launcher returns)."""
    left = set(groups)
    deadline = time.time() + within
    while left and time.time() < deadline:
        for pgid in list(left):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                left.discard(pgid)
        if left:
            time.sleep(0.1)
    return not left


# ----------------------------------------------------------------------------- run_interactive.sh
@pytest.mark.slow
def test_sigterm_stops_the_trainer_through_torchrun_and_the_same_command_resumes(tmp_path):
    outdir = tmp_path / "run"
    proc = _launch("run_interactive.sh", SHORT, OUTDIR=str(outdir))
    err = _stop_when_checkpointed(proc, outdir, signal.SIGTERM, to_group=False)
    assert "checkpoint saved" in err and "run the same command again to resume" in err
    resumed = subprocess.run(["bash", str(ROOT / "run_interactive.sh"), *SHORT],
                             env=_env(OUTDIR=str(outdir)), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((outdir / "result.json").read_text())
    assert result["status"] == "finished" and result["iterations"] == 6
    assert any(event["kind"] == "resumed" for event in result["events"])


@pytest.mark.slow
@pytest.mark.parametrize("sig, to_group", [(signal.SIGINT, True), (signal.SIGUSR1, False)],
                         ids=["ctrl-c-to-group", "SIGUSR1-to-pid"])
def test_ctrl_c_and_sigusr1_stop_the_trainer_too(tmp_path, sig, to_group):
    """Ctrl-C (SIGINT to the launcher's process group) and SIGUSR1 (which torchrun has no handler
    for) reach the trainer, whose environments run in worker processes of its process group (which
    torchrun signals as a whole): it saves its checkpoint, exit 75, no process left."""
    outdir = tmp_path / "run"
    args = [*SHORT, "--set", "env.vector=subprocess"]
    err = _stop_when_checkpointed(_launch("run_interactive.sh", args, OUTDIR=str(outdir)),
                                  outdir, sig, to_group)
    assert "checkpoint saved" in err


def test_a_bad_set_is_one_line_and_exit_2_without_torchrun(tmp_path):
    outdir = tmp_path / "run"
    proc = subprocess.run(["bash", str(ROOT / "run_interactive.sh"), "--set", "ppo.bogus=1"],
                          env=_env(OUTDIR=str(outdir)), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("palr_trainer.py: error: --set ppo.bogus: unknown key")
    assert not outdir.exists()


@pytest.mark.parametrize("script, knobs, message", [
    ("run_interactive.sh", {"SEED": HUGE}, "SEED must be an integer from 0 to 2147483647"),
    ("run_interactive.sh", {"SEED": "-1"}, "SEED must be an integer >= 0"),
    ("run_interactive.sh", {"NPROC": HUGE}, "NPROC must be an integer from 1 to 2147483647"),
    ("run_interactive.sh", {"NPROC": "02"}, "NPROC must be an integer >= 1 written without"),
    ("run_interactive_ablation.sh", {"SEEDS": f"0 {HUGE}"}, "SEEDS must hold space-separated"),
    ("run_interactive_ablation.sh", {"SEEDS": "0 +1"}, "SEEDS must hold space-separated"),
    ("run_interactive_ablation.sh", {"NPROC": HUGE}, "NPROC must be an integer from 1 to"),
])
def test_huge_or_malformed_integers_are_rejected(tmp_path, script, knobs, message):
    outdir = tmp_path / "run"
    proc = subprocess.run(["bash", str(ROOT / script)],
                          env=_env(OUTDIR=str(outdir), RESULTS=str(outdir), **knobs),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-3000:]
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not outdir.exists()


# ----------------------------------------------------------------------------- the ablation sweep
@pytest.mark.slow
def test_a_stopped_run_stops_the_ablation_sweep(tmp_path):
    """SIGTERM to run_interactive_ablation.sh during its first run: that run checkpoints, the
    sweep starts no further run and exits 75, no process is left."""
    results = tmp_path / "ablation"
    proc = _launch("run_interactive_ablation.sh", SHORT, RESULTS=str(results), SEEDS="0")
    err = _stop_when_checkpointed(proc, results / "palr_seed0", signal.SIGTERM, to_group=False)
    assert "stopped at palr seed 0" in err
    assert processes_mentioning(str(results)) == []
    assert sorted(p.name for p in results.iterdir()) == ["palr_seed0"]


# ----------------------------------------------------------------------------- palr_trainer --check
def test_check_passes_a_good_run_and_creates_nothing(tmp_path, capsys):
    outdir = tmp_path / "new" / "run"
    assert trainer_main(["--config", str(TINY), "--outdir", str(outdir), "--agent", "0",
                         "--check"]) == 0
    assert "check passed: PPO-FixedLR seed 0, backend standin, a fresh run" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("args, message", [
    (["--set", "ppo.bogus=1"], "--set ppo.bogus: unknown key"),
    (["--agent", "12"], "unknown agent '12'; valid agents: 0=PPO-FixedLR"),
    (["--set", "ddppo.backend=nccl"], "ddppo.backend is 'nccl' but this rank runs on the CPU"),
    (["--set", "agent.interventions.bogus=1"], "unknown intervention setting"),
])
def test_check_rejects_bad_input_in_one_line(tmp_path, capsys, monkeypatch, args, message):
    # as torchrun starts a rank (a single process needs no process-group backend)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(SystemExit) as stop:
        trainer_main(["--config", str(TINY), "--outdir", str(tmp_path / "run"), "--check", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_check_names_a_missing_metaworld_in_one_line(tmp_path, capsys, monkeypatch):
    """The stand-in builds its scenes from Meta-World: without it the trainer stops with one
    line naming the install (it stopped with an ImportError traceback)."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setitem(sys.modules, "metaworld.env_dict", None)  # as if not installed
    with pytest.raises(SystemExit) as stop:
        trainer_main(["--config", str(TINY), "--outdir", str(tmp_path / "run"), "--check"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "needs Meta-World" in err and "pip install -e '.[cw]'" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_check_rejects_an_outdir_below_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as stop:
        trainer_main(["--config", str(TINY), "--outdir", str(blocker / "run"), "--check"])
    assert stop.value.code == 2 and "is not writable" in capsys.readouterr().err


@pytest.mark.slow
def test_check_tells_whether_an_existing_checkpoint_can_resume(tmp_path, capsys):
    outdir = tmp_path / "run"
    base = ["--config", str(TINY), "--seed", "1", "--outdir", str(outdir), *SHORT]
    assert trainer_main([*base, "--set", "run.max_iterations=1"]) == 0
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in outdir.rglob("*")}
    assert trainer_main([*base, "--check"]) == 0
    assert "resumes its checkpoint" in capsys.readouterr().err
    for args, message in ((["--set", "policy.hidden_size=64"], "policy.hidden_size 32 -> 64"),
                          (["--agent", "PALR-NoScale"], "agent_idx 4 -> 6")):
        with pytest.raises(SystemExit) as stop:
            trainer_main([*base, "--check", *args])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in outdir.rglob("*")} == before
