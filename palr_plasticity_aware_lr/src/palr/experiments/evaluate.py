"""Evaluate a run's checkpoint: N episodes per task with its greedy / deterministic policy.

``python -m palr.experiments.evaluate RUN_DIR --episodes 10`` (or ``evaluate_checkpoint.py``)
loads ``RUN_DIR/checkpoint.pt`` through :func:`palr.experiments.checkpoint.load_checkpoint`;
the run identity it carries says which domain, environment, agent and settings made it, and the
agent is rebuilt from it (as Stable-Baselines3's ``load`` + ``evaluate_policy``). Every task of
the run is then played ``--episodes`` times from a generator of the evaluation's own
(``--seed``), greedy (DQN) or deterministic (SAC) unless ``--stochastic``; the per-task table is
printed and ``RUN_DIR/evaluation.json`` written (atomically). Same checkpoint, same flags: the
same numbers.

Domains: continual CartPole, permuted CartPole, Jelly Bean World (DQN: the env's schedule is
put at each task's first episode, checked against the task the env reports), Continual World
(SAC: each task's single-task env, with the task id where the run had one), Habitat Fetch
(DD-PPO: ``RUN_DIR/checkpoints/ckpt.pt``; every curriculum phase in one env of the run's backend,
the Gaussian mean as action, :mod:`palr_habitat.fetch_evaluation`).

A run directory that does not exist, holds no checkpoint, or is in use by a running process is
refused in one line (exit 2), before anything is written.

``--record_video DIR`` records the first episode of every task as ``DIR/task<k>.gif``:
Continual World offscreen through MuJoCo (``MUJOCO_GL=egl``, 84x84, its ``corner`` camera; slow
on a CPU renderer), CartPole through gymnasium's ``rgb_array`` (needs ``pygame``), Jelly Bean
World its egocentric view, Habitat Fetch the policy's head-camera RGB (CleanRL's
``--capture_video``, as GIFs: no video codec needed).
"""
from __future__ import annotations

import dataclasses
import pathlib
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from palr.experiments.cli import (OneLineParser, UsageError, check_writable_dir, configure_torch,
                                  create_dir, fail, non_negative_int, output_failure, positive_int)

__all__ = ["EVALUATION_FILE", "evaluate_run", "format_evaluation", "main"]

EVALUATION_FILE = "evaluation.json"
DQN_DOMAINS = ("cartpole", "permuted_cartpole", "jbw")
CW_DOMAIN = "cw"
HABITAT_DOMAIN = "habitat_fetch"
#: where the DD-PPO trainer keeps its checkpoint (palr_trainer.CHECKPOINT)
HABITAT_CHECKPOINT = pathlib.Path("checkpoints") / "ckpt.pt"


#: ``play(seed, capture)`` -> (return, score): one episode, its first reset seeded with ``seed``
#: (None: the env's stream goes on); ``capture`` (if given) is called after the reset and every step
Play = Callable[[Optional[int], Optional[Callable[[], None]]], Tuple[float, float]]


@dataclasses.dataclass
class TaskPlay:
    """One task to evaluate: its index and name, how to play one episode of it and how to
    render the env's current frame (RGB uint8)."""

    index: int
    name: str
    play: Play
    render: Callable[[], np.ndarray]
    close: Callable[[], None] = lambda: None


