"""The 4-phase Fetch curriculum (the original README's table): pick apple, pick bowl, open fridge, place in
sink, each for ``steps_per_phase`` environment steps (all ranks together; originally 50M).

Phases switch silently for the agent (no phase id in the observation); the trainer tells the
intervention stack (logging only) and records every switch in ``<outdir>/curriculum_events.json``::

    {"schema": "palr.curriculum/2", "steps_per_phase": 50000000,
     "phases": ["pick_apple", "pick_bowl", "open_fridge", "place_sink"],
     "events": [{"kind": "start", "phase": 0, "name": "pick_apple", "boundary_step": 0,
                 "env_step": 0, "iteration": 0, "wall_time_s": 0.0, "time": "2026-...Z"},
                {"kind": "switch", "phase": 1, "name": "pick_bowl", "boundary_step": 50000000,
                 "env_step": 50001408, "iteration": 12208, ...}, ...]}

A switch happens at the first PPO-iteration boundary at or after the phase's step budget
(``env_step`` >= ``boundary_step``; DD-PPO collects whole rollouts), so ``env_step`` overshoots
``boundary_step`` by less than one rollout of all ranks.
"""
from __future__ import annotations

import datetime
import pathlib
from typing import Any, Dict, List, Optional, Sequence

from palr.experiments.files import atomic_write_json

from palr_habitat.ddppo_config import PhaseConfig

EVENTS_FILE = "curriculum_events.json"
SCHEMA = "palr.curriculum/2"  # /1 called the iterations ``update``


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FetchCurriculum:
    """Which phase is active after a number of environment steps, and the switch log."""

    def __init__(self, phases: Sequence[PhaseConfig], steps_per_phase: int) -> None:
        if not phases:
            raise ValueError("a curriculum needs at least one phase")
        if steps_per_phase <= 0:
            raise ValueError(f"steps_per_phase must be positive, got {steps_per_phase}")
        self.phases: List[PhaseConfig] = list(phases)
        self.steps_per_phase = int(steps_per_phase)
        self.phase = 0
        self.events: List[Dict[str, Any]] = []

    @property
    def num_phases(self) -> int:
        return len(self.phases)

    @property
    def total_steps(self) -> int:
        return self.steps_per_phase * self.num_phases

    @property
    def current(self) -> PhaseConfig:
        return self.phases[self.phase]

    def phase_at(self, env_steps: int) -> int:
        """The phase whose budget contains ``env_steps`` (the last phase after the end)."""
        if env_steps < 0:
            raise ValueError(f"env_steps must be >= 0, got {env_steps}")
        return min(int(env_steps) // self.steps_per_phase, self.num_phases - 1)

    def start(self, iteration: int = 0, wall_time_s: float = 0.0) -> None:
        """Record the start of phase 0 (only once: a resumed run keeps its events)."""
        if not self.events:
            self._record("start", 0, 0, iteration, wall_time_s)

    def advance(self, env_steps: int, iteration: int, wall_time_s: float) -> Optional[int]:
        """Move to the phase of ``env_steps``; returns the new phase if it changed, else None.

        Phases are never skipped in the log: if one rollout crossed several budgets (tiny
        budgets in tests), every crossed phase gets its own event at the same ``env_step``.
        """
        target = self.phase_at(env_steps)
        if target == self.phase:
            return None
        for phase in range(self.phase + 1, target + 1):
            self._record("switch", phase, env_steps, iteration, wall_time_s)
        self.phase = target
        return target

    def _record(self, kind: str, phase: int, env_steps: int, iteration: int, wall: float) -> None:
        self.events.append({
            "kind": kind, "phase": phase, "name": self.phases[phase].name,
            "boundary_step": phase * self.steps_per_phase, "env_step": int(env_steps),
            "iteration": int(iteration), "wall_time_s": round(float(wall), 3), "time": _now(),
        })

    def to_dict(self) -> Dict[str, Any]:
        return {"schema": SCHEMA, "steps_per_phase": self.steps_per_phase,
                "phases": [p.name for p in self.phases], "events": list(self.events)}

    def write(self, outdir: pathlib.Path) -> pathlib.Path:
        """Atomically write ``<outdir>/curriculum_events.json``."""
        path = pathlib.Path(outdir) / EVENTS_FILE
        atomic_write_json(path, self.to_dict())
        return path

    def state_dict(self) -> Dict[str, Any]:
        return {"phase": self.phase, "events": list(self.events),
                "steps_per_phase": self.steps_per_phase}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if int(state["steps_per_phase"]) != self.steps_per_phase:
            raise ValueError(f"checkpoint has steps_per_phase={state['steps_per_phase']}, the "
                             f"config {self.steps_per_phase}; resume with the run's config")
        self.phase = int(state["phase"])
        self.events = [dict(e) for e in state["events"]]


__all__ = ["FetchCurriculum", "EVENTS_FILE", "SCHEMA"]
