"""palr_habitat configs (validated YAML) and the 4-phase Fetch curriculum."""
from __future__ import annotations

import json
import pathlib

import pytest

from palr_habitat.ddppo_config import (CONFIG_DIR, ConfigError, PhaseConfig, PolicyConfig,
                                       load_config)
from palr_habitat.fetch_curriculum import EVENTS_FILE, FetchCurriculum
from palr_habitat.palr_trainer import main

SHIPPED = {
    "ddppo_palr_fetch.yaml": "PALR-PPO",
    "ddppo_baseline_fetch.yaml": "FixedLR",
    "ddppo_palr_lr_only_fetch.yaml": "PALR-NoPerturb",
    "ddppo_palr_perturb_only_fetch.yaml": "PALR-NoScale",
    "ddppo_palr_fetch_tiny.yaml": "PALR-PPO",
}


@pytest.mark.parametrize("name, agent", sorted(SHIPPED.items()))
def test_shipped_configs_load(name, agent):
    cfg = load_config(CONFIG_DIR / name)
    assert cfg.agent.name == agent
    assert [p.name for p in cfg.curriculum.phases] == ["pick_apple", "pick_bowl", "open_fridge",
                                                       "place_sink"]
    if "tiny" not in name:  # the original settings come from rearrange_base.yaml
        assert cfg.env.resolution == 128 and cfg.curriculum.steps_per_phase == 50_000_000
        assert cfg.policy == PolicyConfig()  # habitat-baselines' PointNavResNetPolicy values
        assert cfg.policy.norm == "group" and cfg.policy.rnn_type == "LSTM"
        assert cfg.total_steps == 200_000_000
    else:
        assert cfg.env.backend == "standin" and cfg.policy.baseplanes == 4
        assert cfg.agent.interventions["perturb_threshold"] == 0.05  # merged from its base


def _write(tmp_path: pathlib.Path, text: str, name: str = "c.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("ppo:\n  num_stepz: 3\n", "c.yaml: ppo.num_stepz: unknown key; valid keys under 'ppo'"),
    ("ppo:\n  num_steps: many\n", "ppo.num_steps: expected an integer, got 'many'"),
    ("ppo:\n  num_steps: 2.5\n", "ppo.num_steps: expected an integer"),
    ("ppo:\n  use_clipped_value_loss: 1\n", "ppo.use_clipped_value_loss: expected true/false"),
    ("env: 3\n", "env: expected a mapping"),
    ("bogus: {}\n", "bogus: unknown key; valid keys at the top level"),
    ("curriculum:\n  phases:\n    - {name: a, standin: x}\n",
     "curriculum.phases[0].standin: unknown key"),
    ("policy:\n  blocks: [2, two]\n", "policy.blocks[1]: expected an integer"),
    ("agent:\n  interventions: {bogus_knob: 1}\n", "agent.interventions.bogus_knob: unknown"),
    ("agent:\n  interventions: {measure_freq: fast}\n", "agent.interventions.measure_freq"),
    ("env:\n  backend: gpu\n", "env.backend must be one of auto, habitat, standin, got 'gpu'"),
    ("ppo:\n  gamma: 1.5\n", "ppo.gamma must be a finite number in [0.0, 1.0], got 1.5"),
    ("ppo: [\n", "c.yaml: malformed YAML at line"),
])
def test_bad_configs_name_the_key_path(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_base_include_merges_and_reports_the_offending_file(tmp_path):
    _write(tmp_path, "ppo:\n  num_steps: 64\n  lr: 1.0e-3\n", "base.yaml")
    cfg = load_config(_write(tmp_path, "base: base.yaml\nppo:\n  lr: 5.0e-4\n"))
    assert cfg.ppo.num_steps == 64 and cfg.ppo.lr == 5e-4 and cfg.ppo.ppo_epoch == 2
    _write(tmp_path, "ppo:\n  nope: 1\n", "bad_base.yaml")
    with pytest.raises(ConfigError, match=r"^bad_base.yaml: ppo.nope: unknown key"):
        load_config(_write(tmp_path, "base: bad_base.yaml\n", "top.yaml"))
    _write(tmp_path, "base: loop_b.yaml\n", "loop_a.yaml")
    _write(tmp_path, "base: loop_a.yaml\n", "loop_b.yaml")
    with pytest.raises(ConfigError, match="include cycle"):
        load_config(tmp_path / "loop_a.yaml")


def _float_paths():
    """Dotted paths of every float field of the config's sections."""
    import dataclasses
    import typing

    from palr_habitat.ddppo_config import TrainConfig
    hints = typing.get_type_hints(TrainConfig)
    return [f"{section.name}.{f.name}" for section in dataclasses.fields(TrainConfig)
            for f in dataclasses.fields(hints[section.name])
            if typing.get_type_hints(hints[section.name])[f.name] is float]


@pytest.mark.parametrize("path", _float_paths())
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_every_float_of_the_config_must_be_finite(path, value):
    tiny = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
    with pytest.raises(ConfigError, match=rf"^{path} must be a finite number, got .*; change {path} "):
        load_config(tiny, [f"{path}={value}"])


def test_agent_given_by_index_in_yaml_or_on_the_command_line(tmp_path):
    tiny = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
    assert load_config(tiny, ["agent.name=4"]).agent.name == 4
    assert load_config(_write(tmp_path, f"base: {tiny}\nagent:\n  name: 6\n")).agent.name == 6
    with pytest.raises(ConfigError, match=r"agent.name: unknown agent '8'; valid agents: 0="):
        load_config(tiny, ["agent.name=8"])
    with pytest.raises(ConfigError, match="agent.name: expected an integer or a string"):
        load_config(tiny, ["agent.name=[4]"])


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "{}\n"])
def test_an_empty_config_is_rejected_not_run_at_full_size(tmp_path, text):
    with pytest.raises(ConfigError, match="is empty; start from a config in"):
        load_config(_write(tmp_path, text))


