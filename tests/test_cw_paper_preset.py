"""Continual World through run_cw_experiments.py: sequence labels on every run, file and merge,
the cw-paper preset's wiring (Wolczyk et al. 2021; awarelab/continual_world defaults), every new
setting in the run identity, the step-based evaluation protocol, and a seconds-long run of the
preset on real Meta-World with its reference runs."""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from palr.experiments.continual_world import build_parser, make_jobs
from palr.experiments.run_identity import differing_keys
from processes import kill_after_episodes

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
RUN = [sys.executable, str(SRC / "run_cw_experiments.py")]
MERGE = [sys.executable, str(SRC / "merge_cw_checkpoints.py")]
#: the preset at a seconds-long size: 2 tasks x 2 episodes of 20 steps
SMOKE = ["--preset", "cw-paper", "--num_tasks", "2", "--episodes_per_task", "2",
         "--max_episode_steps", "20", "--start_steps", "10", "--update_after", "30",
         "--update_every", "10", "--eval_every", "20", "--eval_episodes", "1",
         "--batch_size", "16", "--measure_freq", "20", "--diag_batch_size", "16",
         "--no_progress", "--no_tensorboard"]


def job(*argv: str):
    (only,) = make_jobs(build_parser().parse_args([*argv, "--agent_idx", "4"]))
    return only


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def run(*argv, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*argv], capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize("flags, label", [
    ([], "cw10"), (["--cw20"], "cw20"), (["--cw10"], "cw10"), (["--sequence", "cw20"], "cw20"),
    (["--cw20", "--cw_order", "mt10"], "mt10x2"), (["--sequence", "mt10x2"], "mt10x2"),
    (["--sequence", "mt10"], "mt10"), (["--cw20", "--num_tasks", "3"], "cw20first3"),
    (["--cw10", "--num_tasks", "15"], "cw20first15"),
])
def test_every_run_is_named_for_the_sequence_it_trains(flags, label):
    run_job = job(*flags, "--outdir", "/tmp/unused")
    assert run_job.options["label"] == label
    assert run_job.published.endswith(f"cw_checkpoint_{label}_seed0_agent4.json")
    assert pathlib.Path(run_job.run_dir).name == f"{label}_seed0_agent4"


def test_the_original_command_names_cw20_and_runs_continual_worlds_cw20(tmp_path):
    proc = run(*RUN, "--cw20", "--agent_idx", "4", "--seeds", "1", "--seed_offset", "0",
               "--outdir", str(tmp_path), "--status")
    assert proc.stdout.split() == ["0", "4", "new", str(tmp_path / "cw_checkpoint_cw20_seed0_agent4.json")]
    label = run(*RUN, "--cw20", "--cw_order", "mt10", "--num_tasks", "4", "--label")
    assert label.stdout.strip() == "mt10x2first4"
    from palr.envs.continual_world import CW10_SEQUENCE, task_sequence
    cw20 = job("--cw20")
    assert task_sequence(cw20.options["sequence"], cw20.options["num_tasks"]) == list(CW10_SEQUENCE) * 2


def test_a_suffix_naming_another_sequence_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    proc = run(*RUN, "--sequence", "mt10x2", "--agent_idx", "4", "--ckpt_suffix",
               "_cw20_seed0_agent4", "--outdir", str(out))
    one_line_error(proc, "--ckpt_suffix _cw20_seed0_agent4 names sequence cw20",
                   "this run trains mt10x2", "_mt10x2_")
    assert not out.exists()
    one_line_error(run(*RUN, "--sequence", "mt10", "--cw_order", "mt10", "--label"),
                   "--cw_order only goes with --cw10/--cw20")
    # the original launcher's suffix on the sequence it names, or any non-label suffix, is fine
    ok = run(*RUN, "--cw20", "--agent_idx", "4", "--ckpt_suffix", "_cw20_seed0_agent4",
             "--outdir", str(out), "--status")
    assert ok.returncode == 0 and "cw_checkpoint_cw20_seed0_agent4.json" in ok.stdout
    custom = run(*RUN, "--cw20", "--agent_idx", "4", "--ckpt_suffix", "_ablation1",
                 "--outdir", str(out), "--status")
    assert custom.returncode == 0, custom.stderr


