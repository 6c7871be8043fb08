"""One check per setting: a launcher flag that is a shorthand for a config key, ``--set KEY=VALUE``
and a ``--config`` YAML file go through the same check (the key's dataclass ``__post_init__``,
palr.checks) and give one error text naming what the user wrote; accepted values are unchanged;
every flag of every launcher and tool has help text."""
from __future__ import annotations

import argparse
from typing import Callable, List, Sequence

import pytest
import yaml


def _cartpole(argv: Sequence[str]) -> int:
    from palr.experiments.cartpole import CARTPOLE
    from palr.experiments.dqn_launcher import main
    return main(CARTPOLE, list(argv))


def _jbw(argv: Sequence[str]) -> int:
    from palr.experiments.dqn_launcher import get_domain, main
    return main(get_domain("jbw"), list(argv))


def _cw(argv: Sequence[str]) -> int:
    from palr.experiments.continual_world import main
    return main(list(argv))


LAUNCHERS = {"run_experiments.py": _cartpole, "run_jbw_experiments.py": _jbw,
             "run_cw_experiments.py": _cw}


def _error(capsys, prog: str, argv: List[str]) -> str:
    """The one stderr line of a refused command (exit status 2, nothing on stdout)."""
    with pytest.raises(SystemExit) as stop:
        LAUNCHERS[prog](argv)
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == "" and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0][len(f"{prog}: error: "):]


def _yaml_for(key: str, text: str) -> str:
    section, field = key.split(".")
    return yaml.safe_dump({section: {field: yaml.safe_load(text)}})


@pytest.mark.parametrize("prog, flag, value, key", [
    ("run_experiments.py", "--lr", "-1", "dqn.learning_rate"),
    ("run_experiments.py", "--gamma", "1.5", "dqn.gamma"),
    ("run_experiments.py", "--hidden_sizes", "0", "dqn.hidden_sizes"),
    ("run_experiments.py", "--measure_freq", "0", "interventions.measure_freq"),
    ("run_experiments.py", "--phase_episodes", "0", "env.phase_episodes"),
    ("run_experiments.py", "--seeds", "0", "sweep.seeds"),
    ("run_experiments.py", "--probe_steps", "-1", "probe.steps"),
    ("run_experiments.py", "--lr", "inf", "dqn.learning_rate"),
    ("run_jbw_experiments.py", "--world", "jbw-v9", "env.world"),
    ("run_jbw_experiments.py", "--score_threshold", "nan", "env.score_threshold"),
    ("run_cw_experiments.py", "--batch_size", "0", "sac.batch_size"),
    ("run_cw_experiments.py", "--network", "tanh", "sac.network"),
    ("run_cw_experiments.py", "--update_every", "0", "cw.update_every"),
    ("run_cw_experiments.py", "--num_tasks", "0", "sweep.num_tasks"),
])
def test_flag_set_and_yaml_give_one_error(tmp_path, capsys, prog, flag, value, key):
    outdir = tmp_path / "out"
    config = tmp_path / "bad.yaml"
    config.write_text(_yaml_for(key, value if key != "dqn.hidden_sizes" else f"[{value}]"))
    set_value = value if key != "dqn.hidden_sizes" else f"[{value}]"
    common = ["--outdir", str(outdir)]
    by_flag = _error(capsys, prog, [flag, value, *common])
    by_set = _error(capsys, prog, ["--set", f"{key}={set_value}", *common])
    by_file = _error(capsys, prog, ["--config", str(config), *common])
    # the same text, naming what the user wrote: the flag, the key, or the file and the key
    assert by_flag.startswith(f"{flag} must be "), by_flag
    assert by_set.startswith(f"{key} must be "), by_set
    assert by_file.startswith(f"bad.yaml: {key} must be "), by_file
    problem = by_flag[len(flag) + 1:]
    assert by_set[len(key) + 1:] == problem == by_file[len(f"bad.yaml: {key}") + 1:]
    assert not outdir.exists()
    assert problem.endswith(f"; change {key} ({flag}, --set {key}=VALUE or --config; see "
                                "--print_config)"), problem


