"""The seed-batched benchmark scripts run end to end on tiny settings and print every figure they
promise (no timing assertions: the figures themselves are the benchmarks' job)."""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, load_script

NUMBER = r"[0-9]+(?:\.[0-9]+)?"

sys.path.insert(0, str(ROOT / "benchmarks"))  # profile_loops imports its sibling timing.py
try:
    profile_loops = load_script("benchmarks/profile_loops.py", "bench_profile_loops")
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
    bound = re.search(rf"matrix products \(profiled\): ({NUMBER}) ms; bound if it were those "
                      rf"alone: ({NUMBER})x", out)
    assert bound, out
    matmul_ms, ratio_bound = map(float, bound.groups())
    assert 0 < matmul_ms and 0 < batched_ms and 0 < separate_ms
    assert ratio_bound == pytest.approx(separate_ms / matmul_ms, rel=0.02)


@pytest.mark.parametrize("op, expected", [
    ("aten::addmm", "matmul"), ("aten::bmm", "matmul"), ("aten::baddbmm", "matmul"),
    ("aten::mm", "matmul"), ("aten::t", "matmul"), ("aten::_mkldnn_matmul", "matmul"),
    ("aten::tanh", "other ops"), ("aten::to", "other ops"), ("aten::transpose", "other ops"),
    ("aten::threshold_backward", "other ops"), ("aten::mm_out_like", "other ops"),
    ("aten::_fused_adam_", "optimizer")])
def test_profile_categories_match_whole_op_names(op, expected):
    assert profile_loops.category(op) == expected
