"""The habitat-lab backend against the real habitat-lab and habitat-baselines packages.

habitat-lab's ``habitat/__init__.py`` imports habitat_sim (no usable wheel here), so the fixture
loads ``habitat.config`` without running that ``__init__``: ``habitat`` is registered as a bare
package module whose ``__path__`` is the installed folder, and its subpackages import as usual
(the same for ``habitat_baselines`` and the ``habitat_baselines.rl.ddppo.policy`` package). The
packages come from palr_habitat/habitat-config-requirements.txt (``pip install --no-deps``):
.ci/run installs them into the venv; otherwise the fixture installs them into pytest's cache
folder, and the tests are skipped, with pip's reason, where pip cannot reach the index.

What is checked: every config the backend composes (the curriculum's pick, open-fridge and place
skills, nav_to_obj and the rearrange_easy multi-task, with the project's overrides from
``rearrange_base.yaml``) has each camera, lab sensor, observation key and action the backend
reads, with the expected settings, and the sensors' uuids in habitat-lab's source are the keys the
backend reads; the policy's defaults equal habitat-baselines' and its ResNet computes what
habitat-baselines' resnet18 computes.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import importlib.util
import pathlib
import subprocess
import sys
from types import SimpleNamespace
from typing import Dict, Iterator, List

import pytest

from palr_habitat.ddppo_config import (CONFIG_DIR, PhaseConfig, PolicyConfig, PPOConfig,
                                       default_phases, load_config)
from palr_habitat.fetch_habitat_env import (ACTION_KEYS_HABITAT, LAB_SENSORS, OBS_KEYS_HABITAT,
                                            action_layout, compose_phases, filter_episodes,
                                            habitat_task_config, union_action_layout)

ROOT = pathlib.Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "palr_habitat" / "habitat-config-requirements.txt"
#: packages registered without running their __init__ (it imports habitat_sim or the trainers)
BARE_PACKAGES = ("habitat", "habitat_baselines", "habitat_baselines.rl.ddppo.policy")
#: top-level packages of the requirements file (removed from sys.modules after the tests)
LOADED_PACKAGES = ("habitat", "habitat_baselines", "hydra", "omegaconf", "antlr4")
CURRICULUM = sorted({p.habitat_config for p in default_phases()})
OTHER_SKILLS = ["benchmark/rearrange/skills/nav_to_obj.yaml",
                "benchmark/rearrange/multi_task/rearrange_easy.yaml"]


def pinned_versions() -> Dict[str, str]:
    """Distribution name -> version the requirements file asks for on this Python."""
    from packaging.requirements import Requirement
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate():
                pins[req.name] = next(iter(req.specifier)).version
    return pins


def _has_versions(pins: Dict[str, str], path: List[str]) -> bool:
    found = {d.metadata["Name"].lower(): d.version
             for d in importlib.metadata.distributions(path=path)}
    return all(found.get(name.lower()) == version for name, version in pins.items())


@pytest.fixture(scope="module")
def habitat_lab(request) -> Iterator[pathlib.Path]:
    """The installed ``habitat`` folder, its config package importable (module docstring)."""
    pins = pinned_versions()
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    if not _has_versions(pins, sys.path):
        key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
        target = pathlib.Path(request.config.cache.mkdir("habitat-config")) / key
        if not _has_versions(pins, [str(target)]):
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
                 "--target", str(target), "-r", str(REQUIREMENTS)],
                capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                pytest.skip(f"pip could not install {REQUIREMENTS.name} ({reason}); .ci/run "
                            "installs it")
        sys.path.insert(0, str(target))
    try:
        for name in BARE_PACKAGES:
            spec = importlib.util.find_spec(name)
            assert spec is not None and spec.submodule_search_locations, name
            sys.modules[name] = importlib.util.module_from_spec(spec)  # __init__ not run
        assert importlib.metadata.version("habitat-lab") == pins["habitat-lab"]
        yield pathlib.Path(sys.modules["habitat"].__path__[0])
    finally:  # forget the packages loaded here (and nothing else: torch keeps its submodules)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.split(".")[0] in LOADED_PACKAGES:
                del sys.modules[name]


def sensor_uuids(source: str) -> Dict[str, str]:
    """Sensor class name -> the observation key (uuid) it produces, read from habitat-lab's
    source: the string its ``_get_uuid`` returns, or its ``cls_uuid``."""
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}

    def cls_uuid(node: ast.ClassDef) -> str:
        for stmt in node.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target",
                                                                                 None)]
            if any(isinstance(t, ast.Name) and t.id == "cls_uuid" for t in targets) and \
                    isinstance(stmt.value, ast.Constant):
                return str(stmt.value.value)
        return ""

    uuids = {}
    for name, node in classes.items():
        uuid = cls_uuid(node)
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef) and stmt.name == "_get_uuid":
                for ret in (r for r in ast.walk(stmt) if isinstance(r, ast.Return)):
                    if isinstance(ret.value, ast.Constant):
                        uuid = str(ret.value.value)
                    elif isinstance(ret.value, ast.Attribute) and \
                            isinstance(ret.value.value, ast.Name) and \
                            ret.value.value.id in classes:
                        uuid = cls_uuid(classes[ret.value.value.id])
        if uuid:
            uuids[name] = uuid
    return uuids


def _compose(path: str, **env_overrides):
    """The backend's config of one skill with the project's settings (rearrange_base.yaml)."""
    cfg = load_config(CONFIG_DIR / "ddppo_palr_fetch.yaml",
                      [f"env.{k}={v}" for k, v in env_overrides.items()])
    phase = PhaseConfig(name=pathlib.Path(path).stem, habitat_config=path)
    return habitat_task_config(phase, cfg.env, seed=3, gpu_device_id=0), phase


@pytest.mark.parametrize("path", CURRICULUM + OTHER_SKILLS)
def test_every_skill_config_has_what_the_backend_reads(habitat_lab, path):
    cfg, phase = _compose(path)
    habitat = cfg.habitat
    assert habitat.seed == 3 and habitat.task.end_on_success is True
    cameras = habitat.simulator.agents.main_agent.sim_sensors
    rgb, depth = cameras.head_rgb_sensor, cameras.head_depth_sensor
    assert (rgb.uuid, rgb.type, rgb.height, rgb.width) == ("head_rgb", "HabitatSimRGBSensor",
                                                           128, 128)
    assert (depth.uuid, depth.type, depth.height, depth.width) == (
        "head_depth", "HabitatSimDepthSensor", 128, 128)
    assert depth.normalize_depth is True  # the backend takes depth in [0, 1] as it comes
    lab = habitat.task.lab_sensors
    expected_types = {"joint_sensor": "JointSensor", "is_holding_sensor": "IsHoldingSensor",
                      "target_start_sensor": "TargetStartSensor", "goal_sensor": "GoalSensor",
                      "end_effector_sensor": "EEPositionSensor",
                      "relative_resting_pos_sensor": "RelativeRestingPositionSensor"}
    assert {name: lab[name].type for name in LAB_SENSORS} == expected_types
    assert lab.joint_sensor.dimensionality == 7
    for name in ("target_start_sensor", "goal_sensor"):  # relative to the end effector, xyz
        assert (lab[name].goal_format, lab[name].dimensionality) == ("CARTESIAN", 3)
    # every key the backend reads is the uuid of a configured sensor (habitat-lab's source)
    source = (habitat_lab / "tasks" / "rearrange" / "rearrange_sensors.py").read_text()
    uuids = sensor_uuids(source)
    produced = {uuids[lab[name].type] for name in lab if lab[name].type in uuids}
    produced |= {camera.uuid for camera in cameras.values()}
    assert set(OBS_KEYS_HABITAT) <= produced
    assert list(habitat.gym.obs_keys) == list(OBS_KEYS_HABITAT)
    layout = action_layout(cfg, phase)
    assert list(habitat.gym.action_keys) == [key for key, _ in layout]
    assert set(layout) <= {("arm_action", 8), ("base_velocity", 2), ("rearrange_stop", 1)}
    if "arm_action" in habitat.task.actions:
        arm = habitat.task.actions.arm_action
        assert (arm.type, arm.arm_controller, arm.grip_controller,
                arm.arm_joint_dimensionality) == ("ArmAction", "ArmRelPosAction",
                                                  "SuctionGraspAction", 7)


def test_curriculum_actions_stop_call_and_episode_limits(habitat_lab):
    """Pick and place move the arm and base; open fridge adds the stop action and, as upstream,
    succeeds only once the policy calls it; one union action vector of 7 + 1 + 2 + 1."""
    layouts = {}
    for path in CURRICULUM:
        cfg, phase = _compose(path)
        layouts[pathlib.Path(path).stem] = action_layout(cfg, phase)
        steps = {"pick": 300, "place": 300, "open_fridge": 200}[phase.name]
        assert cfg.habitat.environment.max_episode_steps == steps  # the skills' own limits
        if phase.name == "open_fridge":
            assert cfg.habitat.task.success_measure == "art_obj_success"
            assert cfg.habitat.task.measurements.art_obj_success.must_call_stop is True
            assert "does_want_terminate" in cfg.habitat.task.measurements
    assert layouts["pick"] == layouts["place"] == [("arm_action", 8), ("base_velocity", 2)]
    assert layouts["open_fridge"] == [("arm_action", 8), ("base_velocity", 2),
                                      ("rearrange_stop", 1)]
    union = union_action_layout(list(layouts.values()))
    assert [key for key, _ in union] == list(ACTION_KEYS_HABITAT)
    assert sum(size for _, size in union) == 11
    shorter, _ = _compose(CURRICULUM[0], max_episode_steps=50, resolution=64)
    assert shorter.habitat.environment.max_episode_steps == 50
    assert shorter.habitat.simulator.agents.main_agent.sim_sensors.head_rgb_sensor.height == 64


def test_the_curriculum_composes_and_bad_phases_are_one_line_errors(habitat_lab):
    """What palr_trainer.py --check runs for the habitat backend (before torchrun)."""
    cfg = load_config(CONFIG_DIR / "ddppo_palr_fetch.yaml")
    configs, layouts, union = compose_phases(cfg.curriculum.phases, cfg.env, seed=0)
    assert len(configs) == 4 and sum(size for _, size in union) == 11
    assert [c.habitat.task.type for c in configs] == [
        "RearrangePickTask-v0", "RearrangePickTask-v0", "RearrangeOpenFridgeTask-v0",
        "RearrangePlaceTask-v0"]
    bad = [PhaseConfig(name="pick", habitat_config="benchmark/rearrange/skills/pick.yaml"),
           PhaseConfig(name="typo", habitat_config="benchmark/rearrange/skills/pik.yaml")]
    with pytest.raises(ValueError) as err:
        compose_phases(bad, cfg.env, seed=0)
    assert str(err.value).startswith("curriculum.phases[1].habitat_config "
                                     "'benchmark/rearrange/skills/pik.yaml': ")
    assert "\n" not in str(err.value)
    env = load_config(CONFIG_DIR / "ddppo_palr_fetch.yaml",
                      ["env.habitat_overrides=[habitat.task.no_such_key=1]"]).env
    with pytest.raises(ValueError, match=r"^curriculum.phases\[0\]") as err:
        compose_phases(bad[:1], env, seed=0)
    assert "\n" not in str(err.value)


def test_policy_defaults_are_habitat_baselines(habitat_lab):
    """The settings rl_skill.yaml leaves at habitat-baselines' structured defaults."""
    from habitat_baselines.config import default_structured_configs as baselines
    dist = baselines.ActionDistributionConfig(std_init=-1.0)
    ours = PolicyConfig()
    assert dist.use_log_std and dist.clamp_std  # so std_init is unused: log_std_init counts
    assert (ours.log_std_init, ours.log_std_min, ours.log_std_max) == (
        dist.log_std_init, dist.min_log_std, dist.max_log_std) == (0.0, -5, 2)
    assert ours.action_activation == dist.action_activation == "tanh"
    ppo = baselines.PPOConfig()
    assert PPOConfig().use_clipped_value_loss is ppo.use_clipped_value_loss is True
    assert ours.hidden_size == ppo.hidden_size == 512
    assert baselines.DDPPOConfig().backbone == "resnet18"


