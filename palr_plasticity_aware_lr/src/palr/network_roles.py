"""Network roles: how interventions find the networks they act on, whatever the algorithm.

Each algorithm declares the roles of the networks it trains (:data:`ALGO_ROLES`: DQN ``q`` is a
value network; SAC ``actor`` a policy, ``critic`` a value network; PPO ``encoder`` an encoder,
``trunk`` a policy and a value network). Interventions select networks by role, never by name,
so an L2 penalty on "the value networks" means the same on every algorithm.

Torch-free: the launchers check a role selection (``--set networks=...``, ``l2_roles``) before
importing torch or creating anything.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

#: a network that estimates values (DQN Q-net, SAC critics, a PPO trunk's critic head)
VALUE = "value"
#: a network that outputs actions (SAC actor, a PPO trunk's actor head)
POLICY = "policy"
#: a shared feature extractor feeding the heads (PPO's visual encoder)
ENCODER = "encoder"
ROLES: Tuple[str, ...] = (VALUE, POLICY, ENCODER)

#: network name -> the roles it plays
NetworkRoles = Mapping[str, Sequence[str]]

#: the networks each algorithm trains, with their roles (the agents declare exactly these)
ALGO_ROLES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "DQN": {"q": (VALUE,)},
    "SAC": {"actor": (POLICY,), "critic": (VALUE,)},
    "PPO": {"encoder": (ENCODER,), "trunk": (POLICY, VALUE)},
}

__all__ = ["VALUE", "POLICY", "ENCODER", "ROLES", "NetworkRoles", "ALGO_ROLES",
           "MissingNetworkError", "check_role_names", "networks_with_roles"]


class MissingNetworkError(ValueError):
    """An intervention found none of the networks it acts on (a user setting: exit status 2)."""


def check_role_names(setting: str, roles: Optional[Sequence[str]]) -> None:
    """Reject an empty selection or an unknown role name in a config field."""
    if roles is None:
        return
    if len(roles) == 0:
        raise ValueError(f"{setting} names no role; give some of {', '.join(ROLES)}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"{setting}: unknown role(s) {', '.join(map(str, unknown))}; valid roles: "
                         f"{', '.join(ROLES)}")


def networks_with_roles(available: NetworkRoles, wanted: Optional[Sequence[str]], who: str,
                        setting: str) -> List[str]:
    """Names of the networks in ``available`` playing any of the ``wanted`` roles (``None``:
    every network).

    Raises:
        MissingNetworkError: none found; one line naming the roles looked for, what the agent
            trains and the setting to change.
    """
    names = [n for n, roles in available.items()
             if wanted is None or any(r in wanted for r in roles)]
    if not names:
        looked = "any network" if wanted is None else f"a network with role {' or '.join(wanted)}"
        trains = ", ".join(f"{n} ({'+'.join(r)})" for n, r in available.items()) or "nothing"
        has = [role for role in ROLES if any(role in r for r in available.values())]
        raise MissingNetworkError(f"{who} looks for {looked} but this agent trains {trains}; "
                                  f"set {setting} to some of: {', '.join(has)}")
    return names