def load_run(run_dir: pathlib.Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(checkpoint state, result.json) of a run directory; UsageError (one line) when it is not
    a folder, holds no checkpoint or no identity, or is in use by another process."""
    from palr.experiments.checkpoint import load_checkpoint
    from palr.experiments.run_lock import check_not_locked
    from palr.experiments.run_state import CHECKPOINT_FILE, RESULT_FILE, read_result
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run directory; pass a run's folder (the one with "
                         f"{CHECKPOINT_FILE}, e.g. <outdir>/runs/<agent>_seed<k>)")
    check_not_locked(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not path.exists() and (run_dir / HABITAT_CHECKPOINT).exists():
        path = run_dir / HABITAT_CHECKPOINT  # a DD-PPO run directory (palr_trainer.py --outdir)
    state = load_checkpoint(path)
    if state is None:
        raise UsageError(f"no {CHECKPOINT_FILE} in {run_dir}; pass the folder of a run that has "
                         "checkpointed (it writes one every --checkpoint_every episodes)")
    identity = state.get("identity")
    if not isinstance(identity, dict) or "domain" not in identity:
        raise UsageError(f"{path} records no run identity; it cannot be "
                         "rebuilt (rerun it with this version)")
    result = read_result(run_dir / RESULT_FILE) or {}
    return state, result


def _check_interventions(stack: Any, identity: Mapping[str, Any], where: str) -> None:
    """The rebuilt intervention stack must be the run's (its state is loaded into it)."""
    from palr.experiments.run_identity import canonical
    from palr.interventions import stack_settings
    if canonical(stack_settings(stack)) != identity.get("interventions"):
        raise UsageError(f"{where}: the interventions rebuilt from its result.json differ from "
                         "the ones its checkpoint records; its result.json does not belong to it")


def _dqn_tasks(state: Dict[str, Any], result: Mapping[str, Any], stochastic: bool
               ) -> Tuple[List[TaskPlay], str]:
    from palr.agent_table import resolve_agent
    from palr.agents.dqn import DQNAgent, DQNConfig
    from palr.experiments.dqn_launcher import get_domain
    from palr.experiments.trainer import task_of
    from palr.interventions import build_stack
    identity = state["identity"]
    seed = int(identity["seed"])
    domain = get_domain(identity["domain"])
    env, windows, _ = domain.make_env(identity["env"], seed)
    dqn_fields = {f.name for f in dataclasses.fields(DQNConfig)}  # the schedule keys are not
    dqn = {k: v for k, v in identity["dqn"].items() if k in dqn_fields}  # the agent's (trainer's)
    dqn["hidden_sizes"] = tuple(dqn["hidden_sizes"])
    spec = resolve_agent(int(identity["agent_idx"]), "DQN")
    stack = build_stack(spec, (result.get("config") or {}).get("overrides") or {})
    _check_interventions(stack, identity, "this run")
    agent = DQNAgent(int(env.observation_space.shape[0]), int(env.action_space.n),
                     DQNConfig(**dqn, seed=seed, device="cpu"), stack)
    agent.load_state_dict(state["agent"])
    base = env.unwrapped

    def pin(window: Mapping[str, Any]) -> None:
        """Put the env's schedule at the window's first episode (the next reset starts it)."""
        if "start_step" in window:
            if hasattr(base, "total_steps"):  # CartPole: phases counted in env steps
                base.total_steps = int(window["start_step"])
            first = int(window["start_step"]) // int(getattr(base.config, "episode_steps", 1))
        else:
            first = int(window["start_episode"])
        base.episode = first - 1

    def player(window: Mapping[str, Any]) -> Play:
        def play(seed_: Optional[int], capture: Optional[Callable[[], None]]) -> Tuple[float, float]:
            pin(window)
            obs, info = env.reset(seed=seed_)
            if task_of(info) != int(window["index"]):
                raise RuntimeError(f"the env started task {task_of(info)}, not "
                                   f"{window['index']}: its schedule could not be pinned")
            ret, done = 0.0, False
            while not done:
                if capture is not None:
                    capture()
                obs, reward, terminated, truncated, info = env.step(agent.act(obs, stochastic))
                ret += float(reward)
                done = terminated or truncated
            return ret, ret
        return play

    def render() -> np.ndarray:
        base.render_mode = "rgb_array"
        return np.asarray(env.render())

    firsts: Dict[int, Mapping[str, Any]] = {}
    for window in windows:
        firsts.setdefault(int(window["index"]), window)
    tasks = [TaskPlay(k, str(w.get("name", k)), player(w), render)
             for k, w in sorted(firsts.items())]
    return tasks, "return"


def _cw_tasks(state: Dict[str, Any], result: Mapping[str, Any], stochastic: bool
              ) -> Tuple[List[TaskPlay], str]:
    from palr.agent_table import resolve_agent
    from palr.agents.sac import SACAgent, SACConfig
    from palr.envs.continual_world import make_task_env, task_sequence
    from palr.interventions import build_stack
    identity = state["identity"]
    seed = int(identity["seed"])
    sequence = identity["sequence"]
    names = [sequence["reference_task"]] if "reference_task" in sequence else \
        task_sequence(sequence["name"], sequence["num_tasks"], seed=seed)
    task_id = bool(identity["env"]["task_id"])
    envs = [make_task_env(name, seed, int(identity["max_episode_steps"]), stream="eval",
                          reward_version=identity["env"]["reward_version"],
                          task_id=(i, len(names)) if task_id else None)
            for i, name in enumerate(names)]
    spec = resolve_agent(int(identity["agent_idx"]), "SAC")
    sac_fields = {f.name for f in dataclasses.fields(SACConfig)}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in identity["sac"].items()
                if k in sac_fields}
    stack = build_stack(spec, (result.get("config") or {}).get("overrides") or {})
    _check_interventions(stack, identity, "this run")
    sac = SACAgent(int(envs[0].observation_space.shape[0]), int(envs[0].action_space.shape[0]),
                   SACConfig(**settings, seed=seed, device="cpu"), stack,
                   num_tasks=len(names) if task_id else 0)
    sac.load_state_dict(state["agent"])

    def player(env: Any) -> Play:
        def play(seed_: Optional[int], capture: Optional[Callable[[], None]]) -> Tuple[float, float]:
            obs, _ = env.reset(seed=seed_)
            ret, done, info = 0.0, False, {}
            while not done:
                if capture is not None:
                    capture()
                obs, reward, terminated, truncated, info = env.step(
                    sac.act(obs, stochastic, evaluation=True))
                ret += float(reward)
                done = terminated or truncated
            return ret, float(info.get("episode_success", 0.0))
        return play

    return [TaskPlay(i, name, player(env), _mujoco_renderer(env.unwrapped.mw))
            for i, (name, env) in enumerate(zip(names, envs))], "success"


