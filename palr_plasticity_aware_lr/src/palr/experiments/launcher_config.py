"""The launchers' config tree: ``--config FILE.yaml``, dotted ``--set`` and flag shorthands.

Every launcher (CartPole, permuted CartPole, JBW, Continual World) describes what it trains as
one tree of dataclasses (:mod:`palr.config`): the algorithm's config (``dqn`` / ``sac``), the
environment and schedule settings and ``interventions`` (every intervention setting,
:class:`palr.intervention_configs.InterventionSettings`). Its values come, lowest first, from the
launcher's defaults, the ``--config`` YAML file, ``--set SECTION.FIELD=VALUE`` and the
launcher's own flags, which are shorthands for tree fields (``--lr`` is ``dqn.learning_rate``).
A flag and a ``--set`` that give one field different values are a one-line error. A flat
``--set KEY=VALUE`` (no dot) is ``--set interventions.KEY=VALUE``, parsed as before.
``--print_config`` prints the resolved tree as YAML.

Sections made of a launcher's own flags (:func:`flag_section`) take their types, defaults, help
and checks from the flags, so each setting is declared once.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import typing
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Type

from palr.config import (ConfigError, build, check_keys, convert, merge, nest, parse_override, read_yaml,
                         section_of, to_dict, to_yaml)
from palr.errors import UsageError

__all__ = ["add_config_args", "flag_section", "write_back", "FlagBindings", "resolve_tree",
           "explicit_interventions", "print_tree", "GIVEN", "SWEEP"]

#: the section of the run-level settings (which runs exist and where: agents, seeds, output
#: directory, parallel jobs); never part of a run's identity
SWEEP = "sweep"

#: the Python type each argparse ``type`` of :mod:`palr.experiments.cli` produces
_VALUE_TYPES: Dict[str, type] = {
    "positive_int": int, "non_negative_int": int, "int": int, "positive_float": float,
    "unit_float": float, "finite_float": float, "float": float,
}


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--print_config`` (``--set`` is :func:`cli.add_common_run_args`')."""
    parser.add_argument("--config", default=None, metavar="FILE.yaml",
                        help="YAML file of config values (sections as --print_config shows; "
                             "'base: other.yaml' includes another file first); --set and flags "
                             "override it")
    parser.add_argument("--print_config", action="store_true",
                        help="print the resolved config (every settable key with its value, as "
                             "YAML for --config) and exit")


def _field_type(action: argparse.Action) -> Any:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return bool
    if isinstance(action, argparse._StoreConstAction):
        return Optional[bool]
    name = getattr(action.type, "__name__", "")
    item: Any = _VALUE_TYPES.get(name, str)
    if action.nargs in ("+", "*"):
        item = Tuple[item, ...]  # type: ignore[valid-type]
    return Optional[item] if action.default is None else item


def _check_flag_value(action: argparse.Action, name: str, value: Any) -> None:
    """``value`` passes the checks of the flag ``action`` (its argparse type, its choices)."""
    if value is None or isinstance(value, bool):
        return
    values = value if isinstance(value, (tuple, list)) else [value]
    for item in values:
        if callable(action.type) and getattr(action.type, "__name__", "") in _VALUE_TYPES:
            try:
                action.type(str(item))
            except (argparse.ArgumentTypeError, ValueError) as err:
                raise ValueError(f"{name}: {err}") from None
        if action.choices is not None and item not in action.choices:
            raise ValueError(f"{name}: {item!r} is not valid; valid: "
                             f"{', '.join(map(str, action.choices))}")


def _plain_default(value: Any) -> Any:
    """A flag's value (or default) as a config value: lists as tuples, paths as text."""
    if isinstance(value, list):
        return tuple(value)
    return str(value) if isinstance(value, pathlib.PurePath) else value


def flag_section(name: str, actions: Sequence[argparse.Action], doc: str) -> Type[Any]:
    """A dataclass whose fields are the flags ``actions`` (field = the flag's dest, its type,
    default and checks the flag's), documented by ``doc`` and the flags' help."""
    by_name = {a.dest: a for a in actions}
    fields = [(a.dest, _field_type(a), dataclasses.field(default=_plain_default(a.default)))
              for a in actions]

    def post_init(self: Any) -> None:
        for dest, action in by_name.items():
            _check_flag_value(action, dest, getattr(self, dest))

    cls = dataclasses.make_dataclass(name, fields, namespace={"__post_init__": post_init})
    cls.__doc__ = doc + "\n\nAttributes:\n" + "\n".join(
        f"    {a.dest}: {a.help or ''}" for a in actions)
    return cls


def write_back(args: argparse.Namespace, section: Any) -> None:
    """Set each field of the resolved ``section`` on ``args`` (what the launcher's code reads),
    as the flag would have: a path as a path, a list as a list."""
    for field in dataclasses.fields(section):
        value, before = getattr(section, field.name), getattr(args, field.name, None)
        if isinstance(before, pathlib.PurePath) and value is not None:
            value = pathlib.Path(value)
        elif isinstance(value, tuple):
            value = list(value)
        setattr(args, field.name, value)


