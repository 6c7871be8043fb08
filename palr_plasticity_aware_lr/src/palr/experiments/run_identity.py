"""A run is identified by its settings.

Every runner (CartPole, JBW, Continual World, Habitat) describes a run by its *identity*: a plain
dict of every setting that changes what the run trains or records (algorithm and its
hyper-parameters, environment and schedule, the resolved intervention configs, the seed), and
nothing cosmetic (progress bars, TensorBoard, parallel jobs, output paths, checkpoint cadence,
device, log cadence). Its *fingerprint* is a hash of the canonical JSON of the identity; the
*settings fingerprint* leaves the seed out, so the runs of one agent configuration share it.

The identity and both fingerprints are stored in every checkpoint and result. A run resumes, or is
skipped as finished, only when the stored identity equals the requested one; anything else is a
one-line :class:`RunMismatch` naming the settings that differ and the ways out. Merges pool only
runs of one agent with one settings fingerprint (:func:`check_poolable`).
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from palr.errors import UsageError

#: settings that change neither the trajectory nor what a run records
COSMETIC_KEYS = frozenset({
    "progress", "tensorboard", "jobs", "outdir", "run_dir", "checkpoint_every", "device",
    "log_every", "description", "suffix", "label", "no_progress", "no_tensorboard",
    "progress_every", "track", "wandb_project", "wandb_entity",
})
#: identity keys that belong to one agent of a sweep (the rest is shared by all its agents)
AGENT_KEYS = frozenset({"agent_idx", "agent", "interventions", "seed"})

__all__ = ["COSMETIC_KEYS", "REFERENCE_KEYS", "RunMismatch", "canonical", "make_identity",
           "fingerprint", "settings_fingerprint", "identity_fields", "differing_keys",
           "check_same_run", "check_poolable", "check_references"]


class RunMismatch(UsageError):
    """What is on disk was made with other settings than the ones asked for."""


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data: tuples become lists, dict keys strings, floats stay floats
    (non-finite ones become strings, so the JSON is strict)."""
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a run setting must be plain data, got {type(value).__name__}: {value!r}")


def _strip_cosmetic(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_cosmetic(v) for k, v in value.items() if k not in COSMETIC_KEYS}
    if isinstance(value, list):
        return [_strip_cosmetic(v) for v in value]
    return value


