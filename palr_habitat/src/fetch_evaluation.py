"""Evaluate a DD-PPO Fetch checkpoint: episodes of every curriculum phase with the saved policy.

The DD-PPO side of ``python -m palr.experiments.evaluate RUN_DIR`` (as habitat-baselines'
``evaluate`` mode plays a checkpoint's policy on its eval split): the run's config is rebuilt from
the checkpoint, the policy (ResNet encoder + recurrent trunk) takes the saved weights, and each
phase of the curriculum is played in one env of the run's backend, seeded from the evaluation's
own seed. Actions are the Gaussian mean (deterministic) unless ``stochastic``; the recurrent
state and previous action start at zero at every episode start, as in training. The score is the
episode's success. Frames for ``--record_video`` are the policy's own head-camera RGB input.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from palr.errors import UsageError

from palr_habitat.ddppo_checkpoint_format import FORMAT, upgrade
from palr_habitat.ddppo_config import ConfigError, TrainConfig, config_from_dict
from palr_habitat.fetch_obs import STATE_KEYS, visual_tensor, state_tensor
from palr_habitat.fetch_vec_env import AutoResetEnv, env_seed, make_env, resolve_backend
from palr_habitat.palr_fetch_policy import FetchPolicy

#: the checkpoint format this module reads (older upgradable ones are upgraded first)
CHECKPOINT_FORMAT = FORMAT

#: ``play(seed, capture)`` -> (return, success), as palr.experiments.evaluate's Play
Play = Callable[[Optional[int], Optional[Callable[[], None]]], Tuple[float, float]]


def rebuild_policy(state: Mapping[str, Any]) -> Tuple[TrainConfig, FetchPolicy, str]:
    """(config, policy with the saved weights, backend) of a DD-PPO checkpoint; UsageError when
    the checkpoint is of another format or its backend cannot run here."""
    state = upgrade(dict(state))
    if state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"the checkpoint is of format {state.get('format')!r}, not "
                         f"{CHECKPOINT_FORMAT!r}; evaluate it with the version that wrote it")
    try:
        cfg = config_from_dict(dict(state["config"]))
    except ConfigError as err:
        raise UsageError(f"the checkpoint's config does not load: {err}") from None
    try:
        backend = resolve_backend(str(state["backend"]))
    except ValueError as err:
        raise UsageError(f"the run trained on the {state['backend']} backend: {err}") from None
    probe = make_env(backend, cfg.curriculum.phases, cfg.env, 0, 0, 0)
    try:
        action_dim = int(probe.action_dim)
    finally:
        probe.close()
    policy = FetchPolicy(action_dim, cfg.env.resolution, cfg.policy)
    policy.load_state_dict(state["policy"])
    return cfg, policy.eval(), backend


class PhasePlayer:
    """Episodes of one phase in one env (made at the first episode, from its seed)."""

    def __init__(self, cfg: TrainConfig, policy: FetchPolicy, backend: str, phase: int,
                 stochastic: bool) -> None:
        self.cfg, self.policy, self.backend, self.phase = cfg, policy, backend, phase
        self.stochastic = stochastic
        self.env: Optional[AutoResetEnv] = None
        self.obs: Optional[Dict[str, np.ndarray]] = None
        self.generator = torch.Generator()

    def _start(self, seed: int) -> None:
        env_cfg = dataclasses.replace(self.cfg.env, num_envs=1, vector="inline")
        self.close()
        self.env = AutoResetEnv(make_env(self.backend, self.cfg.curriculum.phases, env_cfg,
                                         env_seed(seed, 0, 0), self.phase, 0), 0)
        self.obs = self.env.reset()
        self.generator.manual_seed(seed)

    def play(self, seed: Optional[int], capture: Optional[Callable[[], None]]
             ) -> Tuple[float, float]:
        """One episode (the env's first episode from ``seed`` when given)."""
        if seed is not None or self.env is None:
            self._start(0 if seed is None else seed)
        assert self.env is not None and self.obs is not None
        hidden = self.policy.initial_hidden(1, torch.device("cpu"))
        prev = torch.zeros(1, self.env.info()[0])
        masks = torch.zeros(1)  # a new episode: recurrent state and previous action cleared
        while True:
            if capture is not None:
                capture()
            obs = {k: torch.as_tensor(np.asarray(v))[None] for k, v in self.obs.items()}
            actions, _, _, hidden = self.policy.act(
                visual_tensor(obs["rgb"], obs["depth"]), state_tensor({k: obs[k] for k in STATE_KEYS}),
                prev, hidden, masks, self.generator, deterministic=not self.stochastic)
            self.obs, _, done, episode = self.env.step(actions[0].numpy())
            if done:
                assert episode is not None
                return float(episode["return"]), float(episode["success"])
            prev, masks = actions, torch.ones(1)

    def frame(self) -> np.ndarray:
        """The head-camera RGB the policy sees now."""
        assert self.obs is not None
        return np.asarray(self.obs["rgb"], dtype=np.uint8)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def phase_players(state: Mapping[str, Any], stochastic: bool
                  ) -> List[Tuple[int, str, PhasePlayer]]:
    """(index, name, player) of every phase of the checkpoint's curriculum."""
    cfg, policy, backend = rebuild_policy(state)
    return [(k, phase.name, PhasePlayer(cfg, policy, backend, k, stochastic))
            for k, phase in enumerate(cfg.curriculum.phases)]


__all__ = ["CHECKPOINT_FORMAT", "rebuild_policy", "PhasePlayer", "phase_players"]