def _habitat_tasks(state: Dict[str, Any], stochastic: bool) -> Tuple[List[TaskPlay], str]:
    try:
        from palr_habitat.fetch_evaluation import phase_players
    except ImportError as err:
        raise UsageError(f"evaluating a Habitat Fetch run needs the palr_habitat package ({err}); "
                         "install the project (pip install -e .) and run again") from None
    return [TaskPlay(index, name, player.play, player.frame, player.close)
            for index, name, player in phase_players(state, stochastic)], "success"


#: frame size and camera of recorded Continual World episodes
VIDEO_SIZE, MUJOCO_CAMERA = 84, "corner"


def _mujoco_renderer(mw: Any) -> Callable[[], np.ndarray]:
    """Offscreen frames of a Meta-World env (``MUJOCO_GL=egl``), made on first use."""
    holder: Dict[str, Any] = {}

    def render() -> np.ndarray:
        import mujoco
        if "r" not in holder:
            holder["r"] = mujoco.Renderer(mw.model, VIDEO_SIZE, VIDEO_SIZE)
        holder["r"].update_scene(mw.data, camera=MUJOCO_CAMERA)
        return holder["r"].render().copy()
    return render


def task_seed(seed: int, task: int) -> int:
    """The reset seed of a task's first evaluation episode: the evaluation's own stream."""
    return int(np.random.SeedSequence([seed, task]).generate_state(1)[0])


def evaluate_run(run_dir: pathlib.Path, episodes: int, seed: int = 0,
                 stochastic: bool = False, video_dir: Optional[pathlib.Path] = None,
                 video_frames: Optional[int] = None) -> Dict[str, Any]:
    """Evaluate the checkpoint of ``run_dir`` (module docstring); returns the evaluation dict
    (also what ``evaluation.json`` holds). With ``video_dir`` the first episode of every task
    is recorded there as ``task<k>.gif`` (at most ``video_frames`` frames). UsageError for a run
    that cannot be evaluated."""
    from palr.experiments.run_identity import fingerprint
    state, result = load_run(run_dir)
    identity = state["identity"]
    domain = identity["domain"]
    if video_dir is not None:
        _check_video(domain)
        create_dir(video_dir, "--record_video")
    if domain in DQN_DOMAINS:
        tasks, score_name = _dqn_tasks(state, result, stochastic)
    elif domain == CW_DOMAIN:
        tasks, score_name = _cw_tasks(state, result, stochastic)
    elif domain == HABITAT_DOMAIN:
        tasks, score_name = _habitat_tasks(state, stochastic)
    else:
        raise UsageError(f"{run_dir} holds a {domain} run; evaluation supports "
                         f"{', '.join(DQN_DOMAINS + (CW_DOMAIN, HABITAT_DOMAIN))}")
    per_task = []
    for task in tasks:
        frames: List[np.ndarray] = []

        def capture(task: TaskPlay = task, frames: List[np.ndarray] = frames) -> None:
            if video_frames is None or len(frames) < video_frames:
                frames.append(task.render())

        try:
            played = [task.play(task_seed(seed, task.index) if k == 0 else None,
                                capture if video_dir is not None and k == 0 else None)
                      for k in range(episodes)]
        finally:
            task.close()
        if video_dir is not None:
            write_gif(video_dir / f"task{task.index}.gif", frames)
        returns, scores = [p[0] for p in played], [p[1] for p in played]
        per_task.append({"index": task.index, "name": task.name, "returns": returns,
                         "scores": scores, "mean_return": float(np.mean(returns)),
                         "std_return": float(np.std(returns)), "mean_score": float(np.mean(scores))})
    counters = state.get("counters") or {}  # the DD-PPO trainer keeps its counters together
    return {"schema": "palr.evaluation/1", "run_dir": str(run_dir), "domain": domain,
            "agent": result.get("agent"), "agent_idx": identity.get("agent_idx"),
            "run_seed": identity.get("seed"), "fingerprint": fingerprint(identity),
            "checkpoint_episode": state.get("episode", counters.get("episodes")),
            "checkpoint_env_steps": state.get("env_steps", counters.get("env_steps")),
            "episodes": episodes, "seed": seed,
            "policy": "stochastic" if stochastic else "greedy/deterministic",
            "score_name": score_name, "tasks": per_task,
            "mean_score": float(np.mean([t["mean_score"] for t in per_task]))}