def _labelled_run(sequence=None, identity_sequence=None):
    run_json = {"schema": "palr.run/1", "domain": "cw", "agent": "SAC-FixedLR", "agent_idx": 0,
                "seed": 0, "tasks": [{"index": 0, "name": "hammer-v3", "start_episode": 0,
                                      "end_episode": 2}],
                "episodes": {"score": [0.0, 1.0], "return": [0.0, 1.0]}, "status": "finished",
                "evaluations": [{"env_step": 400, "after_task": 0, "task_scores": [0.5]}]}
    if sequence is not None:
        run_json["sequence"] = sequence
    if identity_sequence is not None:
        run_json["identity"] = {"domain": "cw", "seed": 0, "sequence": identity_sequence}
    return run_json


@pytest.mark.parametrize("held", [
    _labelled_run(sequence="mt10x2"),
    _labelled_run(identity_sequence={"order": "mt10", "num_tasks": 20}),  # the original "cw20"
    _labelled_run(identity_sequence={"name": "cw10", "num_tasks": 3}),
])
def test_merging_a_file_of_another_sequence_under_a_label_is_refused(tmp_path, held):
    (tmp_path / "cw_checkpoint_cw20_seed0_agent0.json").write_text(json.dumps(held))
    proc = run(*MERGE, "--suffix", "cw20", "--results_dir", str(tmp_path))
    one_line_error(proc, "cw_checkpoint_cw20_seed0_agent0.json holds a", "run, not cw20")
    assert not (tmp_path / "cw20_raw_results.json").exists()
    # a prefix is not picked up by the whole sequence's merge
    other = tmp_path / "other"
    other.mkdir()
    (other / "cw_checkpoint_cw20first3_seed0_agent0.json").write_text(json.dumps(
        _labelled_run(sequence="cw20first3")))
    one_line_error(run(*MERGE, "--suffix", "cw20", "--results_dir", str(other)),
                   "no cw_checkpoint_cw20_*.json")
    merged = run(*MERGE, "--suffix", "cw20first3", "--results_dir", str(other))
    assert merged.returncode == 0, merged.stderr
    assert json.loads((other / "cw20first3_raw_results.json").read_text())["sequence"] == \
        "cw20first3"


# ----------------------------------------------------------------------------- the preset


def test_cw_paper_preset_is_continual_worlds_published_setup():
    paper = job("--preset", "cw-paper", "--cw20")
    identity = paper.identity
    assert identity["sequence"] == {"name": "cw20", "num_tasks": 20}
    assert identity["env"] == {"task_id": True, "reward_version": "v1"}
    assert identity["episodes_per_task"] * identity["max_episode_steps"] == 1_000_000
    assert identity["schedule"] == {"start_steps": 10_000, "update_after": 1000,
                                    "update_every": 50, "per_task": True}
    assert identity["evaluation"] == {"episodes": 10, "deterministic_episodes": 1,
                                      "every_steps": 20_000}
    sac = identity["sac"]
    assert (sac["network"], sac["hidden_sizes"], sac["leaky_slope"]) == ("cw", [256] * 4, 0.2)
    assert (sac["batch_size"], sac["lr"], sac["gamma"], sac["polyak"], sac["buffer_size"]) == \
        (128, 1e-3, 0.99, 0.995, 1_000_000)
    assert sac["multi_head"] and sac["hide_task_id"] and sac["per_task_alpha"]
    assert sac["reset_replay_on_task"] and sac["reset_optimizer_on_task"]
    assert sac["init_alpha"] == pytest.approx(math.e)                     # log alpha = 1
    assert sac["target_entropy"] == pytest.approx(4 * math.log(0.089 * math.sqrt(2 * math.pi * math.e)))
    silent = job("--cw20").identity                                       # the default stays
    assert silent["env"] == {"task_id": False, "reward_version": "v2"}
    assert silent["schedule"]["per_task"] is False and silent["episodes_per_task"] == 200
    assert not any(silent["sac"][k] for k in ("multi_head", "per_task_alpha",
                                              "reset_replay_on_task", "reset_optimizer_on_task"))
    assert silent["sac"]["network"] == "relu" and silent["sac"]["target_entropy"] is None
    # flags override the preset's values; the task-aware switches stay the preset's
    small = job("--preset", "cw-paper", "--episodes_per_task", "3", "--network", "relu").identity
    assert small["episodes_per_task"] == 3 and small["sac"]["network"] == "relu"
    assert small["sac"]["multi_head"] and small["env"]["task_id"]


