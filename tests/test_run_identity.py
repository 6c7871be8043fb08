"""A run is its settings: identities and fingerprints, one writer per run, verified checkpoints."""
import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest
import torch

from palr.errors import UsageError
from palr.experiments.checkpoint import load_checkpoint, previous_path, save_checkpoint
from palr.experiments.files import atomic_write_json
from palr.experiments.run_identity import (RunMismatch, check_poolable, check_same_run,
                                           differing_keys, fingerprint, make_identity,
                                           settings_fingerprint)
from palr.experiments.run_lock import RunLock, RunLocked, lock_holder
from palr.experiments.run_state import FINISHED, NEW, RUNNING, run_state


def identity(seed=0, **env):
    return make_identity({"domain": "cartpole", "agent_idx": 4, "seed": seed,
                          "env": {"phase_episodes": 100, **env}, "dqn": {"lr": 5e-4},
                          "progress": True, "outdir": "/x", "device": "cpu"})


# --- identities -------------------------------------------------------------------------------
def test_identity_drops_cosmetic_settings_and_fingerprints_are_stable():
    ident = identity()
    assert "progress" not in ident and "outdir" not in ident and "device" not in ident
    assert fingerprint(ident) == fingerprint(identity())
    assert fingerprint(ident) != fingerprint(identity(seed=1))
    assert settings_fingerprint(ident) == settings_fingerprint(identity(seed=1))
    assert settings_fingerprint(ident) != settings_fingerprint(identity(phase_episodes=5))
    assert differing_keys(ident, identity(phase_episodes=5)) == ["env.phase_episodes"]


def test_a_mismatch_names_the_setting_and_the_ways_out():
    with pytest.raises(RunMismatch) as err:
        check_same_run(identity(), identity(phase_episodes=5), "result.json")
    text = str(err.value)
    assert "env.phase_episodes 100 -> 5" in text and "--outdir" in text and "\n" not in text
    with pytest.raises(RunMismatch, match="carries no run settings"):
        check_same_run(None, identity(), "checkpoint.pt")
    check_same_run(identity(), identity(), "result.json")  # same settings: fine


def _run(agent, seed, ident):
    return {"agent": agent, "seed": seed, "identity": ident}


def test_merges_pool_only_runs_of_one_configuration():
    check_poolable([_run("A", 0, identity(0)), _run("A", 1, identity(1))])
    with pytest.raises(ValueError, match="runs of A were made with different settings"):
        check_poolable([_run("A", 0, identity(0)), _run("A", 1, identity(1, phase_episodes=5))])
    other_agent = dict(identity(0), agent_idx=0)
    check_poolable([_run("A", 0, identity(0)), _run("B", 0, other_agent)])
    with pytest.raises(ValueError, match="ran different experiments"):
        check_poolable([_run("A", 0, identity(0)),
                        _run("B", 0, dict(identity(0, phase_episodes=5), agent_idx=0))])
    with pytest.raises(ValueError, match="carries no run settings"):
        check_poolable([_run("A", 0, identity(0)), _run("A", 1, None)])
    check_poolable([_run("A", 0, None), _run("A", 1, None)])  # old runs pool with each other


# --- run state and lock ------------------------------------------------------------------------
def test_run_state_answers_new_running_finished_and_refuses_other_settings(tmp_path):
    ident = identity()
    assert run_state(tmp_path / "run", ident) == NEW
    assert not (tmp_path / "run").exists()  # asking creates nothing
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", {"identity": ident})
    atomic_write_json(tmp_path / "run" / "result.json", {"identity": ident, "status": "running"})
    assert run_state(tmp_path / "run", ident) == RUNNING
    atomic_write_json(tmp_path / "run" / "result.json", {"identity": ident, "status": "finished"})
    assert run_state(tmp_path / "run", ident) == FINISHED
    with pytest.raises(RunMismatch):
        run_state(tmp_path / "run", identity(phase_episodes=5))


HOLD_LOCK = """
import sys, time
from palr.experiments.run_lock import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_run(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert lock_holder(tmp_path) == holder.pid
        with pytest.raises(RunLocked, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path).acquire()
        with pytest.raises(RunLocked):
            run_state(tmp_path, identity())
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(tmp_path) is None  # the kernel released it with the process
    with RunLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()


def test_taking_the_lock_removes_temp_files_of_killed_writers(tmp_path):
    stale = tmp_path / ".checkpoint.pt.tmp999999"
    stale.write_bytes(b"partial")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with RunLock(tmp_path):
        pass
    assert not stale.exists() and keep.exists()


# --- checkpoints ---------------------------------------------------------------------------------
def _state(value):
    return {"identity": identity(), "w": torch.full((64,), float(value))}


def test_a_flipped_bit_is_detected_and_the_previous_checkpoint_used(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _state(1))
    save_checkpoint(path, _state(2))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    state = load_checkpoint(path)
    assert torch.equal(state["w"], torch.full((64,), 1.0))
    err = capsys.readouterr().err
    assert "SHA-256 mismatch" in err and "previous checkpoint" in err and err.count("\n") == 1


def test_no_valid_checkpoint_or_a_directory_in_its_place_is_a_one_line_usage_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"garbage")
    previous_path(path).write_bytes(b"more garbage")
    with pytest.raises(UsageError, match="no valid checkpoint to resume from"):
        load_checkpoint(path)
    other = tmp_path / "b" / "checkpoint.pt"
    other.mkdir(parents=True)
    with pytest.raises(UsageError, match="is a directory"):
        load_checkpoint(other)


@contextlib.contextmanager
def tiny_filesystem(size_kb):
    """A real, small tmpfs (root only); skips the test where mounting is not permitted."""
    mount = tempfile.mkdtemp(prefix="palr-full-")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", mount],
                          capture_output=True)
    if done.returncode != 0:
        os.rmdir(mount)
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield pathlib.Path(mount)
    finally:
        subprocess.run(["umount", mount], check=False)
        os.rmdir(mount)


def test_a_full_disk_names_the_checkpoint_and_leaves_the_previous_one_intact():
    with tiny_filesystem(96) as disk:
        path = disk / "run" / "checkpoint.pt"
        save_checkpoint(path, {"w": torch.zeros(4000)})  # ~16 kB
        before = path.read_bytes()
        with pytest.raises(OSError) as err:
            save_checkpoint(path, {"w": torch.zeros(40000)})  # ~160 kB: does not fit
        assert err.value.strerror == "No space left on device" and err.value.filename == str(path)
        assert path.read_bytes() == before
        assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]
