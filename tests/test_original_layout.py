"""The original rlBigWorld layout's module files under palr_plasticity_aware_lr/src import the way
the original README used them (working directory src/) and re-export the package's own objects;
the compositions their docstrings show build the agents they name."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "palr_plasticity_aware_lr" / "src"

#: module -> {name a researcher looks for: "package.module:object" it must be}
EXPECTED = {
    "plasticity_metrics": {
        "dead_neuron_fraction": "palr.plasticity:dead_fraction",
        "dormant_neuron_fraction": "palr.plasticity:dormant_fraction",
        "effective_rank": "palr.plasticity:effective_rank",
        "srank": "palr.plasticity:srank",
        "stable_rank": "palr.plasticity:stable_rank",
        "measure_network": "palr.measure:measure_network",
    },
    "palr_agent": {
        "DQNAgent": "palr.agents.dqn:DQNAgent",
        "DQNConfig": "palr.agents.dqn:DQNConfig",
        "PALR": "palr.interventions.palr:PALR",
        "PALRConfig": "palr.intervention_configs:PALRConfig",
        "build_stack": "palr.interventions:build_stack",
    },
    "palr_sac_agent": {
        "SACAgent": "palr.agents.sac:SACAgent",
        "SACConfig": "palr.agents.sac:SACConfig",
        "cw_schedule": "palr.experiments.continual_world:cw_schedule",
        "TrainingSchedule": "palr.experiments.schedule:TrainingSchedule",
        "PALR": "palr.interventions.palr:PALR",
        "build_stack": "palr.interventions:build_stack",
    },
    "baselines": {
        "DQNAgent": "palr.agents.dqn:DQNAgent",
        "L2Reg": "palr.interventions.l2reg:L2Reg",
        "ShrinkAndPerturb": "palr.interventions.shrink_perturb:ShrinkAndPerturb",
        "PeriodicReset": "palr.interventions.periodic_reset:PeriodicReset",
        "ReDo": "palr.interventions.redo:ReDo",
    },
    "cw_baselines": {
        "SACAgent": "palr.agents.sac:SACAgent",
        "L2Reg": "palr.interventions.l2reg:L2Reg",
        "ShrinkAndPerturb": "palr.interventions.shrink_perturb:ShrinkAndPerturb",
        "PeriodicReset": "palr.interventions.periodic_reset:PeriodicReset",
        "ReDo": "palr.interventions.redo:ReDo",
    },
}

#: module -> intervention classes in the stack its docstring example builds (monitor included)
EXAMPLE_STACK = {
    "palr_agent": ["PALR"],
    "palr_sac_agent": ["PALR"],
    "baselines": ["PlasticityMonitor", "L2Reg"],
    "cw_baselines": ["PlasticityMonitor", "L2Reg"],
}

CHECK = r"""
import importlib, inspect, json, re, sys
import palr
module = importlib.import_module(sys.argv[1])
expected = json.loads(sys.argv[2])
report = {"file": module.__file__, "palr": palr.__file__, "wrong": [], "not_reexported": []}
for name, target in expected.items():
    owner, attr = target.split(":")
    if getattr(module, name, None) is not getattr(importlib.import_module(owner), attr):
        report["wrong"].append(name)
for name in module.__all__:
    obj = getattr(module, name)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and not obj.__module__.startswith("palr."):
        report["not_reexported"].append(name)
report["docstring_names_package"] = "palr." in (module.__doc__ or "")
example = re.search(r"::\n\n((?:    .*\n)+)", module.__doc__ or "")
if example:
    scope = dict(vars(module), obs_dim=39, n_actions=2, act_dim=4)
    exec(compile(inspect.cleandoc(example.group(1)), "docstring", "exec"), scope)
    report["stack"] = [type(i).__name__ for i in scope["agent"].stack.interventions]
print(json.dumps(report))
"""


def import_from_src(module: str) -> dict:
    """Import ``module`` in a fresh interpreter whose working directory is src/, as the original
    README ran things; what :data:`CHECK` found."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", CHECK, module, json.dumps(EXPECTED[module])],
                          cwd=SRC, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_original_module_reexports_the_package(module):
    report = import_from_src(module)
    assert pathlib.Path(report["file"]) == SRC / f"{module}.py"
    assert pathlib.Path(report["palr"]).resolve() == SRC / "palr" / "__init__.py"
    assert report["wrong"] == []
    assert report["not_reexported"] == []  # thin: every class and function is the package's
    assert report["docstring_names_package"]
    assert report.get("stack") == EXAMPLE_STACK.get(module)