def test_set_overrides_are_checked_like_the_file():
    tiny = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
    cfg = load_config(tiny, ["ppo.num_steps=16", "agent.interventions.perturb_threshold=0.0",
                             "env.habitat_overrides=[a=1]"])
    assert cfg.ppo.num_steps == 16 and cfg.agent.interventions["perturb_threshold"] == 0.0
    assert cfg.agent.interventions["measure_freq"] == 2  # the rest of the mapping is kept
    with pytest.raises(ConfigError, match=r"^--set ppo.num_stepz: unknown key"):
        load_config(tiny, ["ppo.num_stepz=16"])
    with pytest.raises(ConfigError, match="expects SECTION.KEY=VALUE"):
        load_config(tiny, ["ppo.num_steps"])


def test_cli_bad_input_exits_2_with_one_line_and_touches_nothing(tmp_path, capsys):
    bad = _write(tmp_path, "base: " + str(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml") +
                 "\nppo:\n  clip: 0.1\n")
    outdir = tmp_path / "run"
    cases = [
        ["--config", str(bad), "--outdir", str(outdir)],
        ["--config", str(tmp_path / "missing.yaml"), "--outdir", str(outdir)],
        ["--config", str(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"), "--outdir", str(outdir),
         "--agent", "PALR-Magic"],
        ["--config", str(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"), "--outdir", str(outdir),
         "--seed", "-1"],
        ["--config", str(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"), "--outdir", str(outdir),
         "--set", "agent.interventions.networks=[critic]"],
    ]
    expected = ["ppo.clip: unknown key", "not found", "unknown agent 'PALR-Magic'; valid agents",
                "--seed must be a non-negative integer, got -1", "networks: unknown role(s) critic; valid roles"]
    for argv, text in zip(cases, expected):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, err
        assert err.startswith("palr_trainer.py: error:")
    assert not outdir.exists()



def test_the_renamed_run_max_updates_names_run_max_iterations(tmp_path, capsys):
    """``run.max_updates`` counted PPO iterations; it is ``run.max_iterations`` now (the agent
    contract's ``updates`` are gradient updates), and an old YAML or --set says so in one line."""
    old = _write(tmp_path, "base: " + str(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml") +
                 "\nrun:\n  max_updates: 3\n")
    outdir = tmp_path / "run"
    for argv, where in (
            (["--config", str(old)], "c.yaml: "),
            (["--config", str(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"),
              "--set", "run.max_updates=3"], "--set ")):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--outdir", str(outdir)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"palr_trainer.py: error: {where}run.max_updates: renamed "
                       "run.max_iterations; write run.max_iterations instead"), err
    assert not outdir.exists()
    assert load_config(CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml",
                       ["run.max_iterations=3"]).run.max_iterations == 3

#: another valid value for every policy setting (the tiny config's policy otherwise)
POLICY_ALTERNATIVES = {
    "baseplanes": 8, "blocks": "[1, 1, 1, 1]", "norm": "group", "groups": 4, "input_pool": 1,
    "compression_size": 32, "hidden_size": 64, "rnn_type": "GRU", "num_recurrent_layers": 1,
    "prev_action_size": 16, "action_activation": "none", "log_std_init": -1.0,
    "log_std_min": -4.0, "log_std_max": 1.0,
}


def test_every_policy_setting_is_part_of_the_run_identity():
    """A run with any other policy setting is another run (a resume would be refused)."""
    import dataclasses

    from palr_habitat.palr_trainer import run_identity
    assert set(POLICY_ALTERNATIVES) == {f.name for f in dataclasses.fields(PolicyConfig)}
    tiny = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
    base = run_identity(load_config(tiny), 0, "standin", 1)
    for key, value in POLICY_ALTERNATIVES.items():
        other = load_config(tiny, [f"policy.{key}={value}"])
        assert getattr(other.policy, key) != getattr(load_config(tiny).policy, key), key
        assert run_identity(other, 0, "standin", 1) != base, key


def test_curriculum_switches_after_each_phase_budget(tmp_path):
    phases = [PhaseConfig(name=n) for n in ("pick_apple", "pick_bowl", "open_fridge",
                                            "place_sink")]
    cur = FetchCurriculum(phases, steps_per_phase=100)
    assert cur.total_steps == 400
    assert [cur.phase_at(s) for s in (0, 99, 100, 299, 300, 10_000)] == [0, 0, 1, 2, 3, 3]
    cur.start(0, 0.0)
    assert cur.advance(64, 1, 1.0) is None
    assert cur.advance(128, 2, 2.0) == 1 and cur.current.name == "pick_bowl"
    assert cur.advance(150, 3, 3.0) is None
    assert cur.advance(320, 4, 4.0) == 3  # one rollout crossed two budgets: both are logged
    path = cur.write(tmp_path)
    assert path.name == EVENTS_FILE
    data = json.loads(path.read_text())
    assert data["phases"] == [p.name for p in phases] and data["steps_per_phase"] == 100
    events = [(e["kind"], e["phase"], e["name"], e["boundary_step"], e["env_step"], e["iteration"])
              for e in data["events"]]
    assert events == [("start", 0, "pick_apple", 0, 0, 0), ("switch", 1, "pick_bowl", 100, 128, 2),
                      ("switch", 2, "open_fridge", 200, 320, 4),
                      ("switch", 3, "place_sink", 300, 320, 4)]
    resumed = FetchCurriculum(phases, steps_per_phase=100)
    resumed.load_state_dict(cur.state_dict())
    resumed.start(5, 5.0)  # a resumed run does not log a second start
    assert resumed.phase == 3 and resumed.events == cur.events
    with pytest.raises(ValueError, match="steps_per_phase"):
        FetchCurriculum(phases, 50).load_state_dict(cur.state_dict())


def test_each_section_checks_its_own_ranges():
    """Range and choice checks live in the sections' __post_init__ (palr.checks), so a section
    built anywhere (a file, --set, a checkpoint, code) is checked the same way."""
    from palr.checks import SettingError
    from palr_habitat.ddppo_config import DDPPOConfig, EnvConfig, PPOConfig, RunConfig
    with pytest.raises(SettingError, match=r"^gamma must be a finite number in \[0.0, 1.0\], got 1.5$"):
        PPOConfig(gamma=1.5)
    with pytest.raises(SettingError, match="^torch_threads must be a positive integer, got 0$"):
        RunConfig(torch_threads=0)
    with pytest.raises(SettingError, match="^backend must be one of auto, habitat, standin, got 'gpu'$"):
        EnvConfig(backend="gpu")
    with pytest.raises(SettingError, match="^sync_frac must be a finite number in"):
        DDPPOConfig(sync_frac=-0.1)
    with pytest.raises(SettingError, match="^blocks must be a non-empty list of positive integers"):
        PolicyConfig(blocks=[2, 0])


def test_checks_across_sections_name_both_settings():
    tiny = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
    with pytest.raises(ConfigError, match="policy.input_pool: 16-pixel images pooled by 4 leave "
                                          "fewer than 8 pixels"):
        load_config(tiny, ["env.resolution=16", "policy.input_pool=4"])


def test_a_range_error_names_where_the_value_was_given(tmp_path):
    """--set and the file give one text for one setting, naming the key (and the file)."""
    tiny = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
    with pytest.raises(ConfigError) as by_set:
        load_config(tiny, ["ppo.gamma=1.5"])
    bad = _write(tmp_path, f"base: {tiny}\nppo:\n  gamma: 1.5\n")
    with pytest.raises(ConfigError) as by_file:
        load_config(bad)
    problem = ("must be a finite number in [0.0, 1.0], got 1.5; change ppo.gamma "
               "(--set ppo.gamma=VALUE or the config file)")
    assert str(by_set.value) == f"ppo.gamma {problem}"
    assert str(by_file.value) == f"c.yaml: ppo.gamma {problem}"
