"""run_on_HPC.sh (planned by palr.experiments.slurm) on a REAL single-node SLURM cluster: Debian's
slurmctld/slurmd/munge, started by hand (no systemd) with all state under a pytest temp dir, jobs
without a container (SIF=none).

Checks: a tiny CW sweep runs as a job array (one log per task, a cw_checkpoint json per seed, the
dependent merge job); a tiny continual CartPole sweep runs one array task per agent with its
seeds batched (BATCH_SEEDS=1), the tasks only train and the dependent merge job summarises the
output directory; SIGUSR1 to a task makes the run checkpoint, the task requeue itself and
resume to the end, for a CW run, a CW seed batch (BATCH_SEEDS=1: its batch checkpoint) and the
Habitat trainer under srun + torchrun; scancel is
reported as CANCELLED and not requeued. The daemons are stopped by PID at the end.

Needs root (the daemons run as root) and the Debian packages slurmctld, slurmd, slurm-client and
munge, which it installs with apt-get when they are missing (.ci/run installs them too);
otherwise it is skipped with the reason.
"""
import json
import os
import pathlib
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

pytest.importorskip("metaworld")
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.metaworld]

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEBIAN_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
TOOLS = ("slurmctld", "slurmd", "munged", "munge", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])
TINY_CW = ("--num_tasks 2 --start_steps 100 --update_after 100 --eval_episodes 1 --measure_freq 50 "
           "--diag_batch_size 128 --no_tensorboard --checkpoint_every 1")

TINY_CARTPOLE = ("--phase_episodes 2 --learning_starts 50 --measure_freq 20 --diag_batch_size 64 "
                 "--probe_steps 20 --probe_states 64 --buffer_size 2000 --hidden_sizes 32 32 "
                 "--no_tensorboard")


def which(tool):
    return shutil.which(tool, path=SEARCH_PATH)


def install_slurm():
    """None when the SLURM and munge tools are there (installing them if needed), else why not."""
    if all(which(t) for t in TOOLS):
        return None
    if os.geteuid() != 0:
        return "SLURM/munge not installed and not root: apt-get install " + " ".join(DEBIAN_PACKAGES)
    if which("apt-get") is None:
        return "SLURM/munge not installed and no apt-get to install them"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", *DEBIAN_PACKAGES], env=env,
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "apt-get install of the SLURM packages timed out"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return f"apt-get install {' '.join(DEBIAN_PACKAGES)} failed: {tail[0]}"
    missing = [t for t in TOOLS if which(t) is None]
    return f"still missing after apt-get install: {', '.join(missing)}" if missing else None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A running single-node cluster: ``env`` points the SLURM clients at it."""

    def __init__(self, base):
        self.base = base
        self.conf = base / "slurm.conf"
        self.jobcomp = base / "log" / "jobcomp.txt"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf), PATH=SEARCH_PATH)
        self.env.pop("SLURM_JOB_ID", None)
        self.procs = []  # (name, Popen) of the daemons this fixture started

    def run(self, *args, check=True, timeout=60):
        proc = subprocess.run([which(args[0]) or args[0], *args[1:]], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def start(self, name, argv, **kwargs):
        log = open(self.base / "log" / f"{name}.out", "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True, **kwargs)
        log.close()
        self.procs.append((name, proc))
        return proc

    def log_tail(self):
        text = ""
        for path in sorted((self.base / "log").glob("*")):
            lines = path.read_text(errors="replace").splitlines()[-8:]
            text += f"--- {path.name}\n" + "\n".join(lines) + "\n"
        return text

    def stop(self):
        """Cancel what is left, then stop the daemons it started, newest first, by PID."""
        if any(p.poll() is None for _, p in self.procs) and which("scancel"):
            subprocess.run([which("scancel"), "--user", "root"], env=self.env, capture_output=True,
                           timeout=30)
            deadline = time.time() + 40
            while time.time() < deadline:
                out = subprocess.run([which("squeue"), "-h"], env=self.env, capture_output=True,
                                     text=True, timeout=30)
                if out.returncode != 0 or not out.stdout.strip():
                    break
                time.sleep(1)
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def make_traversable(path, stop):
    """Add g+x,o+x to ``path`` and its parents up to ``stop``: munged (user munge) wants execute
    permission for all on every folder above its socket. Returns the original modes to restore."""
    changed = []
    for folder in [path, *path.parents]:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o011 != 0o011:
            changed.append((folder, mode))
            folder.chmod(mode | 0o011)
        if folder == stop:
            break
    return changed


SLURM_CONF = """\
ClusterName=palrtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket},cred_expire=5
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={base}/log/jobcomp.txt
SchedulerParameters=sched_interval=2,bf_interval=1
ReturnToService=2
MinJobAge=600
KillWait=30
NodeName=localhost CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = install_slurm()
    if reason is not None:
        pytest.skip(reason)
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons run as root (SlurmUser=root); run as root")
    try:
        munge_user = pwd.getpwnam("munge")
    except KeyError:
        pytest.skip("no 'munge' user (the munge package creates it)")
    # the venv the jobs use must be ready before several jobs start at once
    subprocess.run([str(ROOT / "run.sh"), "true"], check=True, timeout=900)

    base = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "log"):
        (base / sub).mkdir()
    restore = make_traversable(base, tmp_path_factory.getbasetemp().parent)
    munge_dir = base / "munge"
    munge_dir.mkdir()
    (munge_dir / "munge.key").write_bytes(secrets.token_bytes(128))
    for path in (munge_dir, munge_dir / "munge.key"):
        os.chown(path, munge_user.pw_uid, munge_user.pw_gid)
    munge_dir.chmod(0o711)  # 0700 fails: clients must reach the socket
    (munge_dir / "munge.key").chmod(0o400)
    munge_socket = munge_dir / "munge.socket"
    conf = SLURM_CONF.format(base=base, munge_socket=munge_socket, ctld_port=free_port(),
                             slurmd_port=free_port())
    cl = Cluster(base)
    cl.conf.write_text(conf)
    try:
        cl.start("munged", [which("munged"), "--foreground", f"--key-file={munge_dir / 'munge.key'}",
                            f"--socket={munge_socket}", f"--pid-file={munge_dir / 'munged.pid'}",
                            f"--log-file={munge_dir / 'munged.log'}",
                            f"--seed-file={munge_dir / 'munged.seed'}"],
                 user=munge_user.pw_uid, group=munge_user.pw_gid, extra_groups=[])
        deadline = time.time() + 20
        while not munge_socket.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert munge_socket.exists(), "munged did not start:\n" + cl.log_tail()
        cl.start("slurmctld", [which("slurmctld"), "-D", "-f", str(cl.conf)])
        cl.start("slurmd", [which("slurmd"), "-D", "-f", str(cl.conf), "-N", "localhost"])
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            out = subprocess.run([which("sinfo"), "-h", "-o", "%t"], env=cl.env,
                                 capture_output=True, text=True, timeout=30)
            state = out.stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        assert state == "idle", f"node not idle ({state!r}):\n" + cl.log_tail()
        yield cl
    finally:
        cl.stop()
        for folder, mode in restore:
            folder.chmod(mode)


