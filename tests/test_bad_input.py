"""The bad-input battery: every Python entry point, one row per (entry point, bad input).

Each row runs the real entry point in a subprocess (cwd: a fresh folder holding an existing
output folder with an earlier result, a plain file and config files) and asserts exit status 2,
exactly one line ``<prog>: error: ...`` on stderr naming the fix, no traceback, nothing on stdout,
and that nothing under the folder was created, removed or changed.

Placeholders in the arguments: ``{out}`` an existing output folder with an earlier result file,
``{new}`` a path that does not exist (and must not exist afterwards), ``{file}`` a plain file,
``{tmp}`` the case's folder, ``{tiny}`` the tiny DD-PPO config, ``{ro}`` a read-only folder
(a read-only tmpfs; rows using it are skipped where mounting is not permitted).
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
TINY = ROOT / "palr_habitat" / "configs" / "ddppo_palr_fetch_tiny.yaml"

#: entry point -> (command, program name in the error line)
ENTRY_POINTS: Dict[str, Tuple[List[str], str]] = {
    "cartpole": ([str(SRC / "run_experiments.py")], "run_experiments.py"),
    "jbw": ([str(SRC / "run_jbw_experiments.py")], "run_jbw_experiments.py"),
    "cw": ([str(SRC / "run_cw_experiments.py")], "run_cw_experiments.py"),
    "merge": ([str(SRC / "merge_cw_checkpoints.py")], "merge_cw_checkpoints.py"),
    "plot": ([str(SRC / "plot_cw_results.py")], "plot_cw_results.py"),
    "habitat": ([str(ROOT / "palr_habitat" / "src" / "palr_trainer.py")], "palr_trainer.py"),
    "study": (["-m", "palr.experiments.study"], "python -m palr.experiments.study"),
}

EARLIER_RESULT = "an earlier result\n"
#: a rejected input exits in seconds; one wrongly accepted starts a run
TIMEOUT_S = 120
RUN = {"schema": "palr.run/1", "domain": "cw", "agent": "SAC-FixedLR", "agent_idx": 0, "seed": 0,
       "tasks": [{"index": 0, "name": "reach-v3", "start_episode": 0, "end_episode": 2}],
       "episodes": {"score": [0.0, 1.0], "return": [0.0, 1.0]}, "status": "finished"}


@dataclass
class Case:
    """One bad input: ``entry`` run with ``args``; the error line must contain ``expect``."""

    entry: str
    args: List[str]
    expect: str
    files: Dict[str, str] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)
    name: Optional[str] = None
    slow: bool = False  # the process imports torch before it fails

    @property
    def id(self) -> str:
        return f"{self.entry}:{self.name or ' '.join(self.args)}"


def _yaml(text: str) -> str:
    return f"base: {TINY}\n{text}"


def _numeric(entry: str, args: List[str], positive: Sequence[str],
             non_negative: Sequence[str] = ()) -> List[Case]:
    """Every integer flag with 0 (where 0 is invalid), -1, nan, inf and a word: out of range it
    names the flag and the range of palr.checks, not an integer it says so."""
    rows = [Case(entry, args + [flag, value], f"{flag} must be a positive integer, got {value}")
            for flag in positive for value in ("0", "-1")]
    rows += [Case(entry, args + [flag, "-1"], f"{flag} must be a non-negative integer, got -1")
             for flag in non_negative]
    rows += [Case(entry, args + [flag, value], f"expected an integer, got '{value}'")
             for flag in [*positive, *non_negative] for value in ("nan", "inf", "ten")]
    return rows


def _cases() -> List[Case]:
    # --- the DQN launchers: every flag of CartPole; JBW (same launcher code) its own flags ---
    out = ["--outdir", "{out}"]
    cases = _numeric("cartpole", out, ["--seeds", "--jobs", "--checkpoint_every", "--measure_freq",
                                       "--diag_batch_size", "--phase_episodes",
                                       "--cycles"],
                     ["--seed_offset", "--exploration_steps", "--learning_starts"])
    cases += _numeric("jbw", out, ["--episodes", "--episode_steps", "--phase_episodes",
                                   "--phase_steps", "--total_steps", "--reward_rate_window"])
    cases += [
        Case("cartpole", out + ["--agents", "9"], "valid agents: 0=DQN-FixedLR"),
        Case("cartpole", out + ["--agents", "-1"], "valid agents: 0=DQN-FixedLR"),
        Case("cartpole", out + ["--agents", "0", "PALR-SAC"], "valid agents: 0=DQN-FixedLR"),
        Case("cartpole", out + ["--agent_idx", "Magic"], "valid agents: 0=DQN-FixedLR"),
        Case("jbw", out + ["--agent_idx", "12"], "valid agents: 0=DQN-FixedLR"),
        Case("cartpole", out + ["--set", "sigma=inf"],
             "sigma must be a finite number, got inf; change interventions.sigma"),
        Case("jbw", out + ["--set", "sigma=nan"], "sigma must be a finite number, got nan"),
        Case("cartpole", out + ["--set", "max_lr_scale=-inf"],
             "max_lr_scale must be a finite number, got -inf"),
        Case("cartpole", out + ["--set", "rank_beta=nan"],
             "rank_beta must be a finite number, got nan"),
        Case("cartpole", out + ["--set", "perturb_threshold=inf"],
             "perturb_threshold must be a finite number, got inf"),
        Case("cartpole", out + ["--set", "tau=2"],
             "tau must be a finite number in [0.0, 1.0], got 2.0; change "
             "interventions.tau (--set interventions.tau=VALUE or --config"),
        Case("cartpole", out + ["--set", "beta=1"], "beta must be a finite number in [0.0, 0.999999]"),
        Case("cartpole", out + ["--agents", "3", "--set", "l2_coef=-1"],
             "l2_coef must be a finite number > 0"),
        Case("jbw", out + ["--agents", "1", "--set", "sp_noise=inf"],
             "sp_noise must be a finite number, got inf"),
        Case("cartpole", out + ["--set", "measure_freq=0"],
             "measure_freq must be a positive integer, got 0; change "
             "interventions.measure_freq (--measure_freq, --set"),
        Case("cartpole", out + ["--set", "measure_freq=abc"], "expected a value like 1000"),
        Case("cartpole", out + ["--set", "measure_freq=1e3"], "expected a value like 1000"),
        Case("cartpole", out + ["--set", "perturb=maybe"], "expected a value like True"),
        Case("cartpole", out + ["--set", "networks=actor"], "networks: unknown role(s) actor"),
        Case("cartpole", out + ["--set", "networks=policy"],
             "looks for a network with role policy but this agent trains q (value)"),
        Case("cartpole", out + ["--set", "sigma"], "--set expects KEY=VALUE"),
        Case("cartpole", out + ["--set", "=1"], "unknown setting ''"),
        Case("jbw", out + ["--set", "nope=1"], "unknown setting 'nope'"),
        Case("cartpole", out + ["--device", "tpu"], "valid: cpu, cuda, cuda:N"),
        Case("cartpole", ["--outdir", "{file}"], "pass a writable --outdir"),
        Case("cartpole", ["--outdir", "{file}/sub"], "pass a writable --outdir"),
        Case("jbw", ["--outdir", "/proc/palr_no_such_dir/out"], "pass a writable --outdir"),
        Case("cartpole", ["--outdir", "{ro}/out"], "pass a writable --outdir",
             name="read-only outdir"),
        Case("cartpole", ["--outdir", "{new}", "--set", "sigma=-1"],
             "sigma must be a finite number >= 0", name="new outdir not created"),
        Case("cartpole", out, "PALR_TORCH_THREADS", env={"PALR_TORCH_THREADS": "abc"},
             name="PALR_TORCH_THREADS=abc"),
        Case("jbw", out, "PALR_TORCH_THREADS", env={"PALR_TORCH_THREADS": "0"},
             name="PALR_TORCH_THREADS=0"),
    ]
    cases += [
        Case("jbw", ["--outdir", "{out}", "--score_threshold", "nan"],
             "--score_threshold must be a finite number, got nan; change env.score_threshold"),
        Case("jbw", ["--outdir", "{out}", "--score_threshold", "inf"],
             "--score_threshold must be a finite number, got inf"),
        Case("jbw", ["--outdir", "{out}", "--score_threshold=-inf"],
             "--score_threshold must be a finite number, got -inf"),
        Case("jbw", ["--outdir", "{out}", "--score_threshold", "high"],
             "argument --score_threshold: expected a number, got 'high'"),
        Case("jbw", ["--outdir", "{out}", "--world", "jbw-v9"],
             "--world must be one of jbw-v1, jbw-v0, jbw-paper, got 'jbw-v9'; change env.world"),
        Case("jbw", ["--outdir", "{out}", "--backend", "jbw"], "use --backend builtin"),
        Case("jbw", ["--outdir", "{out}", "--action_set", "wasd"], "--action_set must be one of"),
        Case("jbw", out + ["--phase_steps", "150"],
             "--phase_steps 150 is not a multiple of --episode_steps 200"),
        Case("jbw", out + ["--world", "jbw-paper", "--episode_steps", "300"],
             "--phase_steps 100000 is not a multiple of --episode_steps 300"),
        Case("jbw", out + ["--reward_rate_window", "300"],
             "--reward_rate_window 300 is not a multiple of --episode_steps 200"),
        Case("jbw", out + ["--episodes", "4", "--phase_steps", "200"], "give one pair"),
        Case("jbw", out + ["--world", "jbw-paper", "--phase_episodes", "5", "--total_steps", "9"],
             "give one pair"),
    ]

    # --- Continual World (SAC) ---
    cases += _numeric("cw", out, ["--num_tasks", "--episodes_per_task", "--max_episode_steps",
                                  "--batch_size", "--update_every", "--seeds", "--jobs",
                                  "--checkpoint_every", "--measure_freq", "--diag_batch_size"],
                      ["--start_steps", "--update_after", "--eval_episodes", "--eval_every",
                       "--seed_offset"])
    cases += [
        Case("cw", out + ["--num_tasks", "21"], "num_tasks must be in 1..20"),
        Case("cw", ["--cw10", "--seeds", "1", "--outdir", "{new}"], "metaworld is not importable",
             files={"metaworld.py": "raise ImportError('No module named metaworld')\n"},
             env={"PYTHONPATH": "{tmp}"}, name="metaworld not installed", slow=True),
        Case("cw", out + ["--cw_order", "mt20"], "invalid choice"),
        Case("cw", out + ["--network", "tanh"],
             "--network must be one of relu, cw, got 'tanh'; change sac.network (--network, --set"),
        Case("cw", out + ["--cw10", "--cw20"], "not allowed with argument"),
        Case("cw", out + ["--agent", "Nope"], "valid agents: 0=SAC-FixedLR"),
        Case("cw", out + ["--agent_idx", "8"], "valid agents: 0=SAC-FixedLR"),
        Case("cw", out + ["--agents", "4", "PALR-DQN"], "valid agents: 0=SAC-FixedLR"),
        Case("cw", out + ["--agent_idx", "4", "--ckpt_suffix", "/abs/path"],
             "use letters, digits"),
        Case("cw", out + ["--agent_idx", "4", "--ckpt_suffix", "_../../x"], "use letters, digits"),
        Case("cw", out + ["--agent_idx", "4", "--ckpt_suffix", "_.."], "use letters, digits"),
        Case("cw", out + ["--agent_idx", "4", "--ckpt_suffix", ""], "use letters, digits",
             name="--ckpt_suffix ''"),
        Case("cw", out + ["--agent_idx", "4", "--ckpt_suffix", "_*"], "use letters, digits"),
        Case("cw", out + ["--agents", "0", "4", "--ckpt_suffix", "_x"], "names ONE run"),
        Case("cw", out + ["--set", "srank_delta=1"], "srank_delta must be a finite number in"),
        Case("cw", out + ["--set", "sigma=inf"], "sigma must be a finite number, got inf"),
        Case("cw", out + ["--agents", "3", "--set", "l2_roles=encoder"],
             "l2reg looks for a network with role encoder"),
        Case("cw", out + ["--device", "cuda:x"], "CUDA is not available here", slow=True),
        Case("cw", ["--outdir", "{file}"], "pass a writable --outdir"),
        Case("cw", ["--outdir", "{new}", "--agent_idx", "4", "--ckpt_suffix", "a/b"],
             "use letters, digits", name="new outdir not created"),
        Case("cw", out, "PALR_TORCH_THREADS", env={"PALR_TORCH_THREADS": "-2"},
             name="PALR_TORCH_THREADS=-2"),
    ]

    # --- merge_cw_checkpoints.py ---
    good = json.dumps(RUN)
    cases += [
        Case("merge", ["--results_dir", "{new}"], "run run_cw_experiments.py"),
        Case("merge", ["--results_dir", "{file}"], "run run_cw_experiments.py"),
        Case("merge", ["--results_dir", "{out}", "--suffix", "../../x"], "use letters, digits"),
        Case("merge", ["--results_dir", "{out}", "--suffix", "cw*"], "use letters, digits"),
        Case("merge", ["--results_dir", "{out}", "--suffix", ""], "use letters, digits",
             name="--suffix ''"),
        Case("merge", ["--results_dir", "{out}"], "not readable JSON",
             files={"out/cw_checkpoint_cw20_seed0_agent0.json": '{"schema": "palr.run/1", '},
             name="truncated checkpoint"),
        Case("merge", ["--results_dir", "{out}"], "a run must be a JSON object",
             files={"out/cw_checkpoint_cw20_seed0_agent0.json": "[1, 2]"}, name="list checkpoint"),
        Case("merge", ["--results_dir", "{out}"], "expected 'palr.run/1'",
             files={"out/cw_checkpoint_cw20_seed0_agent0.json": '{"a": 1}'},
             name="not a run"),
        Case("merge", ["--results_dir", "{out}"], "episodes: expected a mapping",
             files={"out/cw_checkpoint_cw20_seed0_agent0.json": json.dumps(dict(RUN, episodes=3))},
             name="episodes not a mapping"),
        Case("merge", ["--results_dir", "{out}"], "tasks[0].end_episode: expected an integer",
             files={"out/cw_checkpoint_cw20_seed0_agent0.json": json.dumps(
                 dict(RUN, tasks=[{"index": 0, "name": "x", "start_episode": 0}]))},
             name="task without end"),
        Case("merge", ["--results_dir", "{out}"], "two runs for agent",
             files={"out/cw_checkpoint_cw20_seed0_agent0.json": good,
                    "out/cw_checkpoint_cw20_seed0_agent0b.json": good}, name="duplicate runs"),
    ]

    # --- plot_cw_results.py ---
    plot = ["--results_dir", "{out}", "--plots_dir", "{new}"]
    merged = "out/cw20_raw_results.json"
    cases += [
        Case("plot", ["--results_dir", "{new}"], "run merge_cw_checkpoints.py"),
        Case("plot", plot, "not readable JSON", files={merged: '{"schema": "palr.sweep/1", "ag'},
             name="truncated sweep"),
        Case("plot", plot, "expected 'palr.sweep/1'", files={merged: good}, name="a run, not a sweep"),
        Case("plot", plot, "a sweep must be a JSON object", files={merged: "[]"}, name="a list"),
        Case("plot", plot, "missing key(s)", files={merged: '{"schema": "palr.sweep/1"}'},
             name="sweep without runs"),
        Case("plot", plot, "runs[0]", files={merged: json.dumps(
            {"schema": "palr.sweep/1", "agents": ["SAC-FixedLR"], "runs": [{"schema": 1}],
             "per_run": [], "summary": {}})}, name="sweep with a broken run"),
        Case("plot", ["--results_dir", "{out}", "--plots_dir", "{file}"], "pass a writable --plots_dir",
             files={merged: "{}"}, name="plots_dir is a file"),
        Case("plot", ["--results_dir", "{out}", "--suffix", "a/b"], "use letters, digits"),
    ]

    # --- palr_trainer.py (DD-PPO) ---
    hab = ["--config", "{tiny}", "--outdir", "{new}"]
    cases += [
        Case("habitat", hab + ["--agent", "9"], "valid agents: 0=PPO-FixedLR"),
        Case("habitat", hab + ["--agent", "-1"], "valid agents: 0=PPO-FixedLR"),
        Case("habitat", hab + ["--agent", "PALR-SAC"], "valid agents: 0=PPO-FixedLR"),
        Case("habitat", ["--config", "{tiny}", "--outdir", "{file}", "--agent", "4"],
             "pass a writable --outdir", name="--agent 4 accepted (then the outdir fails)"),
        Case("habitat", hab + ["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        Case("habitat", hab + ["--seed", "nan"], "argument --seed: expected an integer, got 'nan'"),
        Case("habitat", ["--config", "{tmp}/missing.yaml", "--outdir", "{new}"], "not found"),
        Case("habitat", ["--config", "{tmp}/empty.yaml", "--outdir", "{new}"], "is empty",
             files={"empty.yaml": ""}, name="empty YAML"),
        Case("habitat", ["--config", "{tmp}/empty.yaml", "--outdir", "{new}"], "is empty",
             files={"empty.yaml": "# only a comment\n"}, name="comment-only YAML"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"], "malformed YAML",
             files={"c.yaml": "ppo: [\n"}, name="malformed YAML"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"], "ppo.num_stepz: unknown key",
             files={"c.yaml": _yaml("ppo:\n  num_stepz: 3\n")}, name="unknown YAML key"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"], "expected a mapping",
             files={"c.yaml": "- a\n- b\n"}, name="YAML list"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"],
             "env.max_depth must be a finite number, got inf",
             files={"c.yaml": _yaml("env:\n  max_depth: .inf\n")},
             name="YAML inf"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"],
             "agent.interventions.sigma must be a finite number, got nan",
             files={"c.yaml": _yaml("agent:\n  interventions: {sigma: .nan}\n")}, name="YAML intervention nan"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"],
             "curriculum.phases[0].standin_task: unknown Meta-World v3 task",
             files={"c.yaml": _yaml("curriculum:\n  phases:\n    - {name: a, standin_task: fly-v3}\n")},
             name="unknown stand-in task"),
        Case("habitat", ["--config", "{tmp}/c.yaml", "--outdir", "{new}"], "env.camera: 'nose' is not valid",
             files={"c.yaml": _yaml("env:\n  camera: nose\n")}, name="unknown camera"),
        Case("habitat", hab + ["--set", "ppo.lr=.inf"], "ppo.lr must be a finite number, got inf"),
        Case("habitat", hab + ["--set", "policy.log_std_init=.nan"],
             "policy.log_std_init must be a finite number, got nan"),
        Case("habitat", hab + ["--set", "ppo.gamma=1.5"],
             "ppo.gamma must be a finite number in [0.0, 1.0], got 1.5"),
        Case("habitat", hab + ["--set", "agent.interventions.sigma=-1"], "sigma must be a finite number >= 0"),
        Case("habitat", hab + ["--set", "agent.interventions.max_lr_scale=.inf"],
             "agent.interventions.max_lr_scale must be a finite number, got inf"),
        Case("habitat", hab + ["--set", "agent.interventions.nope=1"], "unknown intervention setting"),
        Case("habitat", hab + ["--set", "agent.interventions.networks=[q]"],
             "networks: unknown role(s) q"),
        Case("habitat", hab + ["--set", "ppo.num_steps"], "expects SECTION.KEY=VALUE"),
        Case("habitat", hab + ["--set", "run.device=cuda"], "CUDA is not available here"),
        Case("habitat", hab + ["--set", "env.backend=habitat"], "habitat_sim is not importable"),
        Case("habitat", hab + ["--set", "run.torch_threads=0"],
             "run.torch_threads must be a positive integer, got 0"),
        Case("habitat", hab, "RANK='abc' is not an integer", env={"RANK": "abc", "WORLD_SIZE": "1"},
             name="RANK=abc"),
    ]

    # --- python -m palr.experiments.study ---
    cases += _numeric("study", ["--workdir", "{new}"], ["--jobs"])
    cases += [
        Case("study", ["--part", "atari", "--workdir", "{new}"], "invalid choice"),
        Case("study", ["--workdir", "{file}"], "pass a writable --workdir"),
        Case("study", ["--workdir", "{new}", "--publish_dir", "{file}/sub"],
             "pass a writable --publish_dir", name="workdir not created when publish_dir fails"),
        Case("study", ["--workdir", "{new}", "--publish_dir", "{ro}"],
             "pass a writable --publish_dir", name="read-only publish_dir"),
        Case("study", ["--workdir", "{new}"], "PALR_TORCH_THREADS", env={"PALR_TORCH_THREADS": "x"},
             name="PALR_TORCH_THREADS=x"),
    ]
    return cases


CASES = _cases()


def _snapshot(root: pathlib.Path) -> Dict[str, Optional[bytes]]:
    """Every path under ``root`` with its bytes (None for folders)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def read_only_dir(tmp_path_factory):
    """A read-only tmpfs (unwritable even for root), or None where mounting is not permitted."""
    mount = tmp_path_factory.mktemp("ro")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        yield None
        return
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def _param(case: Case):
    """A row; those importing torch (2 CPU-seconds), e.g. every DD-PPO trainer row (it imports
    torch before it parses), are marked slow."""
    marks = [pytest.mark.slow] if case.slow or case.entry == "habitat" else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_one_line_exit_2_nothing_touched(case: Case, tmp_path, read_only_dir):
    if any("{ro}" in a for a in case.args) and read_only_dir is None:
        pytest.skip("mounting a read-only tmpfs is not permitted here (needs root)")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "RESULTS_SUMMARY.txt").write_text(EARLIER_RESULT)
    (tmp_path / "file").write_text("a plain file\n")
    for rel, text in case.files.items():
        (tmp_path / rel).write_text(text)
    subst = {"out": tmp_path / "out", "new": tmp_path / "new", "file": tmp_path / "file",
             "tmp": tmp_path, "tiny": TINY, "ro": read_only_dir}
    args = [a.format(**subst) for a in case.args]
    command, prog = ENTRY_POINTS[case.entry]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PALR_TORCH_THREADS", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update({key: value.format(**subst) for key, value in case.env.items()})
    before = _snapshot(tmp_path)
    returncode, stdout, stderr = _run([sys.executable, *command, *args], tmp_path, env)
    lines = stderr.splitlines()
    assert "Traceback" not in stderr + stdout, stderr
    assert returncode == 2, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert case.expect in lines[0], lines[0]
    assert stdout == ""
    assert _snapshot(tmp_path) == before


def _run(argv: List[str], cwd: pathlib.Path, env: Dict[str, str]) -> Tuple[int, str, str]:
    """Run ``argv`` in its own process group; an input that is wrongly accepted starts a run
    (with sweep workers): past ``TIMEOUT_S`` the whole group is killed and the row fails."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\n(still running after {TIMEOUT_S} s: the input was accepted)"
    return proc.returncode, stdout, stderr
