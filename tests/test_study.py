"""The evidence study's pipeline (palr.experiments.study) end to end on its seconds-long preset."""
import json

import pytest

from palr.experiments import study


@pytest.mark.slow
def test_smoke_study_publishes_summary_plots_and_manifest(tmp_path):
    publish = tmp_path / "published"
    (publish / "cartpole").mkdir(parents=True)
    (publish / "cartpole" / "NOTES.md").write_text("kept")
    status = study.main(["--preset", "smoke", "--part", "all", "--workdir", str(tmp_path / "work"),
                         "--publish_dir", str(publish), "--jobs", "1"])
    assert status == 0
    assert (publish / "cartpole" / "NOTES.md").read_text() == "kept"
    for part, merged, runs in (("cartpole", "cartpole_raw_results.json", 2),
                               ("cw", "mt10first2_raw_results.json", 2),
                               ("permuted", "permuted_cartpole_raw_results.json", 4),
                               ("priming", "permuted_cartpole_raw_results.json", 2),
                               ("nodiv", "permuted_cartpole_raw_results.json", 2)):
        target = publish / part
        sweep = json.loads((target / merged).read_text())
        assert {run["agent"] for run in sweep["runs"]} == set(sweep["agents"])
        assert len(sweep["runs"]) == runs
        summary = (target / "RESULTS_SUMMARY.txt").read_text()
        assert "recovery" in summary and "VERDICT" in summary
        verdict = (target / "VERDICT.txt").read_text()
        assert verdict.startswith("VERDICT") and " ".join(sweep["verdict"]["text"][0].split()) in " ".join(verdict.split())
        trend = (target / "PLASTICITY_BY_TASK.txt").read_text()
        for text in (summary, verdict, trend):  # reference comparisons (priming) included
            assert max(len(line) for line in text.splitlines()) <= 120, part
        assert "dead fraction at the first measurement" in trend and "PALR" in trend
        assert (target / "plots" / "learning_curves.png").stat().st_size > 1000
        manifest = json.loads((target / "MANIFEST.json").read_text())
        assert manifest["command"].startswith("python -m palr.experiments.study --preset smoke")
        assert manifest["machine"]["cpu_count"] >= 1
        assert manifest["machine"]["packages"]["torch"]
        assert manifest["launchers"][0].split()[0] in ("run_experiments.py", "run_cw_experiments.py",
                                                       "run_permuted_cartpole.py")
    cw_manifest = json.loads((publish / "cw" / "MANIFEST.json").read_text())
    assert [line.split()[0] for line in cw_manifest["launchers"]] == [
        "run_cw_experiments.py", "merge_cw_checkpoints.py", "plot_cw_results.py"]
    # the permuted testbed: step-counted phases, the probe at every task end, plots of both
    permuted = json.loads((publish / "permuted" / "permuted_cartpole_raw_results.json").read_text())
    run = permuted["runs"][0]
    assert len(run["tasks"]) == 4 and all("start_step" in t for t in run["tasks"])
    assert sum(v is not None for v in run["plasticity"]["layers"]["q.output"]["probe_residual"]) == 4
    assert (publish / "permuted" / "plots" / "value_and_capacity.png").stat().st_size > 1000
    assert "capacity-probe residual" in (publish / "permuted" / "PLASTICITY_BY_TASK.txt").read_text()
    # the priming check: primed agents, an unprimed FixedLR reference, compared in the verdict
    priming = json.loads((publish / "priming" / "permuted_cartpole_raw_results.json").read_text())
    assert {r["config"]["dqn"]["priming_updates"] for r in priming["runs"]} == {40}
    reference = json.loads((publish / "priming" / "reference" /
                            "permuted_cartpole_raw_results.json").read_text())
    assert [(r["agent"], r["config"]["dqn"]["priming_updates"]) for r in reference["runs"]] == [
        ("DQN-FixedLR", 0)]
    assert "Against DQN-FixedLR unprimed" in (publish / "priming" / "VERDICT.txt").read_text()
    priming_manifest = json.loads((publish / "priming" / "MANIFEST.json").read_text())
    assert len(priming_manifest["launchers"]) == 2 and "--priming_updates" not in \
        priming_manifest["launchers"][1]
    # the testbed without value divergence: its own learning rate and target period, recorded
    nodiv = json.loads((publish / "nodiv" / "permuted_cartpole_raw_results.json").read_text())
    assert {(r["config"]["dqn"]["learning_rate"], r["config"]["dqn"]["target_update_every"])
            for r in nodiv["runs"]} == {(1e-4, 2000)}


@pytest.mark.slow
def test_rerun_resumes_from_finished_runs(tmp_path):
    args = ["--preset", "smoke", "--part", "cartpole", "--workdir", str(tmp_path / "work"),
            "--publish_dir", str(tmp_path / "pub"), "--jobs", "1"]
    assert study.main(args) == 0
    first = json.loads((tmp_path / "pub" / "cartpole" / "cartpole_raw_results.json").read_text())
    assert study.main(args) == 0
    second = json.loads((tmp_path / "pub" / "cartpole" / "cartpole_raw_results.json").read_text())
    assert first["runs"] == second["runs"]
    manifest = json.loads((tmp_path / "pub" / "cartpole" / "MANIFEST.json").read_text())
    assert len(manifest["invocations"]) == 2
    assert all(inv["wall_seconds"] >= 0 and "commit" in inv for inv in manifest["invocations"])


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


