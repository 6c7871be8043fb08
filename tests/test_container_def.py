"""palr_container.def and its checker (python tools/check_def.py): the real file passes, planted
errors are each reported at their line."""
import pathlib
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, load_script

CHECK_DEF = ROOT / "tools" / "check_def.py"
check_def = load_script("tools/check_def.py", "check_def")
check_definition, parse_definition = check_def.check_definition, check_def.parse_definition
DEF = ROOT / "palr_container.def"
HAS_SHELLCHECK = shutil.which("shellcheck") is not None

GOOD = """\
Bootstrap: docker
From: ubuntu:22.04

%files
    pyproject.toml /opt/palr/pyproject.toml

%environment
    export MUJOCO_GL=egl

%post
    set -eu
    echo built > /opt/built

%test
    test -f /opt/built
"""


def check(tmp_path, text, **kwargs):
    path = tmp_path / "x.def"
    path.write_text(text)
    return check_definition(path, root=ROOT, **kwargs)


def run_cli(*args):
    return subprocess.run([sys.executable, str(CHECK_DEF), *args],
                          capture_output=True, text=True, timeout=120)


def test_the_project_definition_passes():
    proc = run_cli(str(DEF))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{DEF}: OK"


def test_the_project_definition_has_what_the_image_needs():
    stages, problems = parse_definition(DEF.read_text())
    assert problems == [] and len(stages) == 1
    header = {k: v for k, (v, _) in stages[0].header.items()}
    assert header["bootstrap"] == "docker" and header["from"]
    sections = {s.name: "\n".join(s.body) for s in stages[0].sections}
    assert {"labels", "help", "files", "environment", "post", "runscript", "test"} <= set(sections)
    env = sections["environment"]
    for var in ("MUJOCO_GL=egl", "PYOPENGL_PLATFORM=egl", "EGL_PLATFORM=surfaceless",
                "/opt/miniforge3/envs/palr_plasticity/bin"):
        assert var in env
    post = sections["post"]
    for piece in ("python=3.10", "python=3.9", "habitat-sim=0.3.2 withbullet headless",
                  "metaworld", "torch==${TORCH_VERSION}", "HABITAT_LAB_VERSION=0.3.220241205",
                  "-e \"/opt/palr[cw]\"", "-e /opt/palr"):
        assert piece in post, piece
    # no build recipe for fetched third-party code (jbw): only comments may mention it
    code = [line for line in post.splitlines() if not line.strip().startswith("#")]
    assert not any("jbw" in line.lower() or "jelly" in line.lower() for line in code)
    assert 'python -c "import palr, metaworld, torch' in sections["test"]
    assert "/opt/miniforge3/envs/palr_habitat/bin/python -c \"import habitat_sim, habitat, palr_habitat" \
        in sections["test"]


def test_a_minimal_good_definition_passes(tmp_path):
    assert check(tmp_path, GOOD) == []


@pytest.mark.parametrize("shellcheck", ["auto", None], ids=["shellcheck", "sh-n"])
def test_planted_errors_are_each_reported_at_their_line(tmp_path, shellcheck):
    if shellcheck == "auto" and not HAS_SHELLCHECK:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    bad = GOOD.replace("Bootstrap: docker\n", "")                           # missing Bootstrap
    bad = bad.replace("    pyproject.toml /opt", "    no_such_file.txt /opt")   # missing source
    bad = bad.replace("    set -eu\n", "    if [ -f /x ]; then\n")              # if without fi
    bad += "\n%bogus\n    hello\n"                                           # unknown section
    problems = check(tmp_path, bad, shellcheck=shellcheck)
    lines = {p.line: p.message for p in problems}
    text = "\n".join(f"{p.line}: {p.message}" for p in problems)
    assert "missing 'Bootstrap:'" in lines.get(1, ""), text
    assert "'no_such_file.txt' does not exist" in lines.get(4, ""), text
    assert any(p.message.startswith("%post:") and 9 <= p.line <= 12 for p in problems), text
    assert "unknown section %bogus" in lines.get(16, ""), text


def test_header_and_section_mistakes(tmp_path):
    cases = {
        "Bootstrap: dockr\nFrom: x\n%post\n    true\n": "unknown bootstrap agent 'dockr'",
        "Bootstrap: docker\n%post\n    true\n": "needs a non-empty 'From:'",
        "Bootstrap: docker\nFrom: x\nColour: red\n%post\n    true\n": "unknown header keyword 'colour'",
        "Bootstrap: docker\nFrom: x\n%post\n    true\n%post\n    true\n": "duplicate section %post",
        "Bootstrap: docker\nFrom: x\n%apprun\n    true\n": "%apprun needs an app name",
        "Bootstrap: docker\nFrom: x\n%files from builder\n    /a /b\n": "name one stage",
        "Bootstrap: docker\nFrom: x\n%files\n    a b c\n": "has 3 fields",
    }
    for text, message in cases.items():
        problems = check(tmp_path, text, shellcheck=None)
        assert any(message in p.message for p in problems), (text, problems)


def test_multistage_and_bash_sections(tmp_path):
    text = ("Bootstrap: docker\nFrom: x\nStage: build\n%post\n    true\n"
            "Bootstrap: docker\nFrom: y\nStage: final\n%files from build\n    /opt/a /opt/a\n"
            "%post -c /bin/bash\n    arr=(1 2)\n    echo \"${arr[@]}\"\n")
    assert check(tmp_path, text, shellcheck=None) == []
    if HAS_SHELLCHECK:
        assert check(tmp_path, text) == []
        # the same bash array in a plain (sh) %post is an error
        problems = check(tmp_path, text.replace("%post -c /bin/bash", "%post"))
        assert any("%post" in p.message and p.line == 13 for p in problems), problems


def test_cli_exit_codes(tmp_path):
    bad = tmp_path / "bad.def"
    bad.write_text(GOOD + "\n%nonsense\n")
    proc = run_cli("--root", str(ROOT), str(bad))
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines() == [f"{bad}:17: unknown section %nonsense; valid: "
                                                + proc.stdout.split("valid: ", 1)[1].strip()]
    assert run_cli().returncode == 2
    assert run_cli(str(tmp_path / "missing.def")).returncode == 2
    assert run_cli("--severity", "loud", str(DEF)).returncode == 2
