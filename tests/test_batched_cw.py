"""Seed-batched Continual World runs (palr.batched.cw_runner): every member writes the run (and
the cw_checkpoint JSON) its separate run writes, and a killed batch resumes to the uninterrupted
results."""
import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("metaworld")
pytestmark = pytest.mark.metaworld

from palr.batched.cw_runner import run_cw_batch  # noqa: E402
from palr.batched.runner import batch_dir_for  # noqa: E402
from palr.experiments.continual_world import (build_parser, checkpoint_json, make_jobs,  # noqa: E402
                                              run_cw_job)
from palr.errors import UsageError  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: 2 tasks of 3 episodes of 100 steps; PALR measuring every 50 updates
TINY = ["--num_tasks", "2", "--episodes_per_task", "3", "--max_episode_steps", "100",
        "--start_steps", "100", "--update_after", "100", "--update_every", "50",
        "--batch_size", "32", "--eval_episodes", "1", "--eval_every", "0", "--measure_freq", "50",
        "--diag_batch_size", "64", "--no_tensorboard", "--no_progress"]


#: Continual World's task-aware protocol, with its network (LayerNorm, tanh, leaky ReLU)
CW_PAPER = ("--preset", "cw-paper")


def jobs(outdir, extra=()):
    args = build_parser().parse_args(["--cw10", "--agent", "PALR-SAC", "--seeds", "2",
                                      "--checkpoint_every", "1", "--outdir", str(outdir),
                                      *TINY, *extra])
    return make_jobs(args)


def close(a, b, tol=1e-5):
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    return a == b


@pytest.mark.slow
def test_batch_members_equal_their_separate_runs(tmp_path):
    batched = run_cw_batch(jobs(tmp_path / "batch"))
    separate = [json.loads(json.dumps(run_cw_job(job))) for job in jobs(tmp_path / "separate")]
    for job, b, s in zip(jobs(tmp_path / "batch"), batched, separate):
        assert b["schema"] == s["schema"] == "palr.run/1" and b["status"] == "finished"
        for key in ("seed", "identity", "fingerprint", "settings_fingerprint", "config", "tasks",
                    "sequence"):
            assert b[key] == s[key], key
        assert b["batched_with"] == [0, 1]
        assert json.loads(checkpoint_json(job).read_text()) == b  # published for the CW merge
        # exact: episode lengths, env steps, tasks, successes, events, evaluation steps/tasks
        be, se = b["episodes"], s["episodes"]
        assert len(be["return"]) == 6
        for key in be:
            if key != "return":
                assert be[key] == se[key], key
        assert [e["kind"] for e in b["events"]] == [e["kind"] for e in s["events"]]
        # exact: the warm-up episode (uniform random actions); later episodes differ: the
        # stacked updates sum in another order (weights ~1e-7 apart) and MuJoCo's contacts
        # amplify the actions' differences, as separate runs on two machines would differ
        assert be["return"][0] == se["return"][0]
        assert be["return"][1:] != se["return"][1:]  # (if this fails, tighten the test)
        # within 1e-5: the PALR measurements of the first burst (updates 1 and 50, its replay
        # all warm-up steps)
        bp, sp = b["plasticity"], s["plasticity"]
        assert bp["update"] == sp["update"] and bp["update"][:2] == [1, 50]
        assert set(bp["layers"]) == set(sp["layers"])
        for layer, metrics in sp["layers"].items():
            for metric, values in metrics.items():
                assert close(bp["layers"][layer][metric][:2], values[:2]), (layer, metric)
        # the evaluations: exact steps and tasks, every task at both task ends
        assert [(e["env_step"], e["after_task"]) for e in b["evaluations"]] == \
            [(e["env_step"], e["after_task"]) for e in s["evaluations"]]
        assert len(s["evaluations"]) == 2


