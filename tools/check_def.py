"""Static checker for Apptainer/Singularity definition files, for machines without apptainer.

    python tools/check_def.py palr_container.def            # exit 0: OK, 1: problems, 2: usage

It reads a ``.def`` file the way Apptainer's parser does (``pkg/build/types/parser/deffile.go``
in apptainer/apptainer: a header of ``Key: value`` lines, then sections opened by a line whose
first word starts with ``%``; a new stage starts at every ``Bootstrap:`` line) and reports, one
line per problem (``<file>:<line>: <message>``):

- header: ``Bootstrap`` missing or not a bootstrap agent Apptainer knows; ``From`` (or
  ``MirrorURL``/``OSVersion``) missing where the agent needs it; unknown header keywords;
- sections: unknown names, app sections without an app name, the same section twice in a stage
  (Apptainer silently concatenates them; ``%files`` may repeat), ``%files from <stage>`` naming no
  stage;
- ``%files``: sources that do not exist (relative to ``--root``, default: the .def file's folder,
  which is where ``apptainer build`` is run from in this project), lines with more than 2 fields;
- script sections (``%setup``, ``%post``, ``%environment``, ``%runscript``, ``%test``,
  ``%startscript`` and the app scripts): each is extracted and checked with ``shellcheck -s sh``
  (``-s bash`` for ``%post -c /bin/bash``) when shellcheck is on PATH, else with ``sh -n`` /
  ``bash -n`` (syntax only). Findings are reported at their line in the .def file.

Apptainer's ``%arguments`` defaults are substituted for ``{{ name }}`` before the shell checks.
"""
from __future__ import annotations

import argparse
import glob
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

#: sections of a stage (Apptainer's ``validSections``)
SECTIONS = ("help", "setup", "files", "labels", "environment", "pre", "post", "runscript", "test",
            "startscript", "arguments")
#: SCIF app sections, each followed by an app name
APP_SECTIONS = ("appinstall", "applabels", "appfiles", "appenv", "apptest", "apphelp", "apprun",
                "appstart")
#: sections holding shell code (run by /bin/sh unless ``-c <shell>`` is given)
SCRIPT_SECTIONS = ("setup", "pre", "post", "environment", "runscript", "test", "startscript",
                   "appinstall", "appenv", "apptest", "apprun", "appstart")
#: header keywords (Apptainer's ``validHeaders``; ``OtherURL<N>`` is numbered)
HEADER_KEYS = ("bootstrap", "from", "includecmd", "mirrorurl", "updateurl", "osversion", "include",
               "library", "registry", "namespace", "stage", "product", "user", "regcode",
               "productpgp", "registerurl", "modules", "fingerprints", "confurl", "setopt")
#: bootstrap agents and the header keys each one needs
BOOTSTRAP_NEEDS: Dict[str, Tuple[str, ...]] = {
    "library": ("from",), "docker": ("from",), "docker-archive": ("from",),
    "docker-daemon": ("from",), "oci": ("from",), "oci-archive": ("from",), "oras": ("from",),
    "shub": ("from",), "localimage": ("from",), "yum": ("mirrorurl",), "zypper": (),
    "debootstrap": ("mirrorurl", "osversion"), "arch": (), "busybox": ("mirrorurl",),
    "scratch": (),
}
SHELLCHECK_SEVERITIES = ("error", "warning", "info", "style")

_SECTION_LINE = re.compile(r"^\s*%(\S*)\s*(.*?)\s*$")
_BOOTSTRAP_LINE = re.compile(r"^bootstrap:", re.IGNORECASE)
_TEMPLATE = re.compile(r"{{\s*(\w+)\s*}}")
_SHELLCHECK_GCC = re.compile(r"^.*?:(\d+):(\d+): (\w+): (.*)$")
_SH_N = re.compile(r"^.*?:\s*(?:line\s+)?(\d+):\s*(.*)$")


@dataclass
class Problem:
    """One finding: ``line`` is 1-based in the .def file (0 = the file as a whole)."""

    line: int
    message: str

    def format(self, path: str) -> str:
        return f"{path}:{self.line}: {self.message}"