@pytest.mark.parametrize("prog, flag, value", [
    ("run_experiments.py", "--checkpoint_every", "0"),
    ("run_experiments.py", "--progress_every", "-2"),
    ("run_cw_experiments.py", "--checkpoint_every", "0"),
])
def test_flags_that_are_no_config_key_use_the_same_wording(capsys, tmp_path, prog, flag, value):
    """Flags outside the config tree keep their argparse check, worded by palr.checks."""
    from palr.checks import SettingError, check_positive_int
    with pytest.raises(SettingError) as expected:
        check_positive_int(flag, int(value))
    line = _error(capsys, prog, [flag, value, "--outdir", str(tmp_path / "out")])
    assert line == f"{expected.value}; change {flag} (see --help)"
    assert not (tmp_path / "out").exists()


def _printed(capsys, prog: str, argv: List[str]) -> dict:
    assert LAUNCHERS[prog]([*argv, "--print_config"]) == 0
    out, err = capsys.readouterr()
    return yaml.safe_load(out)


@pytest.mark.parametrize("prog, argv, key, expected", [
    ("run_experiments.py", ["--lr", "1e-4"], "dqn.learning_rate", 1e-4),
    ("run_experiments.py", ["--gamma", "0"], "dqn.gamma", 0.0),
    ("run_experiments.py", ["--hidden_sizes", "64", "32"], "dqn.hidden_sizes", [64, 32]),
    ("run_experiments.py", ["--measure_freq", "1"], "interventions.measure_freq", 1),
    ("run_experiments.py", ["--probe_steps", "0"], "probe.steps", 0),
    ("run_experiments.py", ["--phase_episodes", "3"], "env.phase_episodes", 3),
    ("run_jbw_experiments.py", ["--world", "jbw-paper"], "env.world", "jbw-paper"),
    ("run_cw_experiments.py", ["--batch_size", "1"], "sac.batch_size", 1),
    ("run_cw_experiments.py", ["--network", "cw"], "sac.network", "cw"),
    ("run_cw_experiments.py", ["--eval_every", "0"], "cw.eval_every", 0),
])
def test_accepted_flag_values_change_only_their_key(capsys, prog, argv, key, expected):
    """A valid flag value is accepted and sets its key (and nothing else) as before."""
    default = _printed(capsys, prog, [])
    given = _printed(capsys, prog, argv)
    section, field = key.split(".")
    assert given[section][field] == expected
    given[section][field] = default[section][field]
    assert given == default


def _flags_without_help(parser: argparse.ArgumentParser) -> List[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {flag}" for flag in _flags_without_help(sub)]
        elif not action.help:
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def _parsers() -> List[Callable[[], argparse.ArgumentParser]]:
    from palr.experiments import (compare_sweeps, continual_world, cw_merge, dqn_launcher,
                                  evaluate, plot_results, study, summarize)
    from palr.experiments.slurm import main as slurm
    from palr_habitat import palr_trainer

    def dqn(name: str) -> Callable[[], argparse.ArgumentParser]:
        return lambda: dqn_launcher.build_parser(dqn_launcher.get_domain(name))

    def plot(name: str) -> Callable[[], argparse.ArgumentParser]:
        return lambda: plot_results.build_parser(name)

    return [dqn("cartpole"), dqn("permuted_cartpole"), dqn("jbw"), continual_world.build_parser,
            palr_trainer.build_parser, slurm.build_parser, compare_sweeps.build_parser,
            summarize.build_parser, study.build_parser, evaluate.build_parser,
            cw_merge.merge_parser, cw_merge.plot_parser,
            *(plot(name) for name in ("cartpole", "permuted_cartpole", "jbw", "habitat_fetch"))]


def test_every_flag_of_every_launcher_has_help():
    for make in _parsers():
        parser = make()
        assert _flags_without_help(parser) == [], parser.prog