@pytest.mark.slow
def test_cw_paper_batch_members_equal_their_separate_runs(tmp_path):
    """``--preset cw-paper`` seed-batched: Continual World's network, task one-hot, a head and a
    temperature per task, replay and Adam moments reset at the switch, warm-up and first update
    counted from every task's start. Each member has its separate run's identity, fingerprints, config and
    tasks, the same episode lengths, env steps, events and evaluations, the same updates (the
    per-task schedule: 250 per task, not the 550 of one run-long clock), the same returns in both
    tasks' warm-up episodes (episode 3: the noise generator was consumed alike by task 0's
    updates) and, within 1e-5, PALR's first measurement (update 1). Later ones drift: by
    update 3 one actor weight was 2.8e-4 apart (measured: a ReLU input at 0 within rounding
    gives that weight a gradient of exactly 0 in one summation order and ~1e-10 in the other,
    and Adam's first normalised step moves it by ~lr), which training then amplifies."""
    batched = run_cw_batch(jobs(tmp_path / "batch", CW_PAPER))
    separate = [json.loads(json.dumps(run_cw_job(job)))
                for job in jobs(tmp_path / "separate", CW_PAPER)]
    for b, s in zip(batched, separate):
        assert b["status"] == s["status"] == "finished" and b["batched_with"] == [0, 1]
        sac = b["identity"]["sac"]
        assert (sac["network"], sac["multi_head"], sac["per_task_alpha"]) == ("cw", True, True)
        assert b["identity"]["schedule"]["per_task"] and b["identity"]["env"]["task_id"]
        for key in ("seed", "identity", "fingerprint", "settings_fingerprint", "config", "tasks",
                    "sequence"):
            assert b[key] == s[key], key
        be, se = b["episodes"], s["episodes"]
        assert len(be["return"]) == 6
        assert {k: v for k, v in be.items() if k != "return"} == \
            {k: v for k, v in se.items() if k != "return"}
        assert [e["kind"] for e in b["events"]] == [e["kind"] for e in s["events"]]
        assert be["return"][0] == se["return"][0] and be["return"][3] == se["return"][3]
        bp, sp = b["plasticity"], s["plasticity"]
        assert bp["update"] == sp["update"] and bp["update"][:2] == [1, 50]
        assert bp["update"][-1] == 500
        for layer, metrics in sp["layers"].items():
            for metric, values in metrics.items():
                assert close(bp["layers"][layer][metric][:1], values[:1]), (layer, metric)
        assert [(e["env_step"], e["after_task"]) for e in b["evaluations"]] == \
            [(e["env_step"], e["after_task"]) for e in s["evaluations"]]


BATCH_SCRIPT = """
import pathlib, sys
sys.path.insert(0, {tests!r})
from test_batched_cw import jobs
from palr.batched.cw_runner import run_cw_batch
run_cw_batch(jobs(pathlib.Path({outdir!r}), {extra!r}))
"""


def comparable(result):
    return {k: result[k] for k in ("episodes", "plasticity", "evaluations", "tasks", "identity")}


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), CW_PAPER], ids=["silent", "cw-paper"])
def test_a_killed_batch_resumes_to_the_uninterrupted_results(tmp_path, extra):
    """Killed after its checkpoint on task 2 (with cw-paper: after the switch's resets, on the
    new task's clock, heads and temperature), the batch resumes bit-identically."""
    reference = run_cw_batch(jobs(tmp_path / "straight", extra))
    outdir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", BATCH_SCRIPT.format(
        tests=str(ROOT / "tests"), outdir=str(outdir), extra=tuple(extra))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = batch_dir_for(jobs(outdir, extra)) / "checkpoint.pt"
    results = [pathlib.Path(job.run_dir) / "result.json" for job in jobs(outdir, extra)]
    deadline = time.time() + 600
    while True:  # wait until the batch has saved its members 4 episodes in (task 2 started)
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the batch made no progress"
        try:
            if checkpoint.exists() and all(
                    len(json.loads(r.read_text())["episodes"]["return"]) >= 4 for r in results):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(json.loads(r.read_text())["status"] == "running" for r in results)
    with pytest.raises(UsageError, match="member of a stopped seed batch"):  # its separate run
        run_cw_job(jobs(outdir, extra)[0])
    resumed = run_cw_batch(jobs(outdir, extra))
    for got, want in zip(resumed, reference):
        assert got["status"] == "finished"
        assert [e["kind"] for e in got["events"]].count("resumed") == 1
        assert comparable(got) == comparable(want)  # bit-identical


LAUNCHER = ROOT / "palr_plasticity_aware_lr" / "src" / "run_cw_experiments.py"


