"""ResNet-18 visual encoder over RGB + depth (He et al. 2016), written for activation probes.

Layout (ResNet-18 at ``base_width`` 64, ``blocks`` 2-2-2-2; narrower widths for CPU tests)::

    stem_conv 7x7/2 -> stem_norm -> stem_relu -> stem_pool 3x3/2
    layer1..layer4: BasicBlocks (conv1 -> norm1 -> relu1 -> conv2 -> norm2 [+ shortcut] -> relu2),
                    stride 2 at the first block of layers 2-4 (1x1 conv shortcut there)
    pool (global average) -> flatten  -> (N, 8 * base_width)

Every ReLU is its own non-in-place ``nn.ReLU`` module, so :class:`palr.probes.ActivationProbes`
sees each use separately and nothing in-place overwrites a probed output. With ``norm="none"``
(default) or ``"batch"`` the inner ReLU of every block (``layerX.Y.conv1``) is *recyclable*: its
only consumer is ``conv2``, so PALR can re-initialise dead filters there without changing the
network's output. Block outputs (after the residual add), the stem (it feeds a residual add) and
the last stage (the network output) are measured and LR-scaled but never re-initialised.
``norm="group"`` (habitat-baselines' choice) mixes channels, so no conv filter is recyclable.

Without normalisation, the last conv of every residual branch starts at zero (Goyal et al. 2017's
zero-init residual / Fixup, Zhang et al. 2019): every block starts as the identity, which keeps
the 17-layer plain-ReLU network trainable without batch statistics (batch statistics would
differ between acting and learning in PPO).
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from palr.probes import ActivationProbes

NORMS = ("none", "batch", "group")


def make_norm(kind: str, channels: int, groups: int) -> nn.Module:
    """The normalisation after a conv: Identity, BatchNorm2d or GroupNorm."""
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(groups, channels), channels)
    raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual shortcut (ResNet-18/34's block)."""

    def __init__(self, in_channels: int, channels: int, stride: int, norm: str, groups: int
                 ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=norm == "none")
        self.norm1 = make_norm(norm, channels, groups)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=norm == "none")
        self.norm2 = make_norm(norm, channels, groups)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=norm == "none"),
                make_norm(norm, channels, groups))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu2(out + self.downsample(x))


class ResNetEncoder(nn.Module):
    """ResNet over (N, in_channels, H, W) images in [0, 1] -> (N, output_dim) features."""

    def __init__(self, in_channels: int = 4, base_width: int = 64,
                 blocks: Sequence[int] = (2, 2, 2, 2), norm: str = "none", groups: int = 16
                 ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
        if base_width <= 0 or not blocks or any(b <= 0 for b in blocks):
            raise ValueError(f"base_width and blocks must be positive, got {base_width}, "
                             f"{list(blocks)}")
        self.norm = norm
        self.stem_conv = nn.Conv2d(in_channels, base_width, 7, 2, 3, bias=norm == "none")
        self.stem_norm = make_norm(norm, base_width, groups)
        self.stem_relu = nn.ReLU()
        self.stem_pool = nn.MaxPool2d(3, 2, 1)
        stages: List[nn.Module] = []
        channels = base_width
        in_ch = base_width
        for i, count in enumerate(blocks):
            channels = base_width * (2 ** i)
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(in_ch, channels, stride, norm, groups)]
            layer += [BasicBlock(channels, channels, 1, norm, groups) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layer))
            in_ch = channels
        self.stage_names: List[str] = []
        for i, stage in enumerate(stages, start=1):
            self.add_module(f"layer{i}", stage)
            self.stage_names.append(f"layer{i}")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.output_dim = channels
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """He-normal (fan_out) convs as torchvision's ResNet; zero-init residual ends."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                module.weight.fill_(1.0)
                module.bias.zero_()
        for module in self.modules():
            if isinstance(module, BasicBlock):
                if isinstance(module.norm2, (nn.BatchNorm2d, nn.GroupNorm)):
                    module.norm2.weight.zero_()
                else:
                    module.conv2.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem_relu(self.stem_norm(self.stem_conv(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return torch.flatten(self.pool(x), 1)


def encoder_probes(encoder: ResNetEncoder) -> ActivationProbes:
    """Activation probes on every conv layer of the encoder (one per ReLU module)."""
    return ActivationProbes(encoder)


def recyclable_layers(encoder: ResNetEncoder) -> List[str]:
    """Names of the conv layers whose filters PALR may re-initialise."""
    return [layer.name for layer in encoder_probes(encoder) if layer.recyclable]


__all__ = ["ResNetEncoder", "BasicBlock", "make_norm", "encoder_probes", "recyclable_layers",
           "NORMS"]