@pytest.mark.parametrize("flags, key", [
    (["--preset", "cw-paper"], "env.task_id"),
    (["--reward_version", "v1"], "env.reward_version"),
    (["--eval_every", "40000"], "evaluation.every_steps"),
    (["--eval_deterministic_episodes", "0"], "evaluation.deterministic_episodes"),
    (["--eval_episodes", "5"], "evaluation.episodes"),
    (["--sequence", "mt10"], "sequence.name"),
    (["--num_tasks", "3"], "sequence.num_tasks"),
    (["--network", "cw"], "sac.network"),
    (["--start_steps", "5"], "schedule.start_steps"),
])
def test_every_setting_reaches_the_run_identity(flags, key):
    base, changed = job().identity, job(*flags).identity
    assert key in differing_keys(base, changed)


@pytest.mark.slow
@pytest.mark.metaworld
def test_a_changed_setting_is_refused_on_an_existing_run(tmp_path):
    pytest.importorskip("metaworld")
    tiny = [*RUN, "--num_tasks", "1", "--episodes_per_task", "1", "--max_episode_steps", "20",
            "--start_steps", "10", "--update_after", "10", "--update_every", "10",
            "--eval_episodes", "1", "--batch_size", "16", "--agent_idx", "0", "--no_progress",
            "--no_tensorboard", "--outdir", str(tmp_path)]
    first = run(*tiny)
    assert first.returncode == 0, first.stderr
    for extra, fragment in ((["--preset", "cw-paper", "--network", "relu"], "env.task_id False -> True"),
                            (["--reward_version", "v1"], "env.reward_version 'v2' -> 'v1'"),
                            (["--eval_every", "40"], "evaluation.every_steps 20000 -> 40"),
                            (["--eval_deterministic_episodes", "0"],
                             "evaluation.deterministic_episodes 1 -> 0")):
        one_line_error(run(*tiny, *extra, "--status"), "cw_checkpoint_cw10first1_seed0_agent0.json",
                       fragment)


def test_the_schedule_restarts_at_every_task_with_the_preset():
    """cw-paper: uniform-random actions for the first start_steps steps and the first update
    update_after steps into EVERY task; silent: counted once from the start of the run."""
    from palr.agents.sac import SACAgent, SACConfig
    from palr.experiments.schedule import TrainingSchedule

    def learner(per_task):
        sac = SACAgent(5, 2, SACConfig(hidden_sizes=(16,), batch_size=8, buffer_size=500,
                                       reset_replay_on_task=per_task, lr=1e-12))
        with torch.no_grad():   # the policy's action stays tanh(0.9) (lr ~ 0): random ones differ
            sac.actor.net[-1].weight.zero_()
            sac.actor.net[-1].bias.copy_(torch.tensor([0.9, 0.9, -20.0, -20.0]))
        return sac, TrainingSchedule(random_steps=3, learning_starts=6, train_frequency=2,
                                     gradient_steps=2, per_task=per_task)

    for per_task in (True, False):
        agent, schedule = learner(per_task)
        random_steps, update_steps = [], []
        obs = np.zeros(5, np.float32)
        for t in range(20):
            if t == 10:
                agent.on_task_switch(1)
            action = schedule.act(agent, obs)
            if not np.allclose(action, np.tanh(0.9)):
                random_steps.append(t)
            before = agent.updates
            agent.observe(obs, action, 0.0, obs, False)
            schedule.train(agent)
            if agent.updates > before:
                update_steps.append(t)
        if per_task:
            assert random_steps == [0, 1, 2, 10, 11, 12]
            assert update_steps == [5, 7, 9, 15, 17, 19]
            assert len(agent.replay) == 10          # emptied at the switch
        else:
            assert random_steps == [0, 1, 2]
            assert update_steps == [5, 7, 9, 11, 13, 15, 17, 19]
            assert len(agent.replay) == 20
    counters = agent.state_dict()["counters"]
    assert counters["task_env_steps"] == 10 and counters["env_steps"] == 20


# ----------------------------------------------------------------------------- smoke run


def _checkpoint_state(run_dir: pathlib.Path):
    from palr.experiments.checkpoint import load_checkpoint
    return load_checkpoint(run_dir / "checkpoint.pt")