def write_gif(path: pathlib.Path, frames: Sequence[np.ndarray], fps: int = 25) -> None:
    """Frames (RGB uint8) as an animated GIF, written atomically."""
    import io
    from PIL import Image
    from palr.experiments.files import atomic_write_bytes
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buffer.getvalue())


def _check_video(domain: str) -> None:
    """Refuse ``--record_video`` where its renderer is missing (before anything is written)."""
    import importlib.util
    needed = {"cartpole": "pygame", "permuted_cartpole": "pygame", "cw": "mujoco"}.get(domain)
    if needed is not None and importlib.util.find_spec(needed) is None:
        raise UsageError(f"--record_video of a {domain} run needs {needed}, which is not "
                         f"installed; pip install {needed}, or leave --record_video out")


def format_evaluation(evaluation: Mapping[str, Any]) -> str:
    """The per-task table of an evaluation."""
    from palr.experiments.text_tables import text_table
    score = evaluation["score_name"]
    header = ["task", "name", "mean return", "std", f"mean {score}"] if score != "return" else \
        ["task", "name", "mean return", "std"]
    rows = []
    for t in evaluation["tasks"]:
        row = [str(t["index"]), t["name"], f"{t['mean_return']:.2f}", f"{t['std_return']:.2f}"]
        rows.append(row + ([f"{t['mean_score']:.3f}"] if score != "return" else []))
    title = (f"{evaluation['agent']} seed {evaluation['run_seed']} ({evaluation['domain']}), "
             f"checkpoint at episode {evaluation['checkpoint_episode']}: {evaluation['episodes']} "
             f"{evaluation['policy']} episode(s) per task, evaluation seed {evaluation['seed']}")
    return "\n".join([title, *text_table(header, rows),
                      f"mean {score} over tasks: {evaluation['mean_score']:.3f}"]) + "\n"


def build_parser(prog: str = "python -m palr.experiments.evaluate") -> OneLineParser:
    """The evaluate command line."""
    parser = OneLineParser(prog=prog, description="evaluate a run's checkpoint on every task of "
                                                  "the run and write RUN_DIR/" + EVALUATION_FILE)
    parser.add_argument("run_dir", type=pathlib.Path,
                        help="a run's folder (<outdir>/runs/<agent>_seed<k>, "
                             "<outdir>/cw_runs/<suffix> for Continual World, palr_trainer.py's "
                             "--outdir for Habitat Fetch)")
    parser.add_argument("--episodes", type=positive_int, default=10, help="episodes per task")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="the evaluation's own seed (env resets)")
    parser.add_argument("--record_video", type=pathlib.Path, default=None, metavar="DIR",
                        help="record the first episode of every task as DIR/task<k>.gif "
                             "(Continual World: MuJoCo offscreen with MUJOCO_GL=egl, 84x84; "
                             "CartPole: gymnasium's rgb_array, needs pygame)")
    parser.add_argument("--video_frames", type=positive_int, default=None, metavar="N",
                        help="record at most N frames per task")
    parser.add_argument("--stochastic", action="store_true",
                        help="epsilon-greedy (DQN, the run's final epsilon) or sampled (SAC) "
                             "actions instead of greedy/deterministic ones")
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m palr.experiments.evaluate"
         ) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from palr.experiments.files import atomic_write_json
    configure_torch()
    if args.record_video is not None:
        try:
            check_writable_dir(args.record_video, "--record_video")
        except UsageError as err:
            fail(parser.prog, str(err))
    try:
        evaluation = evaluate_run(args.run_dir, args.episodes, args.seed, args.stochastic,
                                  args.record_video, args.video_frames)
    except UsageError as err:
        fail(parser.prog, str(err))
    print(format_evaluation(evaluation), end="")
    out = args.run_dir / EVALUATION_FILE
    try:
        atomic_write_json(out, evaluation)
    except OSError as err:
        fail(parser.prog, output_failure(err, "run_dir"), status=1)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
