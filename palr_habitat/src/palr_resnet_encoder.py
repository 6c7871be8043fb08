"""The visual encoder of habitat-baselines' PointNavResNetPolicy (Wijmans et al. 2020, DD-PPO):
a ResNet over RGB + depth followed by a spatial compression, written for activation probes.

Layout (``norm="group"``, ``baseplanes`` 32, ``blocks`` 2-2-2-2 is habitat-baselines' resnet18
with GroupNorm of ``baseplanes // 2`` groups; narrower widths for CPU tests)::

    input (N, 4, H, W) -> input_pool (2x2 average: habitat-baselines halves the images first)
    stem_conv 7x7/2 -> stem_norm -> stem_relu -> stem_pool 3x3/2
    layer1..layer4: BasicBlocks (conv1 -> norm1 -> relu1 -> conv2 -> norm2 [+ shortcut] -> relu2),
                    widths baseplanes x 1, 2, 4, 8; stride 2 at the first block of layers 2-4
                    (1x1 conv + norm shortcut there)
    compression: conv 3x3 -> GroupNorm(1 group) -> ReLU with round(compression_size / (h * w))
                 channels over the last stage's h x w grid -> flatten (about compression_size,
                 habitat-baselines: 2048, features)

Every ReLU is its own non-in-place ``nn.ReLU`` module, so :class:`palr.probes.ActivationProbes`
sees each use separately and nothing in-place overwrites a probed output.

What the probes make of it: with ``norm="group"`` every ReLU follows a GroupNorm, which normalises
each channel with the statistics of its group, so re-drawing one filter would change its group
neighbours' outputs: every conv layer is measured and LR-scaled but none is re-initialised (PALR's
perturbation and ReDo change nothing here). With ``norm="none"`` (or ``"batch"``) the inner ReLU of
every block (``layerX.Y.conv1``) is recyclable: its only consumer is ``conv2``. Block outputs
(after the residual add), the stem (it feeds a residual add) and the compression (the network
output) are metrics-only either way.

Initialisation: with GroupNorm, PyTorch's defaults (habitat-baselines never re-initialises its
ResNet). Without normalisation, He-normal convs and the last conv of every residual branch at
zero (Goyal et al. 2017's zero-init residual, Fixup, Zhang et al. 2019): every block starts as the
identity, which keeps the plain-ReLU network trainable without batch statistics.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from palr.probes import ActivationProbes

from palr_habitat.ddppo_config import NORMS


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
    """(N, in_channels, resolution, resolution) images in [0, 1] -> (N, output_dim) features."""

    def __init__(self, in_channels: int = 4, resolution: int = 128, baseplanes: int = 32,
                 blocks: Sequence[int] = (2, 2, 2, 2), norm: str = "group", groups: int = 16,
                 input_pool: int = 2, compression_size: int = 2048) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
        if min(baseplanes, resolution, input_pool, compression_size) <= 0 or not blocks or \
                any(b <= 0 for b in blocks):
            raise ValueError(f"baseplanes, resolution, input_pool, compression_size and blocks "
                             f"must be positive, got {baseplanes}, {resolution}, {input_pool}, "
                             f"{compression_size}, {list(blocks)}")
        self.norm = norm
        self.input_pool: nn.Module = nn.AvgPool2d(input_pool) if input_pool > 1 else nn.Identity()
        self.stem_conv = nn.Conv2d(in_channels, baseplanes, 7, 2, 3, bias=norm == "none")
        self.stem_norm = make_norm(norm, baseplanes, groups)
        self.stem_relu = nn.ReLU()
        self.stem_pool = nn.MaxPool2d(3, 2, 1)
        self.stage_names: List[str] = []
        in_ch = channels = baseplanes
        for i, count in enumerate(blocks):
            channels = baseplanes * (2 ** i)
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(in_ch, channels, stride, norm, groups)]
            layer += [BasicBlock(channels, channels, 1, norm, groups) for _ in range(count - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            self.stage_names.append(f"layer{i + 1}")
            in_ch = channels
        height, width = self._backbone_grid(in_channels, resolution)
        compressed = max(1, int(round(compression_size / (height * width))))
        self.compression_conv = nn.Conv2d(channels, compressed, 3, padding=1,
                                          bias=norm == "none")
        self.compression_norm = make_norm(norm, compressed, 1)
        self.compression_relu = nn.ReLU()
        self.output_shape: Tuple[int, int, int] = (compressed, height, width)
        self.output_dim = compressed * height * width
        if norm != "group":
            self.reset_parameters()

    @torch.no_grad()
    def _backbone_grid(self, in_channels: int, resolution: int) -> Tuple[int, int]:
        """Height and width of the last stage's output for square ``resolution`` images (one
        forward pass in eval mode: no batch statistics are touched)."""
        was_training = self.training
        self.eval()
        try:
            out = self.backbone(torch.zeros(1, in_channels, resolution, resolution))
        finally:
            self.train(was_training)
        return int(out.shape[-2]), int(out.shape[-1])

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

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Input pooling, stem and residual stages: (N, C, H, W) -> (N, 8 baseplanes, h, w)."""
        x = self.stem_pool(self.stem_relu(self.stem_norm(self.stem_conv(self.input_pool(x)))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.compression_relu(self.compression_norm(self.compression_conv(self.backbone(x))))
        return torch.flatten(x, 1)


def encoder_probes(encoder: ResNetEncoder) -> ActivationProbes:
    """Activation probes on every conv layer of the encoder (one per ReLU module)."""
    return ActivationProbes(encoder)


__all__ = ["ResNetEncoder", "BasicBlock", "make_norm", "encoder_probes", "NORMS"]