# --- helpers ----------------------------------------------------------------------------------

def submit(cluster, *options, **env):
    """run_on_HPC.sh without a container on the test cluster; returns (array id, merge id, stdout)."""
    full_env = dict(cluster.env, SIF="none", MEM="", GPUS="0", CPUS="1", TIME="00:10:00",
                    SIGNAL_LEAD="30")
    full_env.update(env)
    proc = subprocess.run(["bash", str(ROOT / "run_on_HPC.sh"), *options], env=full_env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    array = re.search(r"submitted job array (\d+)", proc.stdout)
    merge = re.search(r"submitted merge job (\d+)", proc.stdout)
    return (array.group(1) if array else None, merge.group(1) if merge else None, proc.stdout)


def live_jobs(cluster):
    """{array job id or job id: [states]} of the jobs squeue still lists."""
    jobs = {}
    for line in cluster.run("squeue", "-h", "-o", "%F %T").splitlines():
        job, state = line.split()
        jobs.setdefault(job, []).append(state)
    return jobs


def wait_done(cluster, *job_ids, timeout=420):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not set(job_ids) & set(live_jobs(cluster)):
            return
        time.sleep(1)
    raise AssertionError(f"jobs {job_ids} still queued after {timeout} s: {live_jobs(cluster)}\n"
                         + cluster.log_tail())


def job_info(cluster, job_ref):
    """``scontrol show job -o`` as a list of {key: value} dicts (one per array task)."""
    records = []
    for line in cluster.run("scontrol", "show", "job", "-o", job_ref).splitlines():
        records.append(dict(tok.split("=", 1) for tok in line.split() if "=" in tok))
    return records


def jobcomp(cluster):
    records = []
    if cluster.jobcomp.exists():
        for line in cluster.jobcomp.read_text().splitlines():
            records.append(dict(tok.split("=", 1) for tok in line.split() if "=" in tok))
    return records


def wait_for_episodes(run_dir, count, timeout=240):
    live = run_dir / "result.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if len(json.loads(live.read_text())["episodes"]["score"]) >= count:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{live} never reached {count} episodes")


# --- tests ------------------------------------------------------------------------------------