@dataclass
class Section:
    """A ``%name args`` section and the lines below it (up to the next section)."""

    name: str
    args: str
    line: int
    body: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"%{self.name}" + (f" {self.args}" if self.args else "")


@dataclass
class Stage:
    """One build stage: its header (key -> (value, line)) and its sections in file order."""

    first_line: int
    header: Dict[str, Tuple[str, int]] = field(default_factory=dict)
    sections: List[Section] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.header.get("stage", ("", 0))[0]


def _is_header_key(key: str) -> bool:
    return key in HEADER_KEYS or re.fullmatch(r"otherurl\d+", key) is not None


def parse_definition(text: str) -> Tuple[List[Stage], List[Problem]]:
    """Split a definition into stages, headers and sections; report header/section-name errors."""
    stages: List[Stage] = []
    problems: List[Problem] = []
    stage: Optional[Stage] = None
    section: Optional[Section] = None
    continued: Optional[Tuple[str, str, int]] = None  # header key, value so far, line
    for number, raw in enumerate(text.splitlines(), start=1):
        if _BOOTSTRAP_LINE.match(raw) and (stage is None or stage.sections or "bootstrap" in stage.header):
            stage = Stage(first_line=number)
            stages.append(stage)
            section = None
        if stage is None:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            stage = Stage(first_line=number)
            stages.append(stage)
        words = raw.split()
        if words and words[0].startswith("%"):
            match = _SECTION_LINE.match(raw)
            assert match is not None
            name, args = match.group(1).lower(), match.group(2)
            section = Section(name=name, args=args, line=number)
            stage.sections.append(section)
            if name in APP_SECTIONS:
                if not args:
                    problems.append(Problem(number, f"%{name} needs an app name (e.g. %{name} myapp)"))
            elif name not in SECTIONS:
                problems.append(Problem(number, f"unknown section %{name}; valid: "
                                        + ", ".join("%" + s for s in SECTIONS + APP_SECTIONS)))
            continue
        if section is not None:
            section.body.append(raw)
            continue
        # header
        line = raw.strip()
        if continued is None and (not line or line.startswith("#")):
            continue
        line = line.split("#", 1)[0].strip() if continued is None else line
        if continued is not None:
            key, value, key_line = continued[0], continued[1] + line, continued[2]
            continued = None
        else:
            if ":" not in line:
                problems.append(Problem(number, f"header line {line!r} is not 'Key: value' "
                                        "(or a section is missing its %)"))
                continue
            key, value = (part.strip() for part in line.split(":", 1))
            key, key_line = key.lower(), number
        if value.endswith("\\"):
            continued = (key, value[:-1], key_line)
            continue
        if not _is_header_key(key):
            problems.append(Problem(key_line, f"unknown header keyword {key!r}; valid: "
                                    + ", ".join(HEADER_KEYS)))
            continue
        if key in stage.header:
            problems.append(Problem(key_line, f"header keyword {key!r} given twice (first at line "
                                    f"{stage.header[key][1]})"))
        stage.header[key] = (value, key_line)
    if not stages:
        problems.append(Problem(0, "empty definition file"))
    return stages, problems


def _check_headers(stages: List[Stage]) -> List[Problem]:
    problems: List[Problem] = []
    names = [s.name for s in stages]
    for stage in stages:
        if "bootstrap" not in stage.header:
            problems.append(Problem(stage.first_line, "missing 'Bootstrap:' header (e.g. "
                                    "'Bootstrap: docker' then 'From: ubuntu:22.04')"))
            continue
        agent, line = stage.header["bootstrap"]
        agent = agent.lower()
        if agent not in BOOTSTRAP_NEEDS:
            problems.append(Problem(line, f"unknown bootstrap agent {agent!r}; valid: "
                                    + ", ".join(BOOTSTRAP_NEEDS)))
            continue
        for key in BOOTSTRAP_NEEDS[agent]:
            value = stage.header.get(key, ("", 0))[0]
            if not value:
                problems.append(Problem(line, f"'Bootstrap: {agent}' needs a non-empty "
                                        f"'{key.capitalize() if key != 'osversion' else 'OSVersion'}:' header"))
        if agent == "scratch" and "from" in stage.header:
            problems.append(Problem(stage.header["from"][1], "'Bootstrap: scratch' takes no 'From:'"))
    if len(stages) > 1 and len(set(names)) != len(names):
        problems.append(Problem(stages[0].first_line, "stages need distinct 'Stage:' names"))
    return problems


