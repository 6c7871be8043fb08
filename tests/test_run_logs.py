"""What a person sees of a run: progress lines, sweep status, TensorBoard, W&B (--track) and the
launchers' endings, and that none of it changes training or the run identity."""
from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import pty
import re
import struct
import subprocess
import sys
import time

import pytest

from palr.experiments.cartpole import CARTPOLE
from palr.experiments.dqn_launcher import build_parser, dqn_identity, get_domain, make_jobs, \
    run_dqn_job
from palr.experiments.progress import RunProgress, format_duration, use_bar
from palr.experiments.run_identity import make_identity
from palr.experiments.sweep import RunJob

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"

#: one plain progress line: episode k/N, task index and name, return, steps/s, env step, ETA
LINE = re.compile(r"^\[PALR-DQN seed 0\] episode (\d+)/(\d+) \| task (\d) (\w+) \| return "
                  r"[\d.]+ \(mean [\d.]+ over (\d+)\) \| [\d,]+ steps/s \| env step [\d,]+ \| "
                  r"ETA (\d+[smhd]\w*|\?)$", re.M)


def cartpole_job(run_dir, **display):
    """A short continual CartPole run of PALR-DQN (4 phases x 4 episodes, measuring often)."""
    options = {"env": {"phase_episodes": 4, "cycles": 1}, "device": "cpu",
               "dqn": {"exploration_steps": 400, "learning_starts": 100, "log_every": 20},
               "overrides": {"measure_freq": 50, "diag_batch_size": 64}, "checkpoint_every": 4,
               "probe": None, "progress": False, "tensorboard": False, **display}
    job = RunJob("cartpole", 4, "PALR-DQN", 0, str(run_dir), options)
    job.identity = dqn_identity(job)
    return job


def test_a_run_with_progress_off_prints_a_line_every_n_episodes(tmp_path, capsys):
    run_dqn_job(cartpole_job(tmp_path / "run", progress=False, progress_every=4))
    err = capsys.readouterr().err
    lines = LINE.findall(err)
    assert [int(m[0]) for m in lines] == [4, 8, 12, 16], err
    assert {m[1] for m in lines} == {"16"}
    assert [(m[2], m[3]) for m in lines] == [("0", "default"), ("1", "long_heavy_pole"),
                                             ("2", "weak_force_heavy_cart"), ("3", "high_gravity")]
    assert all(m[4] == "4" for m in lines)
    assert "[PALR-DQN seed 0] started; budget 16 episodes" in err
    assert re.search(r"\[PALR-DQN seed 0\] finished: 16 episodes, [\d,]+ env steps", err)
    assert "\r" not in err  # no progress bar


def test_a_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    assert use_bar(True, Tty()) and not use_bar(True, io.StringIO())
    assert not use_bar(False, Tty())
    out = io.StringIO()
    progress = RunProgress("x", {}, 10, None, 0, 0, bar=False, every=5, stream=out)
    for episode in range(1, 11):
        progress.episode_done(episode, 20 * episode, 0, 20.0, 20.0, 20)
    assert out.getvalue().count("\n") == 2 and "episode 10/10" in out.getvalue()
    assert [format_duration(s) for s in (5, 192, 7500, 90000)] == ["5s", "3m12s", "2h05m",
                                                                   "1d01h"]


