"""The evidence study's pipeline (palr.experiments.study) end to end on its seconds-long preset."""
import json

import pytest

from palr.experiments import study


def test_smoke_study_publishes_summary_plots_and_manifest(tmp_path):
    publish = tmp_path / "published"
    (publish / "cartpole").mkdir(parents=True)
    (publish / "cartpole" / "NOTES.md").write_text("kept")
    status = study.main(["--preset", "smoke", "--part", "all", "--workdir", str(tmp_path / "work"),
                         "--publish_dir", str(publish), "--jobs", "1"])
    assert status == 0
    assert (publish / "cartpole" / "NOTES.md").read_text() == "kept"
    for part, merged in (("cartpole", "cartpole_raw_results.json"), ("cw", "cw10_raw_results.json")):
        target = publish / part
        sweep = json.loads((target / merged).read_text())
        assert {run["agent"] for run in sweep["runs"]} == set(sweep["agents"])
        assert len(sweep["runs"]) == 2
        assert "recovery" in (target / "RESULTS_SUMMARY.txt").read_text()
        assert (target / "plots" / "learning_curves.png").stat().st_size > 1000
        manifest = json.loads((target / "MANIFEST.json").read_text())
        assert manifest["command"].startswith("python -m palr.experiments.study --preset smoke")
        assert manifest["machine"]["cpu_count"] >= 1
        assert manifest["machine"]["packages"]["torch"]
        assert manifest["launchers"][0].split()[0] in ("run_experiments.py", "run_cw_experiments.py")
    cw_manifest = json.loads((publish / "cw" / "MANIFEST.json").read_text())
    assert [line.split()[0] for line in cw_manifest["launchers"]] == [
        "run_cw_experiments.py", "merge_cw_checkpoints.py", "plot_cw_results.py"]


def test_rerun_resumes_from_finished_runs(tmp_path):
    args = ["--preset", "smoke", "--part", "cartpole", "--workdir", str(tmp_path / "work"),
            "--publish_dir", str(tmp_path / "pub"), "--jobs", "1"]
    assert study.main(args) == 0
    first = json.loads((tmp_path / "pub" / "cartpole" / "cartpole_raw_results.json").read_text())
    assert study.main(args) == 0
    second = json.loads((tmp_path / "pub" / "cartpole" / "cartpole_raw_results.json").read_text())
    assert first["runs"] == second["runs"]


def test_unwritable_publish_dir_is_a_one_line_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        study.main(["--preset", "smoke", "--publish_dir", str(blocker / "sub"),
                    "--workdir", str(tmp_path / "w")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass a writable --publish_dir" in err[0]
    assert blocker.read_text() == "x"