def test_resnet_computes_habitat_baselines_resnet18(habitat_lab):
    """With habitat-baselines' resnet18 weights copied in, the encoder's backbone (its 2x2 input
    pooling included) gives exactly what habitat-baselines computes on pooled images."""
    import torch
    from torch.nn import functional as F
    from habitat_baselines.rl.ddppo.policy import resnet

    from palr_habitat.palr_resnet_encoder import ResNetEncoder

    torch.manual_seed(0)
    theirs = resnet.resnet18(4, 32, 16)
    ours = ResNetEncoder(4, 64)
    mine = [(n, p) for n, p in ours.named_parameters() if not n.startswith("compression")]
    assert [p.shape for p in theirs.parameters()] == [p.shape for _, p in mine]
    with torch.no_grad():
        for (_, p), q in zip(mine, theirs.parameters()):
            p.copy_(q + 0.1 * torch.randn_like(q))  # non-trivial GroupNorm affines too
            q.copy_(p)
    images = torch.rand(3, 4, 64, 64)
    assert torch.allclose(ours.backbone(images), theirs(F.avg_pool2d(images, 2)), atol=1e-5)
    assert theirs.final_channels == ours.compression_conv.in_channels
    assert ours.output_dim == round(2048 / (2 * 2)) * 2 * 2  # 128 px images: 2 x 2 grid