def test_tiny_cw_sweep_runs_as_an_array_with_logs_results_and_merge(cluster, tmp_path):
    results = tmp_path / "results"
    env = dict(RESULTS_DIR=str(results), TASKS="cw10", EPISODES="2", BATCH_SIZE="32",
               SEEDS="0 1", AGENT="4", EXTRA_ARGS=TINY_CW)
    array, merge, out = submit(cluster, **env)
    assert array and merge, out
    wait_done(cluster, array, merge)
    logs = results / "logs" / "slurm"
    for task, seed in enumerate((0, 1)):
        run = json.loads((results / f"cw_checkpoint_cw10first2_seed{seed}_agent4.json").read_text())
        assert run["status"] == "finished" and len(run["episodes"]["score"]) == 4
        assert run["seed"] == seed
        log = (logs / f"palr-cw10_{array}_{task}.out").read_text()
        assert f"{array}_{task} on" in log and f"seed {seed} agent 4" in log
        assert "run exited with status 0" in log
    merged = json.loads((results / "cw10first2_raw_results.json").read_text())
    assert merged["agents"] == ["PALR-SAC"]
    done = [r for r in jobcomp(cluster) if r.get("ArrayJobId") == array or r["JobId"] == merge]
    assert sorted(r.get("ArrayTaskId", "merge") for r in done) == ["0", "1", "merge"]
    assert all(r["JobState"] == "COMPLETED" for r in done), done
    # finished runs are left out when the sweep is submitted again
    again = subprocess.run(["bash", str(ROOT / "run_on_HPC.sh")],
                           env=dict(cluster.env, SIF="none", MEM="", GPUS="0", **env),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "nothing to submit" in again.stderr


def test_tiny_cartpole_sweep_runs_seed_batches_as_an_array_then_one_summary_job(cluster, tmp_path):
    results = tmp_path / "results"
    env = dict(RESULTS_DIR=str(results), SEEDS="0 1", AGENTS="0 4", BATCH_SEEDS="1",
               EXTRA_ARGS=TINY_CARTPOLE)
    array, merge, out = submit(cluster, "--cartpole", "--sweep", **env)
    assert array and merge, out
    wait_done(cluster, array, merge)
    outdir = results / "cartpole"
    for task, agent in enumerate(("DQN-FixedLR", "PALR-DQN")):
        for seed in (0, 1):
            run = json.loads((outdir / "runs" / f"{agent}_seed{seed}" / "result.json").read_text())
            assert run["status"] == "finished" and run["seed"] == seed
            assert run["batched_with"] == [0, 1]
        log = (results / "logs" / "slurm" / f"palr-cartpole_{array}_{task}.out").read_text()
        assert f"seeds 0-1 agent {(0, 4)[task]}" in log and "run exited with status 0" in log
        assert "not summarised" in log and "[summary]" not in log  # the tasks only train
    merged = json.loads((outdir / "cartpole_raw_results.json").read_text())
    assert sorted(merged["agents"]) == ["DQN-FixedLR", "PALR-DQN"]
    merge_log = (results / "logs" / "slurm" / f"palr-cartpole-merge_{merge}.out").read_text()
    assert "[summary] 4 run(s)" in merge_log, merge_log
    done = [r for r in jobcomp(cluster) if r.get("ArrayJobId") == array or r["JobId"] == merge]
    assert sorted(r.get("ArrayTaskId", "merge") for r in done) == ["0", "1", "merge"]
    assert all(r["JobState"] == "COMPLETED" for r in done), done
    again = subprocess.run(["bash", str(ROOT / "run_on_HPC.sh"), "--cartpole", "--sweep"],
                           env=dict(cluster.env, SIF="none", MEM="", **env),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "nothing to submit" in again.stderr, again.stderr


def test_usr1_makes_the_task_checkpoint_requeue_and_resume(cluster, tmp_path):
    results = tmp_path / "results"
    array, _, out = submit(cluster, "--no-merge", RESULTS_DIR=str(results), TASKS="cw10",
                           EPISODES="4", BATCH_SIZE="32", SEEDS="0", AGENT="4", EXTRA_ARGS=TINY_CW)
    wait_for_episodes(results / "cw_runs" / "cw10first2_seed0_agent4", 2)
    # what --signal=B:USR1@<lead> does before the time limit
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array}_0")
    wait_done(cluster, array)
    log = (results / "logs" / "slurm" / f"palr-cw10_{array}_0.out").read_text()
    assert "got SIGUSR1" in log and "run exited with status 75" in log, log
    assert f"requeueing {array}_0" in log and "(start 2)" in log, log
    assert log.rstrip().endswith("run exited with status 0"), log
    run = json.loads((results / "cw_checkpoint_cw10first2_seed0_agent4.json").read_text())
    assert run["status"] == "finished" and len(run["episodes"]["score"]) == 8
    info = job_info(cluster, f"{array}_0")[0]
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", info


def test_usr1_requeues_a_cw_seed_batch_which_resumes_its_batch_checkpoint(cluster, tmp_path):
    results = tmp_path / "results"
    array, merge, out = submit(cluster, RESULTS_DIR=str(results), TASKS="cw10", EPISODES="3",
                               BATCH_SIZE="32", SEEDS="0 1", AGENT="4", BATCH_SEEDS="1",
                               EXTRA_ARGS=TINY_CW)
    assert array and merge, out
    checkpoint = results / "batches" / "PALR-SAC_cw10first2_seeds0-1" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists():
        assert time.time() < deadline, "no batch checkpoint"
        time.sleep(0.2)
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array}_0")
    wait_done(cluster, array, merge)
    log = (results / "logs" / "slurm" / f"palr-cw10_{array}_0.out").read_text()
    assert "cw10 seeds 0-1 agent 4" in log and "got SIGUSR1" in log, log
    assert "run exited with status 75" in log and f"requeueing {array}_0" in log, log
    assert "(start 2)" in log and log.rstrip().endswith("run exited with status 0"), log
    for seed in (0, 1):
        run = json.loads((results / f"cw_checkpoint_cw10first2_seed{seed}_agent4.json").read_text())
        assert run["status"] == "finished" and run["batched_with"] == [0, 1]
        assert len(run["episodes"]["score"]) == 6
        assert [e["kind"] for e in run["events"]].count("resumed") == 1
    merged = json.loads((results / "cw10first2_raw_results.json").read_text())
    assert merged["agents"] == ["PALR-SAC"]
    info = job_info(cluster, f"{array}_0")[0]
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", info


