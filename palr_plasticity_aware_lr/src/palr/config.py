"""One configuration system: typed, docstringed, nested dataclasses built from plain mappings.

A config is a tree of dataclasses (the schema: each field's type hint and docstring). It is built
from a mapping, which comes from defaults, YAML files and dotted overrides, in that order:

- a YAML file is a mapping whose sections mirror the tree; ``base: other.yaml`` (a path relative
  to the file, or a list of them) includes other files first, and the including file's values
  override theirs key by key (lists are replaced, not concatenated);
- ``--set section.key=value`` overrides (the value parsed as YAML) are applied last.

Conversion is strict, in the manner of structured configs (Hydra/OmegaConf's typed dataclass
schemas): an unknown key or a value of the wrong type is a one-line :class:`ConfigError` naming
where it came from and the key's dotted path, the valid keys or the expected type, e.g.
``c.yaml: ppo.num_stepz: unknown key; valid keys under 'ppo': clip_param, ...``; a key a section
renamed (its ``RENAMED`` class attribute, ``{old: new}``) names the new one. Integers may be
written ``50_000_000`` or ``5.0e7`` (an integral float), numbers ``1e-4`` (which YAML 1.1 reads as
text); booleans must be ``true``/``false``; a text field takes an integer as its digits (an
agent index: ``agents: [0, 4]``). Ranges are checked in ONE place: each dataclass's
``__post_init__`` (with :mod:`palr.checks`), run when the tree is built; a
:class:`palr.checks.SettingError` is reported as a ConfigError naming the key's dotted path
(``ppo.gamma must be a finite number in [0.0, 1.0], got 1.5``), another ``ValueError`` (a check
across fields) naming the section.

Torch-free and Python 3.9-compatible: launchers check their input before importing torch.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import typing
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import yaml

from palr.checks import SettingError
from palr.errors import UsageError

__all__ = ["ConfigError", "type_name", "describe", "convert", "build", "merge", "check_keys",
           "read_yaml", "parse_override", "nest", "apply_overrides", "load", "to_dict",
           "to_yaml", "section_of"]

T = TypeVar("T")


class ConfigError(UsageError):
    """A bad configuration file or override; the message is one line naming the key's path.

    Attributes:
        key: the dotted path of a setting out of its range (None for other errors).
        problem: what is wrong with it (``must be a positive integer, got 0``).
    """

    def __init__(self, message: str, key: Optional[str] = None, problem: str = "") -> None:
        super().__init__(message)
        self.key, self.problem = key, problem


def type_name(tp: Any) -> str:
    """The expected type of a field in words (``an integer``, ``a list of a number``, ...)."""
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        names = " or ".join(type_name(a) for a in args)
        return f"{names} or null" if type(None) in typing.get_args(tp) else names
    if origin in (list, List, tuple, Tuple):
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if origin in (dict, Dict) or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def describe(value: Any) -> str:
    """A short repr of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number_text(value: Any) -> Any:
    """``"1e-4"`` -> 1e-4: YAML 1.1 reads exponents without a dot as text."""
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value


