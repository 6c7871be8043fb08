"""Helpers shared by the tests (tests only): loading the repository's stand-alone scripts;
resuming a seed batch after one member's reset."""
from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType
from typing import Any, Callable, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script(relative_path: str, name: str) -> ModuleType:
    """Import a script of the repository that is not in a package (``tools/check_def.py``,
    ``benchmarks/timing.py``) as module ``name``, registered in ``sys.modules``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / relative_path)
    assert spec is not None and spec.loader is not None, relative_path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def resume_after_member_reset(make_learner: Callable[[], Any], updates: int = 3,
                              reset_at: int = 1000) -> Tuple[Any, Any]:
    """``(straight, resumed)``: two seed-batched learners from ``make_learner()`` (member 1's
    stack resets at update ``reset_at``) trained ``updates`` updates, then member 1's reset
    fired at its own update; ``resumed`` is a third learner loaded from a checkpoint of the
    second taken right then. Both then train ``updates`` more updates."""
    straight, first = make_learner(), make_learner()
    for learner in (straight, first):
        for _ in range(updates):
            learner.update()
        learner.stacks[1].after_update(reset_at)  # member 1 only
    resumed = make_learner()
    resumed.load_state_dict(first.state_dict())
    for _ in range(updates):
        straight.update()
        resumed.update()
    return straight, resumed
