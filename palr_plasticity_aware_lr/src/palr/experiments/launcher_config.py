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
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from palr.config import (ConfigError, build, check_keys, convert, merge, nest, parse_override, read_yaml,
                         section_of, to_dict, to_yaml)
from palr.checks import check_choice
from palr.errors import UsageError

__all__ = ["add_config_args", "flag_section", "write_back", "FlagBindings", "resolve_tree",
           "explicit_interventions", "print_tree", "GIVEN", "SWEEP"]

#: the section of the run-level settings (which runs exist and where: agents, seeds, output
#: directory, parallel jobs); never part of a run's identity
SWEEP = "sweep"

#: the Python type each argparse ``type`` of :mod:`palr.experiments.cli` produces
_VALUE_TYPES: Dict[str, type] = {
    "positive_int": int, "non_negative_int": int, "int": int, "integer": int,
    "positive_float": float, "unit_float": float, "finite_float": float, "float": float,
    "number": float,
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


def _flag_checks(action: argparse.Action) -> List[Callable[[str, Any], None]]:
    """The :mod:`palr.checks` checks of the flag ``action``: its argparse type's range check
    (:func:`palr.experiments.cli.checked_number`) and its choices."""
    checks: List[Callable[[str, Any], None]] = []
    if getattr(action.type, "check", None) is not None:
        checks.append(action.type.check)  # type: ignore[union-attr]
    if action.choices is not None:
        choices = tuple(action.choices)
        checks.append(lambda name, value: check_choice(name, value, choices))
    return checks


def _plain_default(value: Any) -> Any:
    """A flag's value (or default) as a config value: lists as tuples, paths as text."""
    if isinstance(value, list):
        return tuple(value)
    return str(value) if isinstance(value, pathlib.PurePath) else value


def flag_section(name: str, actions: Sequence[argparse.Action], doc: str) -> Type[Any]:
    """A dataclass whose fields are the flags ``actions`` (field = the flag's dest, its type,
    default and checks the flag's), documented by ``doc`` and the flags' help."""
    checks = {a.dest: _flag_checks(a) for a in actions}
    fields = [(a.dest, _field_type(a), dataclasses.field(default=_plain_default(a.default)))
              for a in actions]

    def post_init(self: Any) -> None:
        for dest, dest_checks in checks.items():
            value = getattr(self, dest)
            if value is None or isinstance(value, bool):
                continue
            for item in value if isinstance(value, (tuple, list)) else [value]:
                for check in dest_checks:
                    check(dest, item)

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
        default the dest); parsing records which of them were given (:data:`GIVEN`).

        A bound flag only reads its value's type: its range and choices are the field's to
        check (the section's ``__post_init__``), as for ``--set`` and ``--config``. Build
        :func:`flag_section` sections before binding their flags."""
        from palr.experiments.cli import CASTS
        for action in actions:
            name = (fields or {}).get(action.dest, action.dest)
            self.paths[action.dest] = f"{section}.{name}"
            self.flags[action.dest] = action.option_strings[-1]
            action.__class__ = _recording(type(action))
            if getattr(action.type, "check", None) is not None:
                action.type = CASTS[action.type.cast]  # type: ignore[union-attr]
            if action.choices is not None:
                action.metavar = action.metavar or "{" + ",".join(map(str, action.choices)) + "}"
                action.choices = None


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
    file_label = ""
    if getattr(args, "config", None):
        path = pathlib.Path(args.config).resolve()
        try:
            data = read_yaml(path, root,
                             "pass an existing YAML file to --config (--print_config shows one)",
                             owned=bindings.reserved)
        except ConfigError as err:
            raise _with_fix(err, bindings) from None
        file_label = f"{path.name}: "
    sets: Dict[str, Any] = {}
    origin: Dict[str, str] = {}  # dotted path -> what set it, as the user wrote it
    for item in getattr(args, "set", None) or []:
        if "." not in item.split("=", 1)[0]:
            key, value = _flat_intervention(item)
            sets[f"interventions.{key}"] = value
            origin[f"interventions.{key}"] = key
            continue
        parts, value = parse_override(item)
        try:
            check_keys(nest(parts, value), root, "", "--set ", bindings.reserved)
        except ConfigError as err:
            raise _with_fix(err, bindings, err.key) from None
        sets[".".join(parts)] = value
        origin[".".join(parts)] = ".".join(parts)
    given = getattr(args, GIVEN, None) or set()
    for dest, path in bindings.paths.items():
        value = getattr(args, dest, None)
        if dest not in given or value is None:
            continue
        try:
            value = convert(_plain_default(value), _hint(root, path), bindings.flags[dest])
        except ConfigError as err:
            if err.key is not None:
                err.key = path  # convert named it by the flag
            raise _with_fix(err, bindings, bindings.flags[dest]) from None
        if path in sets and convert(sets[path], _hint(root, path), path, "--set ") != value:
            raise UsageError(f"{bindings.flags[dest]} {_show(value)} and --set "
                             f"{path}={_show(sets[path])} set {path} to different values; "
                             "give it once")
        sets[path] = value
        origin[path] = bindings.flags[dest]
    for path, value in sets.items():
        data = merge(data, nest(path.split("."), value))
    lower = dict(defaults or {})
    if preset is not None:
        lower = merge(lower, preset(data))
    data = merge(lower, data)
    try:
        return build(root, data), data
    except ConfigError as err:
        if err.key is not None:  # a setting out of its range: name the flag, key or file
            raise _with_fix(err, bindings, origin.get(err.key, file_label + err.key)) from None
        section = str(err).split(":", 1)[0].split(".", 1)[0]  # a check across fields
        label = bindings.labels.get(section, section)
        raise ConfigError(f"{err}; change the {label} settings (flags, --set {section}.KEY=VALUE "
                          "or --config; see --print_config)") from None


def _with_fix(err: ConfigError, bindings: FlagBindings, label: Optional[str] = None
              ) -> ConfigError:
    """A setting out of its range (``err.key``) as the one text of every way to set it:
    ``<label> must be ...; change <key> (<flag>, --set <key>=VALUE or --config; ...)``, where
    ``label`` is what the user wrote (default: ``err``'s own text). Other errors: ``err``."""
    if err.key is None:
        return err
    text = str(err) if label is None else f"{label} {err.problem}"
    return ConfigError(f"{text}; {_fix(bindings, err.key)}", err.key, err.problem)


def _fix(bindings: FlagBindings, key: str) -> str:
    """How to change the setting ``key``: its flag (if it has one), ``--set`` or the file."""
    flags = [bindings.flags[dest] for dest, path in bindings.paths.items() if path == key]
    return (f"change {key} ({''.join(f + ', ' for f in flags)}--set {key}=VALUE or --config; "
            "see --print_config)")


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