def make_identity(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The identity of a run: ``settings`` as canonical plain data, cosmetic keys removed at every
    level. ``settings`` must hold ``domain`` and ``seed``."""
    missing = [k for k in ("domain", "seed") if k not in settings]
    if missing:
        raise ValueError(f"a run identity needs {missing}")
    return _strip_cosmetic(canonical(settings))


def _digest(value: Mapping[str, Any]) -> str:
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(identity: Mapping[str, Any]) -> str:
    """16 hex digits identifying one run (its settings and seed)."""
    return _digest(identity)


def settings_fingerprint(identity: Mapping[str, Any]) -> str:
    """16 hex digits shared by the runs of one configuration (the identity without the seed)."""
    return _digest({k: v for k, v in identity.items() if k != "seed"})


def identity_fields(identity: Mapping[str, Any]) -> Dict[str, Any]:
    """What a checkpoint or a result stores: the identity and both fingerprints."""
    return {"identity": dict(identity), "fingerprint": fingerprint(identity),
            "settings_fingerprint": settings_fingerprint(identity)}


def _flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(value, Mapping):
        out: Dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): value}


def differing_keys(a: Mapping[str, Any], b: Mapping[str, Any],
                   ignore: Iterable[str] = ()) -> List[str]:
    """Dotted keys whose values differ between two identities (``ignore``: top-level keys)."""
    skip = set(ignore)
    fa = _flatten({k: v for k, v in a.items() if k not in skip})
    fb = _flatten({k: v for k, v in b.items() if k not in skip})
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<absent>") != fb.get(k, "<absent>"))


def _describe(keys: Sequence[str], stored: Mapping[str, Any], current: Mapping[str, Any],
              most: int = 4) -> str:
    fs, fc = _flatten(dict(stored)), _flatten(dict(current))
    parts = [f"{k} {fs.get(k, '<absent>')!r} -> {fc.get(k, '<absent>')!r}" for k in keys[:most]]
    if len(keys) > most:
        parts.append(f"and {len(keys) - most} more")
    return ", ".join(parts)


def check_same_run(stored: Optional[Mapping[str, Any]], current: Mapping[str, Any],
                   what: str) -> None:
    """Raise :class:`RunMismatch` unless ``stored`` (the identity found in ``what``: a checkpoint
    or a result file) equals ``current``.

    Args:
        stored: the identity on disk; ``None`` for a file written without one (another program,
            or before runs carried identities).
        current: the identity of the run being started.
        what: the file, named in the message.
    """
    ways_out = ("use a new --outdir for the new settings, or run the original settings again "
                "to resume or reuse it")
    if stored is None:
        raise RunMismatch(f"{what} carries no run settings (made by another program or an older "
                          f"version), so it cannot be resumed or reused safely; {ways_out}")
    keys = differing_keys(stored, current)
    if keys:
        raise RunMismatch(f"{what} belongs to a run with other settings "
                          f"({_describe(keys, stored, current)}); {ways_out}")


def check_poolable(runs: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError unless the runs may be summarised together: every agent's runs share one
    settings fingerprint, and all agents share the settings outside their own (environment,
    algorithm, schedule). Runs without an identity (made before identities existed) pool only with
    each other."""
    with_identity = [r for r in runs if r.get("identity") is not None]
    if not with_identity:
        return
    if len(with_identity) != len(runs):
        old = next(r for r in runs if r.get("identity") is None)
        raise ValueError(f"run {old.get('agent')} seed {old.get('seed')} carries no run settings "
                         "while others do; merge runs made by one version, or rerun it")
    first_of_agent: Dict[str, Mapping[str, Any]] = {}
    for run in with_identity:
        agent = str(run.get("agent"))
        first = first_of_agent.setdefault(agent, run)
        keys = differing_keys(first["identity"], run["identity"], ignore=("seed",))
        if keys:
            raise ValueError(
                f"runs of {agent} were made with different settings (seed {first.get('seed')} vs "
                f"seed {run.get('seed')}: {_describe(keys, first['identity'], run['identity'])});"
                " merge them apart (separate output directories) or rerun with one setting")
    agents = list(first_of_agent.values())
    for run in agents[1:]:
        keys = differing_keys(agents[0]["identity"], run["identity"], ignore=AGENT_KEYS)
        if keys:
            raise ValueError(
                f"{agents[0].get('agent')} and {run.get('agent')} ran different experiments "
                f"({_describe(keys, agents[0]['identity'], run['identity'])}); summarise one "
                "experiment at a time (separate output directories)")


#: identity keys in which a single-task reference run may differ from the runs it is the
#: baseline of: its agent (plain SAC), its seed and its sequence (one task)
REFERENCE_KEYS = AGENT_KEYS | {"sequence"}


def check_references(runs: Sequence[Mapping[str, Any]],
                     references: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError unless every reference run was made with the settings of ``runs`` (the
    main runs of a sweep): their identities must be equal except for :data:`REFERENCE_KEYS`, so
    a forward transfer compares the same budget, network, schedule, evaluation and protocol
    (Wolczyk et al. 2021 train the reference with the continual run's SAC settings)."""
    main = next((r for r in runs if r.get("identity") is not None), None)
    if main is None:
        return
    for ref in references:
        name = (ref.get("tasks") or [{}])[0].get("name")
        where = f"reference run {name} seed {ref.get('seed')}"
        ways_out = ("rerun the references with the main runs' flags plus --reference, or keep "
                    "runs of other settings in another --results_dir")
        if ref.get("identity") is None:
            raise ValueError(f"{where} carries no run settings, so it cannot be checked against "
                             f"the main runs; {ways_out}")
        keys = differing_keys(main["identity"], ref["identity"], ignore=REFERENCE_KEYS)
        if keys:
            raise ValueError(f"{where} was made with other settings than the main runs "
                             f"({_describe(keys, main['identity'], ref['identity'])}); {ways_out}")
