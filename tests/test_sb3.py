"""PALR and the agent table's other interventions on real Stable-Baselines3 DQN (CartPole-v1) and
SAC (Pendulum-v1) through palr.sb3.PlasticityCallback."""
import dataclasses

import pytest
import torch

pytest.importorskip("stable_baselines3", reason="needs the sb3 extra (pip install -e .[sb3])")

from stable_baselines3 import DQN, PPO, SAC  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

from palr.agent_table import AGENTS  # noqa: E402
from palr.intervention_configs import check_settings  # noqa: E402
from palr.sb3 import PlasticityCallback, ReplayDiagnostics, attach_sb3  # noqa: E402

SMALL = {"DQN": (DQN, "CartPole-v1", dict(train_freq=1)),
         "SAC": (SAC, "Pendulum-v1", dict(batch_size=64, policy_kwargs=dict(net_arch=[64, 64])))}


def make(algo: str, **kwargs):
    cls, env, defaults = SMALL[algo]
    return cls("MlpPolicy", env, seed=0, learning_starts=50, device="cpu", **{**defaults, **kwargs})


def parameters(model):
    return [p.detach().clone() for p in model.policy.parameters()]


class StepRecorder(BaseCallback):
    """Records every optimizer step's learning rates (before and after the step), SB3's scheduled
    rate at that moment and PALR's current scales, through step hooks registered after PALR's."""

    def __init__(self, plasticity: PlasticityCallback) -> None:
        super().__init__()
        self.plasticity = plasticity
        self.steps = []

    def _on_training_start(self) -> None:
        for net, slot in self.plasticity.handle.context.networks.items():
            slot.optimizer.register_step_pre_hook(self._hook("pre", net))
            slot.optimizer.register_step_post_hook(self._hook("post", net))

    def _hook(self, when, net):
        def hook(optimizer, _args, _kwargs):
            base = self.model.lr_schedule(self.model._current_progress_remaining)
            scales = dict(self.plasticity.handle.intervention("palr").scales.get(net, {}))
            self.steps.append((when, base, scales,
                               {g["name"]: g["lr"] for g in optimizer.param_groups}))
        return hook

    def _on_step(self) -> bool:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["DQN", "SAC"])
def test_measuring_changes_no_number_of_sb3_training(algo):
    """Regrouped optimizers, step hooks and measurements every 5 updates on diagnostic batches
    of the replay buffer: the trained parameters are bit-identical to plain SB3's."""
    plain = make(algo)
    plain.learn(300)
    monitored = make(algo)
    callback = PlasticityCallback(agent="FixedLR", measure_freq=5, diag_batch_size=64)
    monitored.learn(300, callback=callback)
    assert callback.handle.updates == monitored._n_updates == 250
    assert any(k.endswith("/dead") for k in callback.handle.log)
    assert all(torch.equal(a, b) for a, b in zip(parameters(plain), parameters(monitored)))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["DQN", "SAC"])
def test_palr_on_sb3_applies_scaled_learning_rates_at_step_time_and_reinitialises_units(algo):
    """SB3 rewrites every group's lr from its schedule at each train(); every optimizer step runs
    each layer at schedule(t) x PALR's scale, and SB3's rate is back right after the step."""
    model = make(algo, learning_rate=lambda progress: 1e-3 * progress)  # a new base lr each call
    plasticity = PlasticityCallback(agent="PALR", measure_freq=25, diag_batch_size=256,
                                    perturb_threshold=0.0)
    recorder = StepRecorder(plasticity)
    model.learn(400, callback=[plasticity, recorder])
    palr = plasticity.handle.intervention("palr")
    scaled = 0
    for when, base, scales, lrs in recorder.steps:
        assert set(lrs) >= set(scales)  # every probed layer has its own group
        for layer, lr in lrs.items():
            scale = scales.get(layer, 1.0) if when == "pre" else 1.0
            assert lr == pytest.approx(base * scale, rel=1e-12)
            scaled += when == "pre" and scale > 1.0
    assert scaled > 100
    assert len(recorder.steps) == 2 * len(plasticity.handle.networks) * model._n_updates
    assert sum(n for layers in palr.reinit_total.values() for n in layers.values()) > 0


