"""The one config system (palr.config) as the launchers use it: YAML --config, dotted --set,
flag shorthands, --print_config, one-line errors and the run identity."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

SRC = pathlib.Path(__file__).resolve().parents[1] / "palr_plasticity_aware_lr" / "src"
CARTPOLE = SRC / "run_experiments.py"
CW = SRC / "run_cw_experiments.py"


def _cartpole_jobs(argv):
    from palr.experiments.cartpole import CARTPOLE as DOMAIN
    from palr.experiments.dqn_launcher import build_parser, make_jobs
    return make_jobs(DOMAIN, build_parser(DOMAIN).parse_args([*argv, "--agents", "4",
                                                             "--seeds", "1"]))


def test_flag_set_and_config_file_give_one_fingerprint(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("dqn:\n  learning_rate: 1.0e-4\n")
    spellings = [["--lr", "1e-4"], ["--set", "dqn.learning_rate=1e-4"],
                 ["--config", str(config)], ["--lr", "1e-4", "--set", "dqn.learning_rate=1e-4"]]
    (first,), *others = [_cartpole_jobs(argv) for argv in spellings]
    assert first.identity["dqn"]["learning_rate"] == 1e-4
    assert all(job.identity == first.identity for (job,) in others)
    (default,) = _cartpole_jobs([])
    assert default.identity != first.identity
    # intervention settings: flag, flat --set and dotted --set are one field too
    flat, dotted, flag = (_cartpole_jobs(a)[0] for a in (
        ["--set", "measure_freq=50"], ["--set", "interventions.measure_freq=50"],
        ["--measure_freq", "50"]))
    assert flat.identity == dotted.identity == flag.identity != default.identity
    assert flat.options["overrides"] == {"measure_freq": 50}


def test_set_overrides_the_config_file_and_flags_override_both(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("dqn:\n  gamma: 0.9\n  learning_rate: 1.0e-3\nenv:\n  phase_episodes: 7\n")
    top = tmp_path / "top.yaml"
    top.write_text("base: base.yaml\ndqn:\n  gamma: 0.95\n")
    (job,) = _cartpole_jobs(["--config", str(top)])
    assert (job.options["dqn"]["gamma"], job.options["dqn"]["learning_rate"]) == (0.95, 1e-3)
    assert job.options["env"]["phase_episodes"] == 7
    (job,) = _cartpole_jobs(["--config", str(top), "--set", "dqn.gamma=0.8",
                             "--set", "env.phase_episodes=9"])
    assert job.options["dqn"]["gamma"] == 0.8 and job.options["env"]["phase_episodes"] == 9
    (job,) = _cartpole_jobs(["--config", str(top), "--gamma", "0.7", "--phase_episodes", "5"])
    assert job.options["dqn"]["gamma"] == 0.7 and job.options["env"]["phase_episodes"] == 5


def test_cw_sac_fields_reach_the_identity():
    from palr.experiments.continual_world import build_parser, make_jobs
    argv = ["--agent_idx", "4", "--num_tasks", "2", "--outdir", "unused"]
    (plain,) = make_jobs(build_parser().parse_args(argv))
    (tuned,) = make_jobs(build_parser().parse_args([*argv, "--set", "sac.lr=3e-4"]))
    (batch,) = make_jobs(build_parser().parse_args([*argv, "--set", "sac.batch_size=64"]))
    (flag,) = make_jobs(build_parser().parse_args([*argv, "--batch_size", "64"]))
    assert tuned.identity["sac"]["lr"] == 3e-4 and plain.identity["sac"]["lr"] == 1e-3
    assert batch.identity == flag.identity != plain.identity
    (paper,) = make_jobs(build_parser().parse_args([*argv, "--preset", "cw-paper",
                                                    "--set", "cw.episodes_per_task=3"]))
    assert paper.identity["episodes_per_task"] == 3 and paper.identity["sac"]["network"] == "cw"


def _cartpole_sweep(argv):
    """(jobs, parsed args after the tree was resolved) of a continual CartPole launch."""
    from palr.experiments.cartpole import CARTPOLE as DOMAIN
    from palr.experiments.dqn_launcher import build_parser, make_jobs
    args = build_parser(DOMAIN).parse_args(argv)
    return make_jobs(DOMAIN, args), args


def test_run_level_settings_come_from_the_file_set_and_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"sweep:\n  agents: [0, PALR-DQN]\n  seeds: 2\n  seed_offset: 5\n"
                      f"  outdir: {tmp_path / 'a'}\n  jobs: 1\n")
    jobs, args = _cartpole_sweep(["--config", str(config)])
    assert [(j.agent_name, j.seed) for j in jobs] == [
        ("DQN-FixedLR", 5), ("DQN-FixedLR", 6), ("PALR-DQN", 5), ("PALR-DQN", 6)]
    assert jobs[0].run_dir == str(tmp_path / "a" / "runs" / "DQN-FixedLR_seed5")
    assert args.jobs == 1 and args.outdir == tmp_path / "a"
    # --set over the file, flags over both; a flag and a --set that disagree are refused
    jobs, args = _cartpole_sweep(["--config", str(config), "--set", "sweep.seeds=1",
                                  "--set", "sweep.agents=[4]", "--outdir", str(tmp_path / "b")])
    assert [(j.agent_name, j.seed) for j in jobs] == [("PALR-DQN", 5)]
    assert jobs[0].run_dir.startswith(str(tmp_path / "b"))
    _cartpole_sweep(["--set", "sweep.jobs=3", "--jobs", "3"])  # the same value twice is fine
    from palr.errors import UsageError
    with pytest.raises(UsageError, match="--seeds 2 and --set sweep.seeds=1 set sweep.seeds to "
                                         "different values"):
        _cartpole_sweep(["--set", "sweep.seeds=1", "--seeds", "2"])
    with pytest.raises(UsageError, match="sweep.jobs must be a positive integer, got 0"):
        _cartpole_sweep(["--set", "sweep.jobs=0"])


def test_run_level_settings_are_not_part_of_a_runs_identity(tmp_path):
    from palr.experiments.run_identity import settings_fingerprint
    (flags,), _ = _cartpole_sweep(["--agents", "4", "--seeds", "1", "--jobs", "1",
                                   "--outdir", str(tmp_path / "a")])
    config = tmp_path / "c.yaml"
    config.write_text(f"sweep:\n  agents: [4, 0]\n  seeds: 2\n  jobs: 2\n"
                      f"  outdir: {tmp_path / 'b'}\n")
    from_file, _ = _cartpole_sweep(["--config", str(config)])
    assert "sweep" not in flags.identity
    assert from_file[0].identity == flags.identity and from_file[0].run_dir != flags.run_dir
    assert settings_fingerprint(from_file[1].identity) == settings_fingerprint(flags.identity)


def _cw_jobs(argv):
    from palr.experiments.continual_world import build_parser, make_jobs
    return make_jobs(build_parser().parse_args(argv))


def test_cw_run_level_settings_come_from_the_file_and_set_and_match_the_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"sweep:\n  agents: [4]\n  seeds: 2\n  seed_offset: 3\n  sequence: mt10\n"
                      f"  num_tasks: 2\n  preset: cw-paper\n  outdir: {tmp_path / 'a'}\n")
    from_file = _cw_jobs(["--config", str(config)])
    flags = _cw_jobs(["--agents", "4", "--seeds", "2", "--seed_offset", "3", "--sequence", "mt10",
                      "--num_tasks", "2", "--preset", "cw-paper", "--outdir", str(tmp_path / "b")])
    assert [(j.seed, j.options["label"], j.options["preset"]) for j in from_file] == \
        [(3, "mt10first2", "cw-paper"), (4, "mt10first2", "cw-paper")]
    assert from_file[0].options["episodes_per_task"] == 5000  # the preset's defaults follow it
    assert [j.identity for j in from_file] == [j.identity for j in flags]  # not in the identity
    assert all("sweep" not in j.identity for j in from_file)
    assert from_file[0].run_dir.startswith(str(tmp_path / "a"))
    (job,) = _cw_jobs(["--config", str(config), "--set", "sweep.seeds=1", "--set",
                       "sweep.preset=silent"])
    assert job.options["preset"] == "silent" and job.options["episodes_per_task"] == 200
    from palr.errors import UsageError
    with pytest.raises(UsageError, match="--preset silent and --set sweep.preset=cw-paper"):
        _cw_jobs(["--preset", "silent", "--set", "sweep.preset=cw-paper"])
    with pytest.raises(UsageError, match="--cw20 and sequence mt10"):
        _cw_jobs(["--config", str(config), "--cw20"])


def _run(script, argv, cwd):
    return subprocess.run([sys.executable, str(script), *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("script, argv, message", [
    (CARTPOLE, ["--set", "dqn.lrr=1"], "--set dqn.lrr: unknown key; valid keys under 'dqn': "
                                       "hidden_sizes, learning_rate"),
    (CARTPOLE, ["--set", "dqn.gamma=abc"], "--set dqn.gamma: expected a number, got 'abc'"),
    (CARTPOLE, ["--set", "dqn.gamma=1.5"],
     "dqn.gamma must be a finite number in [0.0, 1.0], got 1.5; change dqn.gamma "
     "(--gamma, --set dqn.gamma=VALUE or --config"),
    (CARTPOLE, ["--set", "env.phase_episodes=0"],
     "env.phase_episodes must be a positive integer, got 0"),
    (CARTPOLE, ["--set", "interventions.sigma=-1"], "sigma must be a finite number >= 0"),
    (CARTPOLE, ["--set", "dqn.seed=3"], "dqn.seed is set by --seeds/--seed_offset"),
    (CARTPOLE, ["--lr", "1e-3", "--set", "dqn.learning_rate=2e-3"],
     "--lr 0.001 and --set dqn.learning_rate=2e-3 set dqn.learning_rate to different values"),
    (CARTPOLE, ["--config", "missing.yaml"], "config file"),
    (CW, ["--set", "sac.lr=-1"], "sac.lr must be a finite number > 0, got -1.0"),
    (CW, ["--set", "sac.multi_head=true"], "sac.multi_head is set by --preset"),
    (CW, ["--set", "cw.eval_every=ten"], "--set cw.eval_every: expected an integer or null"),
])
def test_bad_config_input_is_one_line_exit_2_nothing_on_disk(tmp_path, script, argv, message):
    outdir = tmp_path / "out"
    proc = _run(script, [*argv, "--outdir", str(outdir)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not outdir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_bad_key_in_the_config_file_names_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("dqn:\n  gama: 0.9\n")
    proc = _run(CARTPOLE, ["--config", "c.yaml", "--outdir", "out"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("run_experiments.py: error: c.yaml: dqn.gama: unknown key")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script, section", [(CARTPOLE, "dqn"), (CW, "sac")])
def test_unknown_key_errors_list_exactly_the_settable_keys(tmp_path, script, section):
    """The valid keys an unknown-key error lists are those --print_config shows (and --set
    takes): not the fields other flags own (seed, device; CW's preset fields)."""
    shown = list(yaml.safe_load(_run(script, ["--print_config"], tmp_path).stdout)[section])
    (tmp_path / "c.yaml").write_text(f"{section}:\n  bogus: 1\n")
    for argv, where in ((["--set", f"{section}.bogus=1"], "--set "), (["--config", "c.yaml"],
                                                                       "c.yaml: ")):
        proc = _run(script, argv, tmp_path)
        assert proc.returncode == 2, proc.stderr
        listed = proc.stderr.strip().split(f"{where}{section}.bogus: unknown key; valid keys "
                                           f"under '{section}': ", 1)[1].split(", ")
        assert listed == shown and "seed" not in listed and "device" not in listed
    yaml_owned = (tmp_path / "c.yaml")
    yaml_owned.write_text(f"{section}:\n  device: cpu\n")
    proc = _run(script, ["--config", "c.yaml"], tmp_path)
    assert proc.returncode == 2 and f"c.yaml: {section}.device is set by --device" in proc.stderr


@pytest.mark.parametrize("script", [CARTPOLE, CW])
def test_print_config_is_yaml_that_config_reads_back(tmp_path, script):
    proc = _run(script, ["--set", "interventions.sigma=0.3", "--print_config", "--outdir", "out"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    tree = yaml.safe_load(proc.stdout)
    assert tree["interventions"]["sigma"] == 0.3 and "seed" not in tree.get("dqn", tree.get("sac"))
    if script == CARTPOLE:  # the run-level settings, with the flags' defaults
        assert tree["sweep"] == {"agents": ["0", "3", "4", "7"], "seeds": 3, "seed_offset": 0,
                                 "outdir": "out", "jobs": min(2, os.cpu_count() or 1)}
    assert not (tmp_path / "out").exists()
    (tmp_path / "printed.yaml").write_text(proc.stdout)
    again = _run(script, ["--config", "printed.yaml", "--print_config"], tmp_path)
    assert again.returncode == 0 and yaml.safe_load(again.stdout) == tree


@pytest.mark.slow
def test_a_changed_value_is_refused_on_an_existing_run(tmp_path):
    tiny = ["--agents", "0", "--seeds", "1", "--phase_episodes", "2", "--probe_steps", "0",
            "--no_tensorboard", "--jobs", "1", "--outdir", "out"]
    first = _run(CARTPOLE, [*tiny, "--set", "dqn.learning_rate=1e-3"], tmp_path)
    assert first.returncode == 0, first.stderr
    same = _run(CARTPOLE, [*tiny, "--lr", "1e-3"], tmp_path)  # the other spelling: finished
    assert same.returncode == 0, same.stderr
    changed = _run(CARTPOLE, [*tiny, "--set", "dqn.learning_rate=2e-3"], tmp_path)
    assert changed.returncode == 2
    assert "other settings (dqn.learning_rate 0.001 -> 0.002)" in changed.stderr, changed.stderr


def _parsers():
    from palr.experiments import continual_world, evaluate, study, summarize
    from palr.experiments.dqn_launcher import build_parser, get_domain
    from palr_habitat import palr_trainer
    parsers = {name: build_parser(get_domain(name))
               for name in ("cartpole", "permuted_cartpole", "jbw")}
    parsers.update(cw=continual_world.build_parser(), habitat=palr_trainer.build_parser(),
                   study=study.build_parser(), summarize=summarize.build_parser(),
                   evaluate=evaluate.build_parser())
    return parsers


def test_every_flag_of_every_launcher_has_help():
    missing = [f"{name}: {action.option_strings or action.dest}"
               for name, parser in _parsers().items() for action in parser._actions
               if not (action.help or "").strip()]
    assert missing == []
