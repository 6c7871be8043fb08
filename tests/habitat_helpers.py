"""Observation and encoder helpers for the Habitat tests (tests only)."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from palr_habitat.fetch_obs import observation_shapes
from palr_habitat.palr_resnet_encoder import ResNetEncoder, encoder_probes


def check_observation(obs: Dict[str, np.ndarray], resolution: int) -> None:
    """Raise ValueError unless ``obs`` has exactly the keys, shapes and dtypes of
    :func:`palr_habitat.fetch_obs.observation_shapes`."""
    expected = observation_shapes(resolution)
    if set(obs) != set(expected):
        raise ValueError(f"observation keys {sorted(obs)} differ from {sorted(expected)}")
    for key, (shape, dtype) in expected.items():
        value = np.asarray(obs[key])
        if value.shape != shape or value.dtype != dtype:
            raise ValueError(f"observation {key!r} is {value.shape} {value.dtype}, expected "
                             f"{shape} {dtype}")


def zero_observation(resolution: int) -> Dict[str, np.ndarray]:
    """An all-zero observation of one environment."""
    return {k: np.zeros(s, d) for k, (s, d) in observation_shapes(resolution).items()}


def recyclable_layers(encoder: ResNetEncoder) -> List[str]:
    """Names of the encoder's conv layers whose filters PALR may re-initialise."""
    return [layer.name for layer in encoder_probes(encoder) if layer.recyclable]