def test_episode_filter_keeps_the_phase_episodes_and_says_how_many():
    """Episodes carry habitat-lab's RearrangeEpisode fields the filter reads: ``targets``
    (object handle -> transform) and ``goal_receptacles`` ((name, index) pairs)."""
    episodes = [SimpleNamespace(targets={"013_apple_:0000": None}, goal_receptacles=[("sink", 0)]),
                SimpleNamespace(targets={"024_bowl_:0000": None}, goal_receptacles=[("sink", 0)]),
                SimpleNamespace(targets={"013_apple_:0001": None},
                                goal_receptacles=[("fridge", 1)])]
    apple = PhaseConfig(name="pick_apple", target_object="apple")
    kept, line = filter_episodes(episodes, apple, "data/rearrange_easy.json.gz")
    assert kept == [episodes[0], episodes[2]]
    assert line.startswith("phase 'pick_apple': kept 2 of 3 episodes of data/rearrange_easy")
    sink = PhaseConfig(name="place_sink", goal_receptacle="sink")
    assert filter_episodes(episodes, sink, "d")[0] == episodes[:2]
    with pytest.raises(ValueError, match=r"targets found: \['013_apple_:0000', '013_apple_:0001', "
                                         r"'024_bowl_:0000'\]"):
        filter_episodes(episodes, PhaseConfig(name="pick_mug", target_object="mug"), "d")