def read_events(tb_dir: pathlib.Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_one_tag_per_metric_hparams_and_task_switches(tmp_path):
    run_dqn_job(cartpole_job(tmp_path / "run", tensorboard=True))
    acc = read_events(tmp_path / "run" / "tb")
    tags = set(acc.Tags()["scalars"])
    plasticity = {t for t in tags if t.startswith("plasticity/")}
    assert "plasticity/q/0/dead" in plasticity and "train/dqn/loss" in tags
    # one tag per metric: the measurements are not repeated under train/ between measurements
    assert not [t for t in tags if t.startswith("train/") and t[len("train/"):] in tags]
    assert not [t for t in tags if t.startswith("train/plasticity/")]
    assert "episode/return" in tags and "episode/score" in tags
    # hyper-parameters: the resolved config in TensorBoard's HParams plugin and as text
    from tensorboard.plugins.hparams import plugin_data_pb2
    content = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = data.session_start_info.hparams
    assert hparams["agent"].string_value == "PALR-DQN"
    assert hparams["dqn.learning_starts"].number_value == 100
    assert hparams["intervention_settings.palr.measure_freq"].number_value == 50
    assert "run/config/text_summary" in acc.Tags()["tensors"]
    # task switches: task/index at the start and at every switch, with a text naming the task
    switches = [(e.step, e.value) for e in acc.Scalars("task/index")]
    assert [v for _, v in switches] == [0.0, 1.0, 2.0, 3.0]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    switch_steps = [e["env_step"] for e in result["events"] if e["kind"] == "task_switch"]
    assert [s for s, _ in switches] == [0, *switch_steps]
    texts = acc.Tensors("task/switch/text_summary")
    assert len(texts) == 4 and b"long_heavy_pole" in texts[1].tensor_proto.string_val[0]


def test_display_and_tracking_settings_change_neither_training_nor_identity(tmp_path,
                                                                           monkeypatch):
    """Same seed: progress lines + TensorBoard + W&B offline vs none of them: bit-identical
    episodes and plasticity, one identity; and the offline W&B run holds the metrics."""
    wandb = pytest.importorskip("wandb", reason="the track extra (wandb) is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    quiet = cartpole_job(tmp_path / "quiet")
    shown = cartpole_job(tmp_path / "shown", progress=True, progress_every=1, tensorboard=True,
                         track={"project": "palr-test", "entity": None})
    assert quiet.identity == shown.identity
    a, b = run_dqn_job(quiet), run_dqn_job(shown)
    assert a["episodes"] == b["episodes"] and a["plasticity"] == b["plasticity"]
    assert a["fingerprint"] == b["fingerprint"]
    runs = list((tmp_path / "shown" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((tmp_path / "shown").rglob("*"))
    history = offline_history(runs[0], wandb)
    returns = [row["episode/return"] for row in history if "episode/return" in row]
    assert returns == b["episodes"]["return"]
    assert any("plasticity/q/0/dead" in row for row in history)
    assert any(row.get("task/index") == 3 for row in history)


def wandb_records(path: pathlib.Path) -> list:
    """The records of a W&B transaction log (``run-*.wandb``): a 7-byte ``:W&B`` header, then
    LevelDB's log format (32 KiB blocks of chunks, each ``<crc u32, length u16, type u8>``;
    type 1 = a whole record, 2/3/4 = its first/middle/last part)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    block, pos, records, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # block trailer or padding
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    return records


def offline_history(run_dir: pathlib.Path, wandb) -> list:
    """The history rows an offline W&B run recorded (read back from its transaction log, once
    wandb's core process has written the run's closing ``exit`` record: ``finish()`` may return
    before it has)."""
    from wandb.proto import wandb_internal_pb2
    path = next(run_dir.glob("run-*.wandb"))
    for _ in range(600):  # up to a minute; the assertions below do not depend on the wait
        try:
            records = [wandb_internal_pb2.Record.FromString(data) for data in wandb_records(path)]
        except Exception:  # noqa: BLE001 - a record still being written
            records = []
        if records and records[-1].WhichOneof("record_type") == "exit":
            break
        time.sleep(0.1)
    rows = []
    for record in records:
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def test_tracking_keys_are_cosmetic():
    base = {"domain": "cartpole", "seed": 0, "env": {"phase_episodes": 4}}
    assert make_identity(base) == make_identity(
        {**base, "progress": False, "progress_every": 3, "track": {"project": "p"},
         "wandb_project": "p", "wandb_entity": "e", "tensorboard": False})


def test_track_without_wandb_is_one_line_naming_the_fix(tmp_path):
    """--track where wandb cannot be imported: one line, exit 2, nothing created."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['wandb'] = None\n")
    env = dict(os.environ, PYTHONPATH=f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    outdir = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SRC / "run_experiments.py"), "--track",
                           "--outdir", str(outdir)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[track]'" in lines[0], proc.stderr
    assert lines[0].startswith("run_experiments.py: error: --track needs Weights & Biases")
    assert not outdir.exists()


@pytest.mark.parametrize("module, name, index", [
    ("palr.experiments.cartpole", "PALR-DQN", 4),
    ("palr.experiments.permuted_cartpole", "DQN-ReDo", 7),
    ("palr.experiments.jbw", "PALR-NoScale", 6),
])
def test_agent_name_flag_on_the_dqn_launchers(module, name, index, tmp_path):
    """``--agent NAME`` (documented for every launcher) picks that one agent; it used to be an
    ambiguous abbreviation of --agents/--agent_idx."""
    domain = {"palr.experiments.cartpole": "cartpole", "palr.experiments.jbw": "jbw",
              "palr.experiments.permuted_cartpole": "permuted_cartpole"}[module]
    parser = build_parser(get_domain(domain))
    args = parser.parse_args(["--agent", name, "--seeds", "2", "--outdir", str(tmp_path)])
    jobs = make_jobs(get_domain(domain), args)
    assert [(j.agent_index, j.seed) for j in jobs] == [(index, 0), (index, 1)]


def test_agent_name_flag_on_continual_world(tmp_path):
    from palr.experiments.continual_world import build_parser as cw_parser, make_jobs as cw_jobs
    args = cw_parser().parse_args(["--agent", "PALR-SAC", "--num_tasks", "2", "--outdir",
                                   str(tmp_path)])
    assert [j.agent_index for j in cw_jobs(args)] == [4]


def test_agent_name_flag_on_the_habitat_trainer(tmp_path, capsys):
    from palr_habitat.palr_trainer import main as habitat_main
    code = habitat_main(["--check", "--config", str(ROOT / "palr_habitat" / "configs" /
                                                    "ddppo_palr_fetch_tiny.yaml"),
                         "--agent", "PALR-NoPerturb", "--outdir", str(tmp_path / "h")])
    assert code == 0
    assert "check passed: PALR-NoPerturb seed 0" in capsys.readouterr().err


def read_pty(cmd, cwd, env):
    """Run ``cmd`` with stdout and stderr on a pseudo-terminal (as in an interactive shell);
    returns (exit status, everything written)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_two_job_sweep_on_a_terminal_shows_status_lines_not_bars(tmp_path):
    """``--jobs 2`` on an interactive terminal: no progress bars (two would overwrite one
    line), each run's plain lines with its label, one sweep status line per run with k/N and
    ETA, then the summary table and where the files are."""
    outdir = tmp_path / "out"
    status, text = read_pty(
        [sys.executable, str(SRC / "run_experiments.py"), "--agents", "0", "4", "--seeds", "1",
         "--jobs", "2", "--phase_episodes", "2", "--learning_starts", "50", "--probe_steps", "0",
         "--progress_every", "2", "--no_tensorboard", "--outdir", str(outdir)],
        cwd=ROOT, env=dict(os.environ, COLUMNS="100"))
    assert status == 0, text
    assert "\r" not in text.replace("\r\n", "\n"), text  # no bar redrawn in place
    assert "[sweep] 2 run(s): 0 finished earlier (skipped), 2 to run, 2 at a time" in text
    ended = re.findall(r"\[sweep\] run (\d)/2 done: (\S+) seed 0 \| elapsed \S+ \| ETA \S+", text)
    assert [k for k, _ in ended] == ["1", "2"], text
    assert {agent for _, agent in ended} == {"DQN-FixedLR", "PALR-DQN"}, text
    for agent in ("DQN-FixedLR", "PALR-DQN"):
        assert re.search(rf"^\[{agent} seed 0\] episode 8/8 \| task 3 high_gravity \|", text,
                         re.M), text
    # the ending: the summary table and where the files are
    assert "[summary] 2 run(s) under" in text and "results: " + str(outdir) in text


def test_continual_world_single_run_ends_with_its_summary(tmp_path, capsys):
    """A single CW run (what run_cw20.sh --single starts) prints its summary table and files."""
    from palr.experiments.continual_world import main as cw_main
    code = cw_main(["--cw10", "--num_tasks", "1", "--episodes_per_task", "1",
                    "--max_episode_steps", "20", "--start_steps", "10", "--update_after", "10",
                    "--update_every", "10", "--eval_episodes", "1",
                    "--eval_deterministic_episodes", "0", "--batch_size", "8",
                    "--agent", "PALR-SAC", "--outdir", str(tmp_path), "--no_tensorboard"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "[summary] 1 run(s) of cw10first1 from this command" in out.out
    assert "PALR-SAC" in out.out.split("[summary]", 1)[1]
    assert f"results: {tmp_path / 'cw_checkpoint_cw10first1_seed0_agent4.json'}" in out.err
    assert "merge_cw_checkpoints.py --suffix cw10first1" in out.err


def test_summarize_command_prints_the_table_of_run_directories(tmp_path, capsys):
    from palr.experiments.summarize import main as summarize
    run_dqn_job(cartpole_job(tmp_path / "runs" / "a"))
    capsys.readouterr()
    assert summarize([str(tmp_path / "runs"), "--title", "ablation"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("[summary] ablation\n") and "PALR-DQN" in out.out
    assert f"results: {tmp_path / 'runs' / 'a'}" in out.err
    with pytest.raises(SystemExit) as stop:
        summarize([str(tmp_path / "empty")])
    assert stop.value.code == 2
    assert "no result.json under" in capsys.readouterr().err


def test_parsed_flags_reach_the_jobs_as_cosmetic_options(tmp_path):
    parser = build_parser(CARTPOLE)
    args = parser.parse_args(["--agent", "0", "--seeds", "1", "--no_progress",
                              "--progress_every", "7", "--outdir", str(tmp_path)])
    job = make_jobs(CARTPOLE, args)[0]
    assert job.options["progress"] is False and job.options["progress_every"] == 7
    assert job.options["track"] is None
    other = make_jobs(CARTPOLE, parser.parse_args(["--agent", "0", "--seeds", "1", "--outdir",
                                                   str(tmp_path)]))[0]
    assert other.identity == job.identity
    assert isinstance(args, argparse.Namespace)


@pytest.mark.slow
def test_habitat_trainer_logs_and_ending(tmp_path, capsys):
    """A whole tiny DD-PPO run: iteration lines with phase name and ETA, TensorBoard HParams and a
    marker per curriculum phase, then its summary table and where its files are."""
    from palr_habitat.palr_trainer import main as habitat_main
    outdir = tmp_path / "h"
    code = habitat_main(["--config", str(ROOT / "palr_habitat" / "configs" /
                                         "ddppo_palr_fetch_tiny.yaml"),
                         "--outdir", str(outdir), "--agent", "FixedLR",
                         "--set", "ppo.num_steps=16", "--set", "curriculum.steps_per_phase=24"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert re.search(r"iteration 1 \| env steps 16/96 \| phase 0 \w+ \| .* \| ETA \S+$", out.err,
                     re.M), out.err
    assert "[summary] PPO-FixedLR seed 0" in out.out and f"results: {outdir}" in out.err
    acc = read_events(outdir / "tb")
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")
    assert [e.value for e in acc.Scalars("task/index")] == [0.0, 1.0, 2.0, 3.0]
    # run_interactive.sh --summary: what run_interactive_ablation.sh ends with
    proc = subprocess.run(["bash", str(ROOT / "run_interactive.sh"), "--summary", "--title",
                           "ablation", str(outdir)], env=dict(os.environ, SIF="none"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("[summary] ablation\n") and "PPO-FixedLR" in proc.stdout


def test_episode_budget_eta_follows_the_recent_pace_as_episodes_lengthen(monkeypatch):
    """Episodes 1-10 take 1 s each, 11-20 take 10 s each (the agent learned to balance): at
    episode 20 of 100, 80 episodes at 10 s are left (13m20s), not 80 at the mean 5.5 s (7m20s)."""
    import palr.experiments.progress as progress
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock["now"])
    out = io.StringIO()
    bar = RunProgress("PALR-DQN seed 0", {0: "default"}, total_episodes=100, total_env_steps=None,
                      episode=0, env_steps=0, bar=False, every=10, stream=out)
    steps = 0
    for episode in range(1, 21):
        length = 20 if episode <= 10 else 200
        clock["now"] += 1.0 if episode <= 10 else 10.0
        steps += length
        bar.episode_done(episode, steps, 0, float(length), float(length), length)
    lines = LINE.findall(out.getvalue())
    assert [(m[0], m[-1]) for m in lines] == [("10", "1m30s"), ("20", "13m20s")]


def test_a_resumed_run_continues_its_wandb_run(tmp_path, monkeypatch):
    """The second session of a run (a resume) reopens the W&B run of the first: the same id,
    kept in <run dir>/wandb/run_id; another run directory gets another id."""
    wandb = pytest.importorskip("wandb", reason="the track extra (wandb) is not installed")
    from palr.experiments.tracking import WANDB_ID_FILE, RunLog
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    track = {"project": "palr-test", "entity": None}
    ids = []
    for run_dir, resume_step in ((tmp_path / "a", 0), (tmp_path / "a", 300), (tmp_path / "b", 0)):
        log = RunLog(run_dir, tensorboard=False, track=track, name="PALR-DQN seed 0",
                     resume_step=resume_step)
        ids.append(log.wandb_run.id)
        log.scalars({"episode/return": 1.0 + resume_step}, resume_step + 100)
        log.close()
    assert ids[0] == ids[1] != ids[2]
    assert (tmp_path / "a" / "wandb" / WANDB_ID_FILE).read_text().strip() == ids[0]
    sessions = sorted((tmp_path / "a" / "wandb").glob("offline-run-*"))
    assert len(sessions) == 2 and all(f"-{ids[0]}" in p.name for p in sessions)
    rows = [row for p in sessions for row in offline_history(p, wandb)]
    assert [row["episode/return"] for row in rows if "episode/return" in row] == [1.0, 301.0]
