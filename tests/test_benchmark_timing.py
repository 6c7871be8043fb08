"""benchmarks/timing.py: interleaving order and the median / paired-ratio arithmetic (no timing
assertions: the figures themselves are the benchmarks' job)."""
import pytest

from helpers import load_script

timing = load_script("benchmarks/timing.py", "bench_timing")


def test_blocks_alternate_order_and_cover_every_implementation():
    calls = []
    work = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    blocks = timing.interleaved_blocks(work, seconds=0.0, block_seconds=0.0, warmup_calls=2)
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]           # warm-up, untimed
    assert calls[6:] == ["a", "b", "c"]                          # one round when seconds == 0
    assert {name: len(b) for name, b in blocks.items()} == {"a": 1, "b": 1, "c": 1}
    blocks = timing.interleaved_blocks(work, seconds=1e-9, block_seconds=0.0, warmup_calls=0)
    assert all(len(b) >= 1 for b in blocks.values())


def test_median_rate_and_paired_ratio_arithmetic():
    # round 2 is slow for both (a loaded machine): the paired ratio is unaffected by it
    blocks = {"ref": [(100, 1.0), (100, 4.0), (100, 1.0)],
              "ours": [(150, 1.0), (150, 4.0), (120, 1.0)]}
    assert timing.median_rate(blocks, "ref") == pytest.approx(100.0)
    assert timing.median_rate(blocks, "ours", scale=10) == pytest.approx(1200.0)
    assert timing.paired_ratio(blocks, "ours", "ref") == pytest.approx(1.5)
    assert timing.total_calls(blocks, "ours") == 420
