"""Activation probes: find a network's hidden layers, their producers and consumers, and capture
their post-activation outputs only when asked.

A *probed layer* is an activation module (ReLU family, tanh, ...) fed by a Linear or Conv2d
*producer*, possibly through per-unit modules (BatchNorm, Dropout, Identity). Its *consumers* are
every Linear/Conv2d that reads its output, possibly through per-unit modules, pooling or a flatten.
The graph comes from ``torch.fx`` tracing (falling back to registration order inside
``nn.Sequential`` containers when a module cannot be traced). A layer is *recyclable* (its units
can be re-initialised without changing the network's output) only if every path from its output
ends in a consumer and nothing but per-unit modules sit between producer and activation: a
residual ``add``, a concat or the network's output make it metrics-only.

Hooks are registered inside ``with probes.capture():`` and removed on exit, so ordinary training
steps pay nothing.
"""
from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import fx, nn

from palr.plasticity import units_matrix

#: Activations whose output can be exactly zero: the dead-unit fraction is defined for them.
EXACT_ZERO_ACTIVATIONS: Tuple[type, ...] = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
#: Every activation the probes attach to.
ACTIVATIONS: Tuple[type, ...] = EXACT_ZERO_ACTIVATIONS + (
    nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid,
    nn.Softplus, nn.PReLU, nn.Hardswish,
)
PRODUCERS: Tuple[type, ...] = (nn.Linear, nn.Conv2d, nn.Conv1d)
#: Modules acting on each unit separately: they keep unit identity and never mix units.
PER_UNIT: Tuple[type, ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d,
                              nn.Identity)
#: Modules that mix units (normalise across them): they keep identity for LR scaling but a unit
#: re-initialisation would change the other units' outputs, so the layer is not recyclable.
UNIT_MIXING: Tuple[type, ...] = (nn.LayerNorm, nn.GroupNorm)
#: Spatial ops between an activation and its consumer that keep channels apart.
CHANNEL_PRESERVING: Tuple[type, ...] = PER_UNIT + (nn.MaxPool2d, nn.AvgPool2d,
                                                   nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_FLATTEN_FUNCS = {torch.flatten}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}


@dataclass
class Consumer:
    """A layer reading a probed layer's units.

    ``flattened`` is true when a flatten sits between a conv activation and this Linear: unit
    (channel) ``c`` then owns input columns ``c*block:(c+1)*block`` with
    ``block = in_features // channels``.
    """

    name: str
    module: nn.Module
    flattened: bool = False


@dataclass
class ProbedLayer:
    """One hidden layer: activation module, its producer, norms in between, and consumers."""

    name: str
    activation_name: str
    activation: nn.Module
    producer_name: Optional[str]
    producer: Optional[nn.Module]
    norms: List[nn.Module] = field(default_factory=list)
    consumers: List[Consumer] = field(default_factory=list)
    recyclable: bool = False

    @property
    def exact_zero(self) -> bool:
        """Whether the dead-unit fraction is defined (ReLU family)."""
        return isinstance(self.activation, EXACT_ZERO_ACTIVATIONS)

    @property
    def num_units(self) -> int:
        if isinstance(self.producer, nn.Linear):
            return self.producer.out_features
        if isinstance(self.producer, (nn.Conv2d, nn.Conv1d)):
            return self.producer.out_channels
        raise ValueError(f"layer {self.name} has no producer")


def _module_of(gm: fx.GraphModule, node: fx.Node) -> Optional[nn.Module]:
    if node.op == "call_module":
        return gm.get_submodule(str(node.target))
    return None


def _is_flatten(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in _FLATTEN_FUNCS) or (
        node.op == "call_method" and node.target in _FLATTEN_METHODS)


def _is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add)
            ) or (node.op == "call_method" and node.target in ("add", "add_"))


def _trace_layers(module: nn.Module) -> List[ProbedLayer]:
    gm = fx.symbolic_trace(module)
    uses: Dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            uses[str(node.target)] = uses.get(str(node.target), 0) + 1
    layers: List[ProbedLayer] = []
    for node in gm.graph.nodes:
        act = _module_of(gm, node)
        if not isinstance(act, ACTIVATIONS):
            continue
        act_name = str(node.target)
        if uses[act_name] > 1:
            raise ValueError(
                f"activation module {act_name!r} is applied {uses[act_name]} times in "
                f"{type(module).__name__}.forward; give every use its own module so probes can "
                "tell the layers apart"
            )
        producer_name, producer, norms, clean_input = _find_producer(gm, node)
        consumers, clean_output = _find_consumers(gm, node)
        layers.append(ProbedLayer(
            name=producer_name if producer_name is not None else act_name,
            activation_name=act_name, activation=act, producer_name=producer_name,
            producer=producer, norms=norms, consumers=consumers,
            recyclable=producer is not None and clean_input and clean_output and bool(consumers),
        ))
    return layers


