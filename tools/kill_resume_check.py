"""Kill runs with SIGKILL at random instants, resume them, and compare with an uninterrupted run.

For each domain a small run is made once without interruption; then ``--kills`` copies are
started, killed (SIGKILL to the whole process group) at an instant drawn uniformly in
[10%, 90%] of the uninterrupted run's wall time, started again with the same command until
they finish (a copy may be killed several times with ``--kills_per_run``), and their results are
compared with the uninterrupted one field by field (episodes, plasticity measurements,
evaluations, task windows). On CPU a resumed run must be identical; the table says how many were.

    ./run.sh python tools/kill_resume_check.py                       # every domain, 5 kills each
    ./run.sh python tools/kill_resume_check.py --domains cartpole cw --kills 10
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
COMPARED = ("episodes", "plasticity", "evaluations", "tasks")


@dataclass(frozen=True)
class Domain:
    """A small run of one domain: its command (``{out}`` = the output directory) and the result
    file it ends with."""

    name: str
    command: Sequence[str]
    result: str


DOMAINS = {
    "cartpole": Domain("cartpole", [
        sys.executable, str(SRC / "run_experiments.py"), "--agents", "4", "--seeds", "1",
        "--phase_episodes", "15", "--learning_starts", "200", "--exploration_steps", "1500",
        "--measure_freq", "100", "--diag_batch_size", "256", "--checkpoint_every", "3",
        "--jobs", "1", "--no_progress", "--no_tensorboard", "--outdir", "{out}"],
        "runs/PALR-DQN_seed0/result.json"),
    "jbw": Domain("jbw", [
        sys.executable, str(SRC / "run_jbw_experiments.py"), "--agents", "4", "--seeds", "1",
        "--episodes", "24", "--phase_episodes", "8", "--episode_steps", "100",
        "--learning_starts", "300", "--measure_freq", "100", "--diag_batch_size", "256",
        "--checkpoint_every", "3", "--jobs", "1", "--no_progress", "--no_tensorboard",
        "--backend", "builtin", "--outdir", "{out}"],
        "runs/PALR-DQN_seed0/result.json"),
    "cw": Domain("cw", [
        sys.executable, str(SRC / "run_cw_experiments.py"), "--cw10", "--num_tasks", "2",
        "--episodes_per_task", "3", "--max_episode_steps", "100", "--start_steps", "100",
        "--update_after", "100", "--eval_episodes", "1", "--measure_freq", "50",
        "--diag_batch_size", "128", "--batch_size", "32", "--agent_idx", "4",
        "--checkpoint_every", "1", "--no_progress", "--no_tensorboard", "--outdir", "{out}"],
        "cw_checkpoint_*_seed0_agent4.json"),
    "habitat": Domain("habitat", [
        sys.executable, str(ROOT / "palr_habitat" / "src" / "palr_trainer.py"),
        "--config", str(ROOT / "palr_habitat" / "configs" / "ddppo_palr_fetch_tiny.yaml"),
        "--seed", "0", "--outdir", "{out}", "--set", "run.max_iterations=8",
        "--set", "run.checkpoint_interval=1", "--set", "run.tensorboard=false"],
        "result.json"),
}


def _command(domain: Domain, out: pathlib.Path) -> List[str]:
    return [part.replace("{out}", str(out)) for part in domain.command]


def _run(domain: Domain, out: pathlib.Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(_command(domain, out), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{domain.name}: the run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def _kill_after(domain: Domain, out: pathlib.Path, seconds: float) -> bool:
    """Start the run, SIGKILL its process group after ``seconds``; False if it finished first."""
    proc = subprocess.Popen(_command(domain, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def _comparable(path: pathlib.Path) -> Dict[str, Any]:
    """The compared keys of a run's result; ``path`` may be a glob (the CW file is named by the
    run's sequence label)."""
    matches = sorted(path.parent.glob(path.name))
    if len(matches) != 1:
        raise SystemExit(f"kill_resume_check: expected one {path}, found {len(matches)}")
    data = json.loads(matches[0].read_text())
    return {key: data.get(key) for key in COMPARED}


def check_domain(domain: Domain, kills: int, kills_per_run: int, rng: Any,
                 workdir: pathlib.Path) -> Dict[str, Any]:
    reference = workdir / domain.name / "reference"
    duration = _run(domain, reference)
    expected = _comparable(reference / domain.result)
    rows = []
    for k in range(kills):
        out = workdir / domain.name / f"killed{k}"
        instants = []
        for _ in range(kills_per_run):
            instant = float(rng.uniform(0.1, 0.9)) * duration
            if _kill_after(domain, out, instant):
                instants.append(round(instant, 2))
        _run(domain, out)
        same = _comparable(out / domain.result) == expected
        rows.append({"kill_seconds": instants, "identical": same})
    return {"domain": domain.name, "uninterrupted_seconds": round(duration, 1),
            "runs": rows, "killed": sum(bool(r["kill_seconds"]) for r in rows),
            "identical": sum(r["identical"] for r in rows)}


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", nargs="+", choices=sorted(DOMAINS), default=sorted(DOMAINS))
    parser.add_argument("--kills", type=int, default=5, help="killed runs per domain")
    parser.add_argument("--kills_per_run", type=int, default=1,
                        help="SIGKILLs each killed run receives before it may finish")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.kills_per_run < 1:
        parser.error("--kills and --kills_per_run must be positive")
    import numpy as np
    rng = np.random.default_rng(args.seed)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="palr-kill-resume-"))
    try:
        print(f"{'domain':10} {'uninterrupted s':>15} {'runs killed':>11} {'identical':>9}  "
              "kill instants (s)")
        for name in args.domains:
            report = check_domain(DOMAINS[name], args.kills, args.kills_per_run, rng, workdir)
            instants = "; ".join(",".join(f"{t:g}" for t in r["kill_seconds"]) or "-"
                                 for r in report["runs"])
            print(f"{name:10} {report['uninterrupted_seconds']:>15} {report['killed']:>11} "
                  f"{report['identical']:>5}/{len(report['runs'])}  {instants}", flush=True)
    finally:
        if args.keep:
            print(f"run directories kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