@pytest.mark.slow
@pytest.mark.metaworld
def test_cw_paper_preset_smoke_run_with_references_and_metrics(tmp_path):
    """Two tasks of CW10 with the preset at a seconds-long size, FixedLR and PALR, then the
    single-task references with the same flags, the merge and its forward transfer; references
    made with other settings are refused."""
    pytest.importorskip("metaworld")
    out = tmp_path / "results"
    main = run(*RUN, *SMOKE, "--agents", "0", "4", "--outdir", str(out))
    assert main.returncode == 0, main.stderr
    for agent in (0, 4):
        result = json.loads((out / f"cw_checkpoint_cw10first2_seed0_agent{agent}.json").read_text())
        assert result["sequence"] == "cw10first2"
        assert [t["name"] for t in result["tasks"]] == ["hammer-v3", "push-wall-v3"]
        evals = result["evaluations"]
        assert [e["env_step"] for e in evals] == [20, 40, 60, 80]       # every 20 steps
        assert [e.get("during_task") for e in evals] == [0, None, 1, None]
        assert [e["after_task"] for e in evals] == [0, 0, 1, 1]
        assert all(len(e["task_scores"]) == len(e["task_scores_deterministic"]) == 2 for e in evals)
        state = _checkpoint_state(out / "cw_runs" / f"cw10first2_seed0_agent{agent}")
        sac = state["agent"]
        replay = sac["replay"]["obs"]
        # 39-d observation + the task one-hot; the buffer holds only task 1 (reset at the switch)
        assert replay.shape == (40, 41)
        assert torch.equal(replay[:, 39:], torch.tensor([[0.0, 1.0]]).expand(40, 2))
        assert sac["log_alpha"].shape == (2,)                          # one alpha per task
        # per-task schedule: updates at steps 30 and 40 of each task, 10 each
        assert sac["counters"]["updates"] == 40 and sac["counters"]["task_env_steps"] == 40
        assert sac["actor"]["net.9.weight"].shape[0] == 2 * 4 * 2     # a head per task
    refs = run(*RUN, *SMOKE, "--reference", "--outdir", str(out))
    assert refs.returncode == 0, refs.stderr
    for name in ("hammer-v3", "push-wall-v3"):
        ref = json.loads((out / f"cw_checkpoint_reference_{name}_seed0.json").read_text())
        assert ref["reference"] is True and len(ref["tasks"]) == 1
    merged = run(*MERGE, "--suffix", "cw10first2", "--results_dir", str(out))
    assert merged.returncode == 0, merged.stderr
    sweep = json.loads((out / "cw10first2_raw_results.json").read_text())
    assert sweep["sequence"] == "cw10first2" and len(sweep["reference_runs"]) == 2
    for agent in ("SAC-FixedLR", "PALR-SAC"):
        assert {"cw_performance", "cw_forgetting"} <= set(sweep["summary"][agent])
    for per_run in sweep["per_run"]:
        assert per_run["cw_evaluations_per_task"] == [2, 2]
        assert len(per_run["cw_forward_transfer_per_task"]) == 2
    assert "task sequence: cw10first2" in merged.stdout
    # a reference of other settings (here: 2 evaluation episodes) is refused in one line
    other = tmp_path / "other"
    again = run(*RUN, *SMOKE, "--num_tasks", "1", "--eval_episodes", "2", "--reference",
                "--outdir", str(other))
    assert again.returncode == 0, again.stderr
    (out / "cw_checkpoint_reference_hammer-v3_seed0.json").write_text(
        (other / "cw_checkpoint_reference_hammer-v3_seed0.json").read_text())
    one_line_error(run(*MERGE, "--suffix", "cw10first2", "--results_dir", str(out)),
                   "reference run hammer-v3 seed 0 was made with other settings",
                   "evaluation.episodes 1 -> 2")


@pytest.mark.slow
@pytest.mark.metaworld
def test_a_killed_cw_paper_run_resumes_identically(tmp_path):
    """The preset's per-task state (task clock, emptied replay, reset moments, per-task alphas)
    survives a SIGKILL: the resumed run ends as the uninterrupted one."""
    pytest.importorskip("metaworld")
    base = [*RUN, *SMOKE, "--agent_idx", "4", "--checkpoint_every", "1"]
    straight = run(*base, "--outdir", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    proc = subprocess.Popen([*base, "--outdir", str(tmp_path / "b")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # killed in task 1, after the switch's resets
    kill_after_episodes(proc, tmp_path / "b" / "cw_runs" / "cw10first2_seed0_agent4" / "result.json", 3)
    resumed = run(*base, "--outdir", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / d / "cw_checkpoint_cw10first2_seed0_agent4.json").read_text())
            for d in ("a", "b"))
    assert any(e["kind"] == "resumed" for e in b["events"])
    for key in ("episodes", "plasticity", "evaluations"):
        assert a[key] == b[key], key