@pytest.mark.parametrize("extra, message", [
    (["--agent", "0", "--reference"], "reference runs do not run seed-batched"),
    (["--agent", "4", "--preset", "cw-paper", "--reference"],
     "reference runs do not run seed-batched"),
])
def test_launcher_refuses_what_does_not_batch_before_anything_runs(tmp_path, extra, message):
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--cw10", "--seeds", "2",
                           "--batch_seeds", "--outdir", str(tmp_path / "out"), *TINY, *extra],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--batch_seeds" in proc.stderr
    assert not (tmp_path / "out" / "cw_runs").exists()


@pytest.mark.slow
def test_launcher_batches_a_weight_intervention_agent_as_its_separate_runs(tmp_path):
    """SAC-L2Reg (a penalty at every update) through ``run_cw_experiments.py --batch_seeds``:
    each member's published result has its separate run's identity, fingerprints and config,
    the same episodes, env steps and events, the same warm-up return and, within 1e-5, the
    plasticity measurements after the first update burst (50 penalised updates, weight norms
    included; later bursts train on policy steps, where the members drift ~1e-7 apart as
    in test_batch_members_equal_their_separate_runs)."""
    one_task = ["--agent", "SAC-L2Reg", "--num_tasks", "1", "--episodes_per_task", "2",
                "--set", "l2_coef=0.1"]
    results = {}
    for mode, flags in (("batch", ["--batch_seeds"]), ("separate", [])):
        outdir = tmp_path / mode
        proc = subprocess.run([sys.executable, str(LAUNCHER), "--cw10", "--seeds", "2",
                               "--outdir", str(outdir), *TINY, *one_task, *flags],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        results[mode] = [json.loads(checkpoint_json(job).read_text())
                         for job in jobs(outdir, one_task)]
    for b, s in zip(results["batch"], results["separate"]):
        assert b["status"] == s["status"] == "finished" and b["batched_with"] == [0, 1]
        assert b["identity"]["interventions"]["l2reg"]["l2_coef"] == 0.1
        for key in ("seed", "identity", "fingerprint", "settings_fingerprint", "config", "tasks"):
            assert b[key] == s[key], key
        be, se = b["episodes"], s["episodes"]
        assert len(be["return"]) == 2 and be["return"][0] == se["return"][0]
        assert {k: v for k, v in be.items() if k != "return"} == \
            {k: v for k, v in se.items() if k != "return"}
        assert [e["kind"] for e in b["events"]] == [e["kind"] for e in s["events"]]
        bp, sp = b["plasticity"], s["plasticity"]
        assert bp["update"] == sp["update"] == [50, 100, 150]  # the monitor's measurements
        assert "weight_norm" in sp["layers"]["critic.q1.0"]
        for layer, metrics in sp["layers"].items():
            for metric, values in metrics.items():
                assert close(bp["layers"][layer][metric][:1], values[:1]), (layer, metric)


@pytest.mark.slow
def test_launcher_batches_seeds_stops_on_sigterm_with_75_and_resumes(tmp_path):
    """``--batch_seeds`` on the CW launcher: one batch for the agent's two seeds, SIGTERM saves
    the batch checkpoint and exits 75, the same command finishes both runs and publishes them;
    --status reports them as a batch's members."""
    outdir = tmp_path / "out"
    args = [sys.executable, str(LAUNCHER), "--cw10", "--agent", "PALR-SAC", "--seeds", "2",
            "--checkpoint_every", "1", "--batch_seeds", "--outdir", str(outdir), *TINY]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = outdir / "batches" / "PALR-SAC_cw10first2_seeds0-1" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no batch checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err.decode()
    status = subprocess.run(args + ["--status"], capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr
    assert [line.split()[2] for line in status.stdout.splitlines()] == ["running", "running"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "1 run(s)" in done.stderr  # one batch job for the agent's two seeds
    for job in jobs(outdir):
        result = json.loads(checkpoint_json(job).read_text())
        assert result["status"] == "finished" and result["batched_with"] == [0, 1]
        assert len(result["episodes"]["return"]) == 6
        assert [e["kind"] for e in result["events"]].count("resumed") == 1