def test_a_part_the_preset_lacks_is_a_one_line_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        study.main(["--preset", "pilot", "--part", "cw", "--workdir", str(tmp_path / "w")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preset 'pilot' has no part 'cw'; choose one of permuted" in err[0]
    assert not (tmp_path / "w").exists()


def test_task_end_values_take_the_last_measurement_before_each_task_end():
    from palr.experiments.plasticity_trend import plasticity_trend, task_end_values
    run = {"agent": "A", "tasks": [{"start_episode": 0, "end_episode": 2},
                                   {"start_episode": 2, "end_episode": 4},
                                   {"start_episode": 4, "end_episode": 6}],
           "episodes": {"env_step": [10, 20, 30, 40]},  # task 2 not finished
           "plasticity": {"env_step": [5, 15, 25, 35],
                          "update": [1, 2, 3, 4],
                          "layers": {"q.0": {"dead": [0.1, 0.2, 0.3, 0.4]},
                                     "q.2": {"dead": [0.3, None, 0.5, 0.6]}}}}
    values = task_end_values(run, "dead")
    assert values["q"][0] == pytest.approx((0.2 + 0.3) / 2)   # q.2's null at step 15 skipped
    assert values["q"][1] == pytest.approx((0.4 + 0.6) / 2)
    assert values["q"][2] is None
    other = dict(run, plasticity={"env_step": [5, 15, 25, 35], "update": [1999, 2, 3, 4],
                                  "layers": {"q.0": {"dead": [0.3, 0.4, 0.5, 0.6]},
                                             "q.2": {"dead": [0.5, 0.6, 0.7, 0.8]}}})
    trend = plasticity_trend({"agents": ["A"], "runs": [run, other]}, keys=("dead",))
    first, *cells = trend["dead"]["A"]["q"]
    assert first["mean"] == pytest.approx((0.2 + 0.4) / 2)   # step 5: (0.1+0.3)/2, (0.3+0.5)/2
    assert first["update"] == 1000                           # median update of the first ones
    assert cells[0]["mean"] == pytest.approx((0.25 + 0.5) / 2) and cells[0]["n"] == 2
    assert cells[0]["ci_low"] <= cells[0]["mean"] <= cells[0]["ci_high"]
    assert cells[2]["n"] == 0


def test_smoke_preset_never_publishes_into_docs_results(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "REPO_ROOT", tmp_path)
    seen = {}
    monkeypatch.setattr(study, "run_part", lambda part, workdir, publish_dir, jobs, command:
                        seen.update(workdir=workdir, publish_dir=publish_dir) or publish_dir)
    assert study.main(["--preset", "smoke", "--part", "cartpole"]) == 0
    assert seen["workdir"] == tmp_path / "results" / "study-smoke"
    assert seen["publish_dir"] == tmp_path / "results" / "study-smoke" / "published"
    assert study.main(["--part", "cartpole"]) == 0
    assert seen["publish_dir"] == tmp_path / "docs" / "results"


def test_a_stopped_launcher_is_recorded_and_returns_its_status(monkeypatch, tmp_path):
    def preempted(part, run_dir, jobs):
        raise study.StudyStopped("run_experiments.py", 75)
    monkeypatch.setitem(study.RUNNERS, "cartpole", preempted)
    status = study.main(["--preset", "smoke", "--part", "cartpole", "--workdir", str(tmp_path)])
    assert status == 75
    history = json.loads((tmp_path / "cartpole" / study.INVOCATIONS_FILE).read_text())
    assert [entry["status"] for entry in history] == ["stopped"]
    assert not (tmp_path / "published" / "cartpole").exists()


def test_manifest_commands_name_repository_paths_relative_to_its_root(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "REPO_ROOT", tmp_path)
    argv = ["run_experiments.py", "--outdir", str(tmp_path / "results" / "study" / "cartpole"),
            "--other", str(tmp_path.parent / "elsewhere"), "two words"]
    assert study._display_command(argv) == (
        f"run_experiments.py --outdir results/study/cartpole --other {tmp_path.parent}/elsewhere "
        "'two words'")


def test_the_study_s_own_publications_do_not_make_a_checkout_dirty(tmp_path):
    """A rerun of the study in a checkout where an earlier part published its files still
    records a clean commit; a changed source file is recorded as dirty."""
    import subprocess as sp
    from palr.experiments.study import git_commit
    repo = tmp_path / "repo"
    (repo / "docs" / "results").mkdir(parents=True)
    (repo / "docs" / "results" / "RESULTS_SUMMARY.txt").write_text("old\n")
    (repo / "code.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.email=a@b", "-c", "user.name=n", "commit", "-qm", "c"]):
        sp.run(["git", "-C", str(repo), *args], check=True)
    assert git_commit(repo)["dirty"] is False
    (repo / "docs" / "results" / "RESULTS_SUMMARY.txt").write_text("republished\n")
    assert git_commit(repo)["dirty"] is False
    (repo / "code.py").write_text("x = 2\n")
    assert git_commit(repo)["dirty"] is True