def _check_sections(stages: List[Stage], root: pathlib.Path) -> List[Problem]:
    problems: List[Problem] = []
    stage_names = {s.name for s in stages if s.name}
    for stage in stages:
        seen: Dict[Tuple[str, str], int] = {}
        for section in stage.sections:
            if section.name == "files":
                problems += _check_files(section, root, stage_names)
                continue
            key = (section.name, section.args.split()[0] if section.name in APP_SECTIONS and section.args else "")
            if key in seen:
                problems.append(Problem(section.line, f"duplicate section {section.label} (first at "
                                        f"line {seen[key]}); Apptainer would concatenate them"))
            else:
                seen[key] = section.line
    return problems


def _check_files(section: Section, root: pathlib.Path, stage_names: set) -> List[Problem]:
    problems: List[Problem] = []
    args = section.args.split()
    if args and args[0].lower() == "from":
        if len(args) != 2 or args[1] not in stage_names:
            problems.append(Problem(section.line, f"%files {section.args}: name one stage "
                                    f"({', '.join(sorted(stage_names)) or 'no stage has a Stage: name'})"))
        return problems  # sources live in the other stage
    if args:
        problems.append(Problem(section.line, f"%files takes no arguments except 'from <stage>', got {section.args!r}"))
    for offset, raw in enumerate(section.body, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        number = section.line + offset
        try:
            fields = shlex.split(line)
        except ValueError as err:
            problems.append(Problem(number, f"%files line cannot be split: {err}"))
            continue
        if len(fields) > 2:
            problems.append(Problem(number, f"%files line has {len(fields)} fields; give 'source [destination]'"))
            continue
        source = fields[0]
        path = pathlib.Path(source) if os.path.isabs(source) else root / source
        if any(ch in source for ch in "*?["):
            found = bool(glob.glob(str(path)))
        else:
            found = path.exists()
        if not found:
            problems.append(Problem(number, f"%files source {source!r} does not exist (relative to {root})"))
    return problems


def _arguments(stages: List[Stage]) -> Dict[str, str]:
    """Defaults from ``%arguments`` (``name=value`` lines), for ``{{ name }}`` templates."""
    values: Dict[str, str] = {}
    for stage in stages:
        for section in stage.sections:
            if section.name == "arguments":
                for raw in section.body:
                    line = raw.strip()
                    if line and not line.startswith("#") and "=" in line:
                        name, value = line.split("=", 1)
                        values[name.strip()] = value.strip().strip("\"'")
    return values


def _section_shell(section: Section) -> str:
    """The shell a script section runs with: sh, unless ``-c /bin/bash`` (etc.) is given."""
    if section.name == "environment":
        return "sh"
    args = section.args.split()
    if "-c" in args and args.index("-c") + 1 < len(args):
        name = os.path.basename(args[args.index("-c") + 1])
        if name in ("bash", "ksh", "dash", "sh"):
            return name
    return "sh"


def _run_shell_check(section: Section, body: str, shellcheck: Optional[str],
                     severity: str) -> List[Problem]:
    problems: List[Problem] = []
    shell = _section_shell(section)
    with tempfile.NamedTemporaryFile("w", suffix=f".{section.name}.sh", delete=False) as handle:
        handle.write(body)
        script = handle.name
    try:
        if shellcheck:
            cmd = [shellcheck, "-s", shell, "-f", "gcc", "-S", severity, script]
            pattern = _SHELLCHECK_GCC
        else:
            interpreter = shutil.which("bash" if shell in ("bash", "ksh") else "sh") or "/bin/sh"
            cmd = [interpreter, "-n", script]
            pattern = _SH_N
        proc = subprocess.run(cmd, capture_output=True, text=True)
        for out in (proc.stdout + proc.stderr).splitlines():
            match = pattern.match(out)
            if match is None:
                if out.strip():
                    problems.append(Problem(section.line, f"{section.label}: {out.strip()}"))
                continue
            # clamp "unexpected end of file" findings to the section's last line
            line = section.line + min(int(match.group(1)), max(len(section.body), 1))
            if shellcheck:
                message = f"{section.label}: shellcheck {match.group(3)}: {match.group(4)}"
            else:
                message = f"{section.label}: {os.path.basename(cmd[0])} -n: {match.group(2)}"
            problems.append(Problem(line, message))
        if proc.returncode != 0 and not problems:
            problems.append(Problem(section.line, f"{section.label}: {' '.join(cmd[:1])} failed "
                                    f"with status {proc.returncode}"))
    finally:
        os.unlink(script)
    return problems


def check_definition(path: pathlib.Path, root: Optional[pathlib.Path] = None,
                     shellcheck: Optional[str] = "auto", severity: str = "style") -> List[Problem]:
    """All problems of the definition file at ``path`` (empty list: it passes).

    Args:
        path: the .def file.
        root: folder that ``%files`` sources are relative to (default: the file's folder).
        shellcheck: path of shellcheck, ``"auto"`` (from PATH; ``sh -n`` when absent) or None
            (syntax check with ``sh -n`` / ``bash -n`` only).
        severity: lowest shellcheck severity reported (error, warning, info, style).
    """
    if severity not in SHELLCHECK_SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SHELLCHECK_SEVERITIES)}, got {severity!r}")
    text = pathlib.Path(path).read_text()
    root = pathlib.Path(root) if root is not None else pathlib.Path(path).resolve().parent
    if shellcheck == "auto":
        shellcheck = shutil.which("shellcheck")
    stages, problems = parse_definition(text)
    problems += _check_headers(stages)
    problems += _check_sections(stages, root)
    arguments = _arguments(stages)
    for stage in stages:
        for section in stage.sections:
            if section.name not in SCRIPT_SECTIONS:
                continue
            body = "\n".join(section.body) + "\n"
            body = _TEMPLATE.sub(lambda m: arguments.get(m.group(1), "TEMPLATE_" + m.group(1)), body)
            problems += _run_shell_check(section, body, shellcheck, severity)
    return sorted(problems, key=lambda p: p.line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python tools/check_def.py",
        description="Check Apptainer/Singularity .def files without apptainer: header, sections, "
                    "%files sources, and every script section with shellcheck (or sh -n).")
    parser.add_argument("deffiles", nargs="+", metavar="DEF", help="definition file(s)")
    parser.add_argument("--root", default=None,
                        help="folder %%files sources are relative to (default: each file's folder)")
    parser.add_argument("--severity", default="style", choices=SHELLCHECK_SEVERITIES,
                        help="lowest shellcheck severity reported (default: style = all)")
    parser.add_argument("--no-shellcheck", action="store_true",
                        help="syntax-check script sections with sh -n / bash -n only")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit status: 0 all files pass, 1 problems (one line each on stdout), 2 bad usage."""
    args = build_parser().parse_args(argv)
    root = pathlib.Path(args.root) if args.root else None
    if root is not None and not root.is_dir():
        print(f"check_def: error: --root {args.root} is not a directory", file=sys.stderr)
        return 2
    shellcheck: Optional[str] = None if args.no_shellcheck else "auto"
    if shellcheck == "auto" and shutil.which("shellcheck") is None:
        print("check_def: note: shellcheck not on PATH; script sections get a syntax check "
              "(sh -n) only (apt-get install shellcheck)", file=sys.stderr)
    status = 0
    for name in args.deffiles:
        path = pathlib.Path(name)
        if not path.is_file():
            print(f"check_def: error: {name}: no such file", file=sys.stderr)
            return 2
        problems = check_definition(path, root=root, shellcheck=shellcheck, severity=args.severity)
        for problem in problems:
            print(problem.format(name))
        if problems:
            status = 1
        else:
            print(f"{name}: OK")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