def _find_producer(gm: fx.GraphModule, act_node: fx.Node
                   ) -> Tuple[Optional[str], Optional[nn.Module], List[nn.Module], bool]:
    node = act_node.args[0] if act_node.args else None
    norms: List[nn.Module] = []
    clean = True
    while isinstance(node, fx.Node):
        mod = _module_of(gm, node)
        if isinstance(mod, PRODUCERS):
            return str(node.target), mod, norms, clean and len(node.users) == 1
        if _is_add(node):  # residual sum: follow the main branch (args[0]); never recyclable
            clean = False
            node = node.args[0]
            continue
        if isinstance(mod, PER_UNIT) or isinstance(mod, UNIT_MIXING):
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                norms.append(mod)
            if isinstance(mod, UNIT_MIXING):
                clean = False
            node = node.args[0] if node.args else None
            continue
        break
    return None, None, [], False


def _find_consumers(gm: fx.GraphModule, act_node: fx.Node) -> Tuple[List[Consumer], bool]:
    consumers: List[Consumer] = []
    clean = True
    frontier: List[Tuple[fx.Node, bool]] = [(act_node, False)]
    while frontier:
        node, flattened = frontier.pop()
        for user in node.users:
            mod = _module_of(gm, user)
            if isinstance(mod, PRODUCERS) and user.args and user.args[0] is node:
                consumers.append(Consumer(str(user.target), mod, flattened))
            elif isinstance(mod, CHANNEL_PRESERVING):
                frontier.append((user, flattened))
            elif isinstance(mod, nn.Flatten) or _is_flatten(user):
                frontier.append((user, True))
            else:
                clean = False
    return consumers, clean


def _sequential_layers(module: nn.Module) -> List[ProbedLayer]:
    """Fallback for untraceable modules: chains inside nn.Sequential containers."""
    layers: List[ProbedLayer] = []
    for seq_name, seq in module.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for i, (child_name, child) in enumerate(children):
            if not isinstance(child, ACTIVATIONS):
                continue
            prefix = f"{seq_name}." if seq_name else ""
            producer_name = producer = None
            for j in range(i - 1, -1, -1):
                if isinstance(children[j][1], PRODUCERS):
                    producer_name, producer = prefix + children[j][0], children[j][1]
                    break
                if not isinstance(children[j][1], PER_UNIT + UNIT_MIXING):
                    break
            act_name = prefix + child_name
            layers.append(ProbedLayer(
                name=producer_name or act_name, activation_name=act_name, activation=child,
                producer_name=producer_name, producer=producer, recyclable=False))
    return layers


class ActivationProbes:
    """Probes on every activation module of ``module``.

    Example::

        probes = ActivationProbes(qnet)
        with probes.capture():
            qnet(obs_batch)
        probes.activations["0"]   # (N x units) output of the ReLU after layer "0"
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        try:
            self.layers: List[ProbedLayer] = _trace_layers(module)
            self.traced = True
        except (fx.proxy.TraceError, TypeError, NotImplementedError, RuntimeError):
            self.layers = _sequential_layers(module)
            self.traced = False
        if not self.layers:
            raise ValueError(
                f"{type(module).__name__} has no activation module to probe; build hidden layers "
                "with activation modules such as nn.ReLU() (functional F.relu calls are invisible)"
            )
        self.activations: Dict[str, torch.Tensor] = {}

    def __iter__(self) -> Iterator[ProbedLayer]:
        return iter(self.layers)

    def layer(self, name: str) -> ProbedLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no probed layer {name!r}; layers: {[l.name for l in self.layers]}")

    @contextlib.contextmanager
    def capture(self) -> Iterator[Dict[str, torch.Tensor]]:
        """Record every probed layer's output (as samples x units) during the block."""
        self.activations = {}
        handles = []
        for layer in self.layers:
            handles.append(layer.activation.register_forward_hook(self._recorder(layer.name)))
        try:
            yield self.activations
        finally:
            for handle in handles:
                handle.remove()

    def _recorder(self, name: str):
        def hook(_module: nn.Module, _inputs: Tuple[torch.Tensor, ...], output: torch.Tensor):
            # clone: a later in-place op must not alter what was captured
            self.activations[name] = units_matrix(output.detach()).clone()
        return hook
