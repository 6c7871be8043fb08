"""Compare tiny runs of every domain between a git commit and the working tree.

A refactor that must not change behaviour (results, resume, published numbers, run identities)
is checked here: each tiny run (CartPole FixedLR and PALR, permuted CartPole, Jelly Bean World,
Continual World silent and cw-paper, FixedLR-SAC and PALR-SAC) is made once with the code of
``--base`` (exported with ``git archive`` into a temporary directory; no worktree is touched)
and once with the working tree, and the result JSONs are compared field by field: episodes
(returns, scores, lengths), plasticity measurements (dead fractions, ranks, LR scales, reinit
counts), evaluations, task windows and the run identity (fingerprint). With ``--cross_resume``
the base run is also killed at its first checkpoint and finished by the working tree's code,
which must load the base's checkpoint and end with the base's numbers.

    ./run.sh python tools/behaviour_check.py --base d1d41b6
    ./run.sh python tools/behaviour_check.py --base d1d41b6 --runs cartpole-palr cw-palr --cross_resume
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = pathlib.Path("palr_plasticity_aware_lr") / "src"
COMPARED = ("episodes", "plasticity", "evaluations", "tasks", "identity", "fingerprint")
QUIET = ["--jobs", "1", "--no_progress", "--no_tensorboard", "--seeds", "1"]
DQN_TINY = ["--learning_starts", "100", "--exploration_steps", "500", "--measure_freq", "50",
            "--diag_batch_size", "128", "--probe_steps", "20", "--checkpoint_every", "2"]
CW_TINY = ["--cw10", "--num_tasks", "2", "--episodes_per_task", "2", "--max_episode_steps", "50",
           "--start_steps", "30", "--update_after", "40", "--update_every", "10",
           "--batch_size", "32", "--eval_episodes", "1", "--eval_every", "50",
           "--measure_freq", "20", "--diag_batch_size", "64", "--checkpoint_every", "1"]

#: name -> (launcher under SRC, arguments, result file under the output directory)
RUNS: Dict[str, Tuple[str, List[str], str]] = {
    "cartpole-fixedlr": ("run_experiments.py", ["--agents", "0", "--phase_episodes", "5",
                                                *DQN_TINY], "runs/DQN-FixedLR_seed0/result.json"),
    "cartpole-palr": ("run_experiments.py", ["--agents", "4", "--phase_episodes", "5", *DQN_TINY],
                      "runs/PALR-DQN_seed0/result.json"),
    "permuted-palr": ("run_permuted_cartpole.py", ["--agents", "4", "--phase_steps", "300",
                                                   "--num_phases", "3", *DQN_TINY],
                      "runs/PALR-DQN_seed0/result.json"),
    "jbw-palr": ("run_jbw_experiments.py", ["--agents", "4", "--episodes", "6",
                                            "--phase_episodes", "2", "--episode_steps", "100",
                                            "--backend", "builtin", *DQN_TINY],
                 "runs/PALR-DQN_seed0/result.json"),
    "cw-fixedlr": ("run_cw_experiments.py", ["--agent_idx", "0", *CW_TINY],
                   "cw_checkpoint_cw10first2_seed0_agent0.json"),
    "cw-palr": ("run_cw_experiments.py", ["--agent_idx", "4", *CW_TINY],
                "cw_checkpoint_cw10first2_seed0_agent4.json"),
    "cw-paper-palr": ("run_cw_experiments.py", ["--preset", "cw-paper", "--agent_idx", "4",
                                                *CW_TINY],
                      "cw_checkpoint_cw10first2_seed0_agent4.json"),
}


def export_commit(commit: str, into: pathlib.Path) -> pathlib.Path:
    """The tree of ``commit`` as plain files under ``into`` (``git archive``; no worktree)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _command(tree: pathlib.Path, name: str, out: pathlib.Path) -> Tuple[List[str], Dict[str, str]]:
    script, args, _ = RUNS[name]
    env = dict(os.environ, PYTHONPATH=str(tree / SRC))  # the tree's ``palr``, not the installed one
    return [sys.executable, str(tree / SRC / script), *QUIET, *args, "--outdir", str(out)], env


def run(tree: pathlib.Path, name: str, out: pathlib.Path) -> float:
    cmd, env = _command(tree, name, out)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} ({tree}): exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def kill_at_first_checkpoint(tree: pathlib.Path, name: str, out: pathlib.Path) -> bool:
    """Start the run and SIGKILL it once a model checkpoint exists; False if it finished first."""
    cmd, env = _command(tree, name, out)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while proc.poll() is None:
        if any(out.glob("**/checkpoint.pt")):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    return False


def comparable(path: pathlib.Path) -> Dict[str, Any]:
    data = json.loads(path.read_text())
    return {key: data.get(key) for key in COMPARED}


def differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    return [key for key in COMPARED if a.get(key) != b.get(key)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="commit whose behaviour must be kept")
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    parser.add_argument("--cross_resume", action="store_true",
                        help="also kill the base run at its first checkpoint and finish it with "
                             "the working tree")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="palr-behaviour-"))
    failed = 0
    try:
        base = export_commit(args.base, workdir / "base")
        print(f"{'run':16} {'base s':>7} {'tree s':>7}  same metrics+identity  "
              f"{'base ckpt resumed by tree' if args.cross_resume else ''}", flush=True)
        for name in args.runs:
            result = RUNS[name][2]
            base_s = run(base, name, workdir / name / "base")
            tree_s = run(ROOT, name, workdir / name / "tree")
            expected = comparable(workdir / name / "base" / result)
            diff = differences(expected, comparable(workdir / name / "tree" / result))
            line = f"{name:16} {base_s:7.1f} {tree_s:7.1f}  {'yes' if not diff else diff}"
            failed += bool(diff)
            if args.cross_resume:
                out = workdir / name / "cross"
                killed = kill_at_first_checkpoint(base, name, out)
                run(ROOT, name, out)
                cross = differences(expected, comparable(out / result))
                line += f"  {'killed, ' if killed else 'not killed, '}"
                line += "identical" if not cross else f"differs in {cross}"
                failed += bool(cross)
            print(line, flush=True)
    finally:
        if args.keep:
            print(f"run directories kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