def convert(value: Any, tp: Any, path: str, where: str = "") -> Any:
    """``value`` checked against (and converted to) type ``tp``; raises ConfigError naming
    ``where`` (a file or ``--set``) and the dotted ``path``."""
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(tp)):
            return None
        for arg in args[:-1]:  # the first type the value converts to
            try:
                return convert(value, arg, path, where)
            except ConfigError:
                pass
        try:
            return convert(value, args[-1], path, where)
        except ConfigError as err:
            if err.key is not None:  # the right type, out of range (not finite)
                raise
            raise ConfigError(f"{where}{path}: expected {type_name(tp)}, got "
                              f"{describe(value)}") from None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{path}: expected a mapping, got {describe(value)}")
        return build(tp, value, path, where)
    if origin in (list, List, tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}{path}: expected {type_name(tp)}, got {describe(value)}")
        item_tp = typing.get_args(tp)[0]
        items = [convert(v, item_tp, f"{path}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if origin in (tuple, Tuple) else items
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{path}: expected a mapping, got {describe(value)}")
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        value = _number_text(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # worded as palr.checks words it
                problem = f"must be a finite number, got {value}"
                raise ConfigError(f"{where}{path} {problem}", path, problem)
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # YAML's 4 for "4"
            return str(value)
    elif tp is Any:
        return value
    raise ConfigError(f"{where}{path}: expected {type_name(tp)}, got {describe(value)}")


def _unknown(where: str, sub: str, path: str, names: Sequence[str], cls: Any = None
             ) -> ConfigError:
    renamed = getattr(cls, "RENAMED", {}).get(sub.rsplit(".", 1)[-1])
    if renamed:
        new = f"{path}.{renamed}" if path else renamed
        return ConfigError(f"{where}{sub}: renamed {new}; write {new} instead")
    section = f"under '{path}'" if path else "at the top level"
    return ConfigError(f"{where}{sub}: unknown key; valid keys {section}: {', '.join(names)}")


def build(cls: Type[T], data: Mapping[str, Any], path: str = "", where: str = "") -> T:
    """The dataclass ``cls`` from the mapping ``data`` (missing keys keep their defaults),
    converted field by field and validated by each dataclass's ``__post_init__``."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: Dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in names:
            raise _unknown(where, sub, path, names, cls)
        kwargs[key] = convert(value, hints[key], sub, where)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except SettingError as err:  # a range check of __post_init__ (palr.checks)
        key = f"{path}.{err.name}" if path else err.name
        problem = f"must be {err.requirement}, got {err.value!r}"
        raise ConfigError(f"{where}{key} {problem}", key, problem) from None
    except ValueError as err:  # a check across fields of __post_init__
        raise ConfigError(f"{where}{path or cls.__name__}: {err}") from None


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> Dict[str, Any]:
    """Deep merge of mappings (``over`` wins); lists are replaced, not concatenated."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def check_keys(data: Mapping[str, Any], cls: Any, path: str = "", where: str = "",
               owned: Mapping[str, str] = {}) -> None:
    """Unknown-key and type errors of one mapping's own values (before merging), so an error is
    reported against the file or override that has it. ``owned``: dotted paths a launcher sets
    from its own flags (path -> the flag): refused by name, and not listed as valid keys."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)
             if (f"{path}.{f.name}" if path else f.name) not in owned]
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if sub in owned:
            raise ConfigError(f"{where}{sub} is set by {owned[sub]}, not by --set or --config; "
                              f"use {owned[sub]}")
        if key not in names:
            raise _unknown(where, sub, path, names, cls)
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            check_keys(value, hints[key], sub, where, owned)
        else:
            convert(value, hints[key], sub, where)


def read_yaml(path: pathlib.Path, root: Any, missing_hint: str,
              empty_hint: Optional[str] = None,
              chain: Tuple[pathlib.Path, ...] = (), owned: Mapping[str, str] = {}
              ) -> Dict[str, Any]:
    """The merged mapping of the YAML file ``path`` and its ``base`` includes, each file's keys
    checked against the dataclass ``root`` (``owned`` as for :func:`check_keys`).

    Args:
        missing_hint: the fix named when the file does not exist.
        empty_hint: when given, an empty file is an error naming this fix (where defaults alone
            would start a full-size run); otherwise it means "the defaults".
    """
    where = f"{path.name}: "
    if path in chain:
        raise ConfigError(f"{where}base: include cycle "
                          f"{' -> '.join(p.name for p in chain + (path,))}")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; {missing_hint}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{where}malformed YAML at{line}: {problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({err}); "
                          f"{missing_hint}") from None
    if data is None or data == {}:
        if empty_hint is not None:
            raise ConfigError(f"config file {str(path)!r} is empty; {empty_hint}")
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}expected a mapping of sections at the top level, got "
                          f"{describe(data)}")
    bases = data.pop("base", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{where}base: expected a file name or a list of file names")
    merged: Dict[str, Any] = {}
    for name in bases:
        merged = merge(merged, read_yaml((path.parent / name).resolve(), root, missing_hint,
                                         empty_hint, chain + (path,), owned))
    check_keys(data, root, "", where, owned)
    return merge(merged, data)


def parse_override(text: str) -> Tuple[List[str], Any]:
    """``"ppo.num_steps=16"`` -> (["ppo", "num_steps"], 16); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def nest(parts: Sequence[str], value: Any) -> Dict[str, Any]:
    """``(["a", "b"], 1)`` -> ``{"a": {"b": 1}}``."""
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], root: Any
                    ) -> Dict[str, Any]:
    """``data`` with every ``SECTION.KEY=VALUE`` of ``overrides`` merged in, each checked
    against the dataclass ``root`` (errors say ``--set <key>: ...``)."""
    out = dict(data)
    for text in overrides:
        parts, value = parse_override(text)
        try:
            check_keys(nest(parts, value), root, "", "--set ")
        except ConfigError as err:
            raise _out_of_range(err, err.key) if err.key is not None else err from None
        out = merge(out, nest(parts, value))
    return out


def _out_of_range(err: ConfigError, label: str) -> ConfigError:
    """A value out of its range (``err.key``) named as it was given (``label``), with the fix."""
    return ConfigError(f"{label} {err.problem}; change {err.key} (--set {err.key}=VALUE or the "
                       "config file)", err.key, err.problem)


def load(root: Type[T], path: Optional[Union[str, pathlib.Path]] = None,
         overrides: Sequence[str] = (), defaults: Optional[Mapping[str, Any]] = None,
         missing_hint: str = "pass an existing YAML file to --config",
         empty_hint: Optional[str] = None) -> T:
    """The validated tree of ``root``: ``defaults`` < the YAML file ``path`` < ``overrides``.

    A value out of its range is named as it was given, with the fix:
    ``ppo.gamma must be ..., got 1.5; change ppo.gamma (--set ppo.gamma=VALUE or the config
    file)`` (from ``--set``), ``c.yaml: ppo.gamma must be ...; ...`` (from the file)."""
    data: Dict[str, Any] = dict(defaults or {})
    where = ""
    if path is not None:
        path = pathlib.Path(path).resolve()
        data = merge(data, read_yaml(path, root, missing_hint, empty_hint))
        where = f"{path.name}: "
    data = apply_overrides(data, overrides, root)
    try:
        return build(root, data, "", where)
    except ConfigError as err:
        if err.key is None:
            raise
        given = {".".join(parse_override(text)[0]) for text in overrides}
        raise _out_of_range(err, err.key if err.key in given else f"{where}{err.key}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(tree: Any) -> Dict[str, Any]:
    """Plain nested dict of a config tree (tuples become lists), for records and YAML."""
    return _plain(dataclasses.asdict(tree))


def to_yaml(tree: Any) -> str:
    """The tree as YAML, in field order (what ``--print_config`` shows; loadable by
    :func:`load`)."""
    data = tree if isinstance(tree, dict) else to_dict(tree)
    return yaml.safe_dump(_plain(data), sort_keys=False, default_flow_style=False)


def section_of(root: Any, name: str) -> Any:
    """The dataclass type of section ``name`` of the tree type ``root``."""
    return typing.get_type_hints(root)[name]