def test_scancel_is_reported_cancelled_and_not_requeued(cluster, tmp_path):
    results = tmp_path / "results"
    array, _, out = submit(cluster, "--no-merge", RESULTS_DIR=str(results), TASKS="cw10",
                           EPISODES="500", BATCH_SIZE="32", SEEDS="3", AGENT="0",
                           EXTRA_ARGS=TINY_CW)
    wait_for_episodes(results / "cw_runs" / "cw10first2_seed3_agent0", 1)
    assert live_jobs(cluster)[array] == ["RUNNING"]
    cluster.run("scancel", array)
    wait_done(cluster, array, timeout=120)
    info = job_info(cluster, array)[0]
    assert info["JobState"] == "CANCELLED" and info["Restarts"] == "0", info
    states = [r["JobState"] for r in jobcomp(cluster) if r.get("ArrayJobId") == array]
    assert states == ["CANCELLED"], states
    log = (results / "logs" / "slurm" / f"palr-cw10_{array}_0.out").read_text()
    assert "got SIGTERM" in log and "requeueing" not in log, log
    assert (results / "cw_runs" / "cw10first2_seed3_agent0" / "checkpoint.pt").exists()
    assert not (results / "cw_checkpoint_cw10first2_seed3_agent0.json").exists()


def test_usr1_stops_the_habitat_trainer_through_srun_and_torchrun_and_requeues(cluster, tmp_path):
    results = tmp_path / "habitat"
    array, _, out = submit(cluster, "--habitat", "--gpus-per-node", "0", HABITAT_RESULTS=str(results),
                           SEEDS="1", CONFIG="palr_habitat/configs/ddppo_palr_fetch_tiny.yaml",
                           EXTRA_ARGS="--set curriculum.steps_per_phase=128 --set run.checkpoint_interval=1")
    run_dir = results / "palr_tiny_seed1"
    deadline = time.time() + 240
    while not (run_dir / "checkpoints" / "ckpt.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array}_0")
    wait_done(cluster, array)
    log = (results / "logs" / "slurm" / f"palr-habitat_{array}_0.out").read_text()
    # the trainers got SIGTERM through SLURM (not srun's own step kill), checkpointed and stopped
    assert "got SIGUSR1" in log and "stopped by signal 15" in log and "Killed" not in log, log
    assert f"requeueing {array}_0" in log and "(start 2)" in log, log
    assert log.rstrip().endswith("run exited with status 0"), log
    assert "srun" in next((results / "logs" / "slurm").glob("*.sbatch")).read_text()
    run = json.loads((run_dir / "result.json").read_text())
    assert run["status"] == "finished" and run["world_size"] == 1
    events = json.loads((run_dir / "curriculum_events.json").read_text())["events"]
    assert [e["phase"] for e in events if e["kind"] == "switch"] == [1, 2, 3]
    info = job_info(cluster, f"{array}_0")[0]
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", info
