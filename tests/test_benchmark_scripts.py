"""The seed-batched benchmark scripts run end to end on tiny settings and print every figure they
promise (no timing assertions: the figures themselves are the benchmarks' job)."""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, load_script

NUMBER = r"[0-9]+(?:\.[0-9]+)?"

sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import their siblings
try:
    profile_loops = load_script("benchmarks/profile_loops.py", "bench_profile_loops")
    phase_profile = load_script("benchmarks/phase_profile.py", "bench_phase_profile")
finally:
    sys.path.remove(str(ROOT / "benchmarks"))


def run_script(*args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_bench_batched_prints_a_dqn_row_per_member_count():
    out = run_script("benchmarks/bench_batched.py", "--members", "1", "2", "--seconds", "0.1",
                     "--chunk_steps", "5")
    for k in (1, 2):
        assert re.search(rf"K={k}: batched +{NUMBER} +separate +{NUMBER} +ratio {NUMBER}x", out), out


@pytest.mark.slow
def test_bench_batched_sac_prints_both_batch_sizes():
    out = run_script("benchmarks/bench_batched.py", "--sac", "--members", "1", "--seconds", "0.1")
    for batch in (128, 2048):
        assert re.search(rf"batch {batch}, K=1: batched +{NUMBER} +separate +{NUMBER} +ratio "
                         rf"{NUMBER}x", out), out


@pytest.mark.slow
def test_profile_batched_sac_prints_the_phases_and_the_matmul_bound():
    out = run_script("benchmarks/profile_batched_sac.py", "--members", "2", "--updates", "1",
                     "--seconds", "0.2")
    assert re.search(rf"Adam: critics +{NUMBER}", out), out
    timed = re.search(rf"one batched update ({NUMBER}) ms, 2 separate SACAgent updates "
                      rf"({NUMBER}) ms, ratio ({NUMBER})x", out)
    assert timed, out
    batched_ms, separate_ms, _ = map(float, timed.groups())
    assert batched_ms > 0
    assert_matmul_bound(out, separate_ms)


@pytest.mark.slow
def test_profile_batched_dqn_prints_the_phases_and_the_matmul_bound():
    out = run_script("benchmarks/profile_batched_dqn.py", "--members", "2", "--steps", "4",
                     "--chunk_steps", "2", "--seconds", "0.2")
    for phase in ("backward by hand", "forward by hand (target and online)", "environment steps",
                  "replay sampling", "Adam"):
        assert re.search(rf"{re.escape(phase)} +{NUMBER}", out), out
    timed = re.search(rf"one batched chunk of 2 loop steps ({NUMBER}) ms, 2 separate runs' 2 "
                      rf"steps each ({NUMBER}) ms, ratio ({NUMBER})x", out)
    assert timed, out
    assert_matmul_bound(out, float(timed.group(2)))


def assert_matmul_bound(out: str, separate_ms: float) -> None:
    """The printed bound is the printed separate time over the printed matmul time (up to the
    rounding of the three printed figures), and the matmul rate and the 1024^3 roof are positive
    figures."""
    bound = re.search(rf"matrix products of one batched [^(]+\(profiled\): ({NUMBER}) ms at "
                      rf"({NUMBER}) GFLOP/s \(a 1024\^3 matmul on this thread: ({NUMBER})\); "
                      rf"bound if it were those alone: ({NUMBER})x", out)
    assert bound, out
    matmul_ms, gflops, roof, ratio_bound = map(float, bound.groups())
    assert min(matmul_ms, gflops, roof, separate_ms) > 0
    ms_step, ratio_step = 0.0005, 0.005  # half the last printed digit
    assert (separate_ms - ms_step) / (matmul_ms + ms_step) - ratio_step <= ratio_bound \
        <= (separate_ms + ms_step) / (matmul_ms - ms_step) + ratio_step


@pytest.mark.parametrize("op, expected", [
    ("aten::addmm", "matmul"), ("aten::bmm", "matmul"), ("aten::baddbmm", "matmul"),
    ("aten::mm", "matmul"), ("aten::t", "matmul"), ("aten::_mkldnn_matmul", "matmul"),
    ("aten::tanh", "other ops"), ("aten::to", "other ops"), ("aten::transpose", "other ops"),
    ("aten::threshold_backward", "other ops"), ("aten::mm_out_like", "other ops"),
    ("aten::_fused_adam_", "optimizer")])
def test_profile_categories_match_whole_op_names(op, expected):
    assert profile_loops.category(op) == expected


def test_phase_labels_apply_inside_and_are_removed_after():
    """Timings after a profile run unlabelled: an instance's own method, a class method seen
    through an instance and a module function are all back as they were."""
    class Learner:
        def update(self):
            return "update"

    learner, module = Learner(), type(sys)("fake_module")
    module.forward = lambda: "forward"
    original_forward = module.forward
    learner.own = lambda: "own"
    original_own = learner.own
    seen = []
    with phase_profile.labelled([(learner, "update", "u"), (module, "forward", "f"),
                                 (learner, "own", "o"), (learner, "missing", "m")]):
        seen = [learner.update(), module.forward(), learner.own()]
        assert "update" in vars(learner)  # the labelled wrapper shadows the class method
        assert module.forward is not original_forward and learner.own is not original_own
    assert seen == ["update", "forward", "own"]
    assert "update" not in vars(learner) and module.forward is original_forward
    assert learner.own is original_own and not hasattr(learner, "missing")