@pytest.mark.slow
def test_redo_on_sb3_dqn_recycles_dormant_units():
    model = make("DQN")
    callback = PlasticityCallback(agent="ReDo", redo_every=25, redo_batch_size=128, tau=0.1)
    model.learn(300, callback=callback)
    assert callback.handle.intervention("redo").recycled > 0


@pytest.mark.slow
def test_l2reg_on_sb3_dqn_penalises_the_q_network_weights():
    """The penalty's gradient reaches SB3's optimizer step: with a strong coefficient the
    Q-network's weight matrices end far smaller than without it (same seed, same steps)."""
    def weight_norm(model):
        return float(sum((p.detach() ** 2).sum() for p in model.policy.q_net.parameters()
                         if p.dim() > 1)) ** 0.5

    plain = make("DQN", learning_rate=1e-3)
    plain.learn(300)
    penalised = make("DQN", learning_rate=1e-3)
    penalised.learn(300, callback=PlasticityCallback(agent="L2Reg", l2_coef=1.0))
    assert weight_norm(penalised) < 0.8 * weight_norm(plain)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["DQN", "SAC"])
@pytest.mark.parametrize("spec", AGENTS, ids=lambda s: s.key)
def test_every_agent_of_the_table_runs_on_sb3(algo, spec):
    """Every agent runs 150 updates; after_update comes once per update; resets and
    shrink-and-perturb act on their schedule; every agent measures (or gets the monitor)."""
    settings = {"measure_freq": 50, "diag_batch_size": 64, "sp_every": 50,
                "reset_every_updates": 100, "redo_every": 50, "redo_batch_size": 64}
    fields = {f.name for config in check_settings(spec) for f in dataclasses.fields(config)}
    callback = PlasticityCallback(agent=spec.index,
                                  **{k: v for k, v in settings.items() if k in fields})
    model = make(algo)
    model.learn(200, callback=callback)
    handle = callback.handle
    assert handle.updates == model._n_updates == 150
    log = handle.log
    names = [iv.name for iv in handle.stack.interventions]
    if "periodic_reset" in names:
        assert log["periodic_reset/resets"] == 1.0
    if "shrink_perturb" in names:
        assert log["shrink_perturb/applied"] == 3.0
    assert any(key.endswith("/erank") for key in log)


def test_bad_settings_fail_when_the_callback_is_built():
    with pytest.raises(ValueError, match="l2_coef not used by palr"):
        PlasticityCallback(agent="PALR", l2_coef=1e-3)
    with pytest.raises(ValueError, match="unknown agent"):
        PlasticityCallback(agent="PALR-PPO-ish")


def test_a_role_no_network_plays_is_refused_before_the_model_changes():
    model = make("DQN")
    optimizer = model.policy.optimizer
    with pytest.raises(ValueError, match="l2reg looks for a network with role policy"):
        attach_sb3(model, ReplayDiagnostics(model, 0), agent="L2Reg", l2_roles=("policy",))
    assert model.policy.optimizer is optimizer and len(optimizer.param_groups) == 1


def test_other_sb3_algorithms_are_refused_in_one_line():
    model = PPO("MlpPolicy", "CartPole-v1", device="cpu", n_steps=64)
    with pytest.raises(ValueError, match="supports DQN and SAC, got PPO"):
        attach_sb3(model, ReplayDiagnostics(model, 0), agent="PALR")


@pytest.mark.slow
def test_measurements_reach_sb3s_logger(tmp_path):
    from stable_baselines3.common.logger import configure

    model = make("DQN")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(300, callback=PlasticityCallback(agent="FixedLR", measure_freq=20,
                                                 diag_batch_size=64))
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"plasticity/q/q_net.0/dead", "plasticity/q/q_net.2/erank",
            "plasticity/q/output/output_abs"} <= set(header)


@pytest.mark.slow
def test_callback_state_carries_palrs_baselines_and_counts_into_a_new_run():
    first = PlasticityCallback(agent="PALR", measure_freq=25, diag_batch_size=64)
    make("DQN").learn(200, callback=first)
    state = first.state_dict()
    baseline = state["handle"]["stack"]["palr"]["erank0"]
    resumed = PlasticityCallback(agent="PALR", measure_freq=25, diag_batch_size=64)
    resumed.load_state_dict(state)  # before training: applied when it starts
    make("DQN").learn(200, callback=resumed)
    assert resumed.handle.updates == first.handle.updates + 150 == 300
    assert resumed.handle.intervention("palr").erank0 == baseline  # no new baseline taken