@dataclasses.dataclass
class FlagBindings:
    """Which launcher flags write which tree fields.

    Attributes:
        root: the tree's dataclass.
        paths: flag dest -> dotted tree path (``lr`` -> ``dqn.learning_rate``).
        flags: flag dest -> the option string users type (``--lr``), for messages.
        reserved: dotted path -> the flag that owns it (``dqn.seed`` -> ``--seeds``); such a
            field is set by the launcher, never by --set or a config file.
        labels: section -> its name in messages (``dqn`` -> ``DQN``).
    """

    root: Type[Any]
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)
    paths: Dict[str, str] = dataclasses.field(default_factory=dict)
    flags: Dict[str, str] = dataclasses.field(default_factory=dict)
    reserved: Dict[str, str] = dataclasses.field(default_factory=dict)

    def bind(self, actions: Sequence[argparse.Action], section: str,
             fields: Optional[Mapping[str, str]] = None) -> None:
        """Bind each of ``actions`` to ``section.<field>`` (``fields``: dest -> field name,
        default the dest); parsing records which of them were given (:data:`GIVEN`)."""
        for action in actions:
            name = (fields or {}).get(action.dest, action.dest)
            self.paths[action.dest] = f"{section}.{name}"
            self.flags[action.dest] = action.option_strings[-1]
            action.__class__ = _recording(type(action))


#: the attribute of a parsed namespace that holds the dests of the bound flags given
GIVEN = "config_flags_given"


def _recording(base: Type[argparse.Action]) -> Type[argparse.Action]:
    """``base`` that also records its dest in the namespace's :data:`GIVEN` set when used (a
    flag given with its default value still names its field)."""
    class Recording(base):  # type: ignore[valid-type, misc]
        def __call__(self, parser: Any, namespace: Any, values: Any,
                     option_string: Optional[str] = None) -> None:
            super().__call__(parser, namespace, values, option_string)
            given = set(getattr(namespace, GIVEN, None) or ())
            setattr(namespace, GIVEN, given | {self.dest})

    Recording.__name__ = base.__name__
    return Recording


def _flat_intervention(item: str) -> Tuple[str, Any]:
    """A flat ``KEY=VALUE`` intervention setting, parsed like the setting's default."""
    from palr.experiments.cli import parse_intervention_setting
    if "=" not in item:
        raise UsageError(f"--set expects KEY=VALUE or SECTION.KEY=VALUE, got {item!r}")
    key, text = item.split("=", 1)
    return key, parse_intervention_setting(key, text)


def _hint(root: Type[Any], path: str) -> Any:
    section, name = path.split(".", 1)
    return typing.get_type_hints(section_of(root, section))[name]


def resolve_tree(args: argparse.Namespace, bindings: FlagBindings,
                 defaults: Mapping[str, Any] = (),
                 preset: Optional[Callable[[Dict[str, Any]], Mapping[str, Any]]] = None
                 ) -> Tuple[Any, Dict[str, Any]]:
    """The validated tree of ``args`` and the mapping it was built from (what was set: the
    launcher's ``defaults``, the ``--config`` file, ``--set`` items and the flags given).

    Args:
        preset: given the merged mapping without defaults, more defaults (e.g. a preset's),
            placed just above ``defaults``.

    Raises:
        UsageError / ConfigError: one line naming the key, the file or the flag.
    """
    root = bindings.root
    data: Dict[str, Any] = {}
    if getattr(args, "config", None):
        data = read_yaml(pathlib.Path(args.config).resolve(), root,
                         "pass an existing YAML file to --config (--print_config shows one)",
                         owned=bindings.reserved)
    sets: Dict[str, Any] = {}
    flat: Dict[str, Any] = {}
    for item in getattr(args, "set", None) or []:
        if "." not in item.split("=", 1)[0]:
            key, value = _flat_intervention(item)
            flat[key] = value
            sets[f"interventions.{key}"] = value
            continue
        parts, value = parse_override(item)
        check_keys(nest(parts, value), root, "", "--set ", bindings.reserved)
        sets[".".join(parts)] = value
    if flat:  # the flat form's range errors, as before: "sigma must be ..."
        from palr.intervention_configs import InterventionSettings
        try:
            InterventionSettings(**flat)
        except ValueError as err:
            raise UsageError(str(err)) from None
    given = getattr(args, GIVEN, None) or set()
    for dest, path in bindings.paths.items():
        value = getattr(args, dest, None)
        if dest not in given or value is None:
            continue
        value = convert(_plain_default(value), _hint(root, path), path,
                        f"{bindings.flags[dest]}: ")
        if path in sets and convert(sets[path], _hint(root, path), path, "--set ") != value:
            raise UsageError(f"{bindings.flags[dest]} {_show(value)} and --set "
                             f"{path}={_show(sets[path])} set {path} to different values; "
                             "give it once")
        sets[path] = value
    for path, value in sets.items():
        data = merge(data, nest(path.split("."), value))
    lower = dict(defaults or {})
    if preset is not None:
        lower = merge(lower, preset(data))
    data = merge(lower, data)
    try:
        return build(root, data), data
    except ConfigError as err:  # a range check: name the section and the ways to change it
        section = str(err).split(":", 1)[0].split(".", 1)[0]
        label = bindings.labels.get(section, section)
        raise ConfigError(f"{err}; change the {label} settings (flags, --set {section}.KEY=VALUE "
                          "or --config; see --print_config)") from None


def explicit_interventions(tree: Any, data: Mapping[str, Any]) -> Dict[str, Any]:
    """The intervention settings that were set (file, --set or flag), with the tree's values:
    what the jobs pass to :func:`palr.interventions.build_stack` and record as overrides."""
    return {key: getattr(tree.interventions, key) for key in data.get("interventions") or {}}


def print_tree(tree: Any, bindings: FlagBindings) -> None:
    """Print the resolved tree as YAML, without the fields other flags own."""
    data = to_dict(tree)
    for path in bindings.reserved:
        section, name = path.split(".", 1)
        data.get(section, {}).pop(name, None)
    print(to_yaml(data), end="")


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)

