"""Jelly Bean World: built-in simulator invariants and the continual gymnasium wrapper."""
import io
import warnings

import gymnasium
import numpy as np
import pytest

from palr.envs import jbw_sim as js
from palr.envs.jbw import (ENV_ID, JellyBeanWorldConfig, JellyBeanWorldEnv, jbw_available,
                           jbw_simulator_config, split_flat_observation)

R = 5  # vision range of the presets: 11 x 11 view
BANANA, ONION, JELLYBEAN, WALL = 0, 1, 2, 3  # jbw-v0 item order
#: a cheap jbw-v0 world for tests (fewer MCMC rounds: the map's details do not matter here)
FAST = {"mcmc_iterations": 300, "first_neighbourhood_multiplier": 2}


def make_sim(seed=0, action_set="turn4", world="jbw-v0", **overrides):
    kw = dict(FAST)
    kw.update(overrides)
    return js.JBWSimulator(js.make_world_config(world, **kw), seed=seed, action_set=action_set)


def clear_around(sim, radius=7):
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            sim.set_item(sim.x + dx, sim.y + dy, None)


def color(sim, t):
    return sim.palette[t]


# --- visual field ----------------------------------------------------------------------------
def test_vision_is_centred_on_the_agent_and_rotates_with_it():
    sim = make_sim()
    clear_around(sim)
    sim.set_item(0, 1, JELLYBEAN)  # one cell "up" in the world: in front of the agent (facing up)
    sim.set_item(2, 0, BANANA)     # two cells to the agent's right
    v = sim.vision()
    assert v.shape == (2 * R + 1, 2 * R + 1, 3) and v.dtype == np.float32
    np.testing.assert_array_equal(v[R, R], sim.agent_color)  # centre = the agent
    np.testing.assert_array_equal(v[R - 1, R], color(sim, JELLYBEAN))  # row above = ahead
    np.testing.assert_array_equal(v[R, R + 2], color(sim, BANANA))     # column right = right
    assert np.count_nonzero(v.sum(axis=2)) == 3

    first = v.copy()
    sim.step(1)  # turn left: now facing LEFT (-x); the jellybean (+y) is on the agent's right
    assert sim.direction == js.LEFT and (sim.x, sim.y) == (0, 0)
    v = sim.vision()
    np.testing.assert_array_equal(v[R, R + 1], color(sim, JELLYBEAN))
    np.testing.assert_array_equal(v[R + 2, R], color(sim, BANANA))  # the banana is now behind
    for _ in range(3):
        sim.step(1)
    assert sim.direction == js.UP
    np.testing.assert_array_equal(sim.vision(), first)  # four turns = identity
    for _ in range(4):
        sim.step(2)  # four right turns too
    np.testing.assert_array_equal(sim.vision(), first)


def test_item_placed_in_front_after_each_turn_shows_in_the_front_cell():
    sim = make_sim(seed=1)
    clear_around(sim)
    for turn in range(4):
        facing = sim.direction
        fx, fy = js.DIRECTION_VECTORS[facing]
        sim.set_item(sim.x + fx, sim.y + fy, ONION)
        v = sim.vision()
        np.testing.assert_array_equal(v[R - 1, R], color(sim, ONION))
        assert np.count_nonzero(v.sum(axis=2)) == 2  # the onion and the agent
        sim.set_item(sim.x + fx, sim.y + fy, None)
        sim.step(2)  # turn right
    assert sim.direction == js.UP


def test_vision_matches_the_map_after_random_walk():
    sim = make_sim(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(300):
        sim.step(int(rng.integers(4)))
        v = sim.vision()
        for r, c in [(0, 0), (0, 2 * R), (2 * R, 3), (R - 1, R), (R, R + 1)]:
            xr, yr = c - R, R - r  # egocentric offset: right, ahead
            dx, dy = {js.UP: (xr, yr), js.DOWN: (-xr, -yr), js.LEFT: (-yr, xr),
                      js.RIGHT: (yr, -xr)}[sim.direction]
            t = sim.item_at(sim.x + dx, sim.y + dy)
            expected = np.zeros(3, np.float32) if t < 0 else color(sim, t)
            np.testing.assert_array_equal(v[r, c], expected)


# --- movement, collection, walls -------------------------------------------------------------
def test_collected_items_disappear_and_count():
    sim = make_sim(seed=3, world="jbw-v1")  # banana, onion and jellybean all collectable
    clear_around(sim)
    sim.set_item(0, 1, JELLYBEAN)
    sim.set_item(0, 2, ONION)
    got = sim.step(0)  # forward onto the jellybean
    assert got == JELLYBEAN and (sim.x, sim.y) == (0, 1)
    assert sim.item_at(0, 1) == -1
    assert sim.collected.tolist() == [0, 0, 1, 0, 0, 0]
    np.testing.assert_array_equal(sim.vision()[R, R], sim.agent_color)  # nothing under the agent
    np.testing.assert_array_equal(sim.vision()[R - 1, R], color(sim, ONION))
    assert sim.step(0) == ONION
    assert sim.collected.tolist() == [0, 1, 1, 0, 0, 0]
    assert sim.step(3) == -1 and (sim.x, sim.y) == (0, 1)  # move backward onto the emptied cell
    assert sim.collected.tolist() == [0, 1, 1, 0, 0, 0]


def test_jbw_v0_needs_a_banana_for_a_banana_and_an_onion_for_an_onion():
    """Upstream JBW-v0 (jbw.environments.make_config): required item counts banana [1,0,0,0],
    onion [0,1,0,0], jellybean none, wall [0,0,0,1], so only jellybeans are ever collected."""
    names = js.jbw_v0_config().item_names
    required = [[it.required_item_counts.get(n, 0) for n in names] for it in js.jbw_v0_config().items]
    assert names == ("banana", "onion", "jellybean", "wall")
    assert required == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    sim = make_sim(seed=3)
    clear_around(sim)
    for y, item in ((1, BANANA), (2, ONION), (3, JELLYBEAN), (4, WALL)):
        sim.set_item(0, y, item)
    assert sim.step(0) == -1 and (sim.x, sim.y) == (0, 1)  # onto the banana: it stays
    assert sim.item_at(0, 1) == BANANA
    np.testing.assert_array_equal(sim.vision()[R, R], color(sim, BANANA) + sim.agent_color)
    sim.step(1)
    sim.step(2)  # actions on the banana's cell: still not collected
    assert sim.item_at(0, 1) == BANANA
    assert sim.step(0) == -1 and sim.item_at(0, 2) == ONION  # the onion stays too
    assert sim.step(0) == JELLYBEAN and sim.item_at(0, 3) == -1
    assert sim.step(0) == -1 and (sim.x, sim.y) == (0, 3)  # the wall blocks
    assert sim.collected.tolist() == [0, 0, 1, 0]
    sim.collected[ONION] = 1  # with an onion in the inventory an onion is collected
    assert sim.step(3) == ONION and sim.collected.tolist() == [0, 2, 1, 0]
    assert sim.step(3) == -1 and sim.item_at(0, 1) == BANANA  # but a banana still needs a banana


def test_jbw_v0_env_rewards_only_jellybeans():
    env = fast_env(phase_episodes=1, episode_steps=10)
    env.reset()
    sim = env.simulator
    clear_around(sim)
    for y, item in ((1, ONION), (2, BANANA), (3, JELLYBEAN)):
        sim.set_item(0, y, item)
    rewards = [env.step(0)[1] for _ in range(3)]
    assert rewards == [0.0, 0.0, 1.0]  # the onion's -1 never comes: it cannot be collected
    for _ in range(7):
        info = env.step(1)[4]
    assert info["episode_items"] == {"banana": 0, "onion": 0, "jellybean": 1, "wall": 0}


def test_walls_block_movement_and_are_never_collected():
    sim = make_sim(seed=4)
    clear_around(sim)
    sim.set_item(0, 1, WALL)
    for _ in range(3):
        assert sim.step(0) == -1
        assert (sim.x, sim.y) == (0, 0)
    assert sim.item_at(0, 1) == WALL and sim.collected.sum() == 0
    sim.step(1)  # turn left: facing -x, the path is free
    sim.step(0)
    assert (sim.x, sim.y) == (-1, 0)


def test_move4_moves_without_turning():
    sim = make_sim(seed=5, action_set="move4")
    clear_around(sim)
    for a, pos in [(0, (0, 1)), (1, (-1, 1)), (2, (0, 1)), (3, (0, 0))]:
        sim.step(a)
        assert (sim.x, sim.y) == pos and sim.direction == js.UP


# --- scent -----------------------------------------------------------------------------------
def test_scent_diffusion_table_matches_the_real_recurrence():
    D = js.diffusion_table(32, 0.4, 0.14, 2000)
    c = 16
    assert D[0, c, c] == pytest.approx(1.0) and D[0].sum() == pytest.approx(1.0)
    assert D[1, c, c] == pytest.approx(1.4)        # lambda * 1 + new unit
    assert D[1, c + 1, c] == pytest.approx(0.14)   # alpha * 1
    assert D[2, c, c] == pytest.approx(0.4 * 1.4 + 1 + 4 * 0.14 * 0.14)
    np.testing.assert_allclose(D[-1], D[-1].T)
    assert np.all(np.diff(D[:, c, c + 3]) >= 0)    # a standing source only adds scent


def test_scent_of_an_item_and_its_decay_after_collection():
    sim = make_sim(seed=6)
    clear_around(sim)
    base = sim.scent()
    sim.set_item(0, 2, JELLYBEAN)
    s = sim.scent()
    expected = base + sim.D_inf[16, 18] * sim.scents[JELLYBEAN]
    np.testing.assert_allclose(s, expected, rtol=1e-5)
    assert s[2] > base[2]
    sim.step(0)
    sim.step(0)  # collected at age 0: the scent only starts to fade
    after = [sim.scent()[2]]
    for _ in range(300):
        sim.step(1)
        after.append(sim.scent()[2])
    assert np.all(np.diff(after) <= 1e-6) and after[-1] < after[0]


# --- generation ------------------------------------------------------------------------------
def test_generation_is_deterministic_under_a_seed_and_differs_across_seeds():
    def run(seed):
        sim = make_sim(seed=seed)
        rng = np.random.default_rng(123)
        obs = []
        for _ in range(400):
            sim.step(int(rng.integers(4)))
            obs.append(np.concatenate([sim.vision().ravel(), sim.scent()]))
        grids = {k: p.grid.copy() for k, p in sim.patches.items()}
        return np.stack(obs), grids

    o1, g1 = run(7)
    o2, g2 = run(7)
    o3, g3 = run(8)
    np.testing.assert_array_equal(o1, o2)
    assert g1.keys() == g2.keys() and all(np.array_equal(g1[k], g2[k]) for k in g1)
    common = set(g1) & set(g3)
    assert any(not np.array_equal(g1[k], g3[k]) for k in common)


def test_fixed_patches_never_change_and_maps_have_every_item_kind():
    sim = make_sim(seed=9)
    key = sim._block_key
    core = {(key[0] + i, key[1] + j) for i in (0, 1) for j in (0, 1)}
    assert all(sim.patches[k].fixed for k in core) and len(sim.patches) == 16
    snapshot = {k: sim.patches[k].grid.copy() for k in core}
    rng = np.random.default_rng(1)
    for _ in range(600):
        sim.step(0 if rng.random() < 0.6 else int(rng.integers(4)))
    changed = [k for k in core if not np.array_equal(sim.patches[k].grid, snapshot[k])]
    for k in changed:  # only collected items may have gone
        diff = sim.patches[k].grid != snapshot[k]
        assert np.all(sim.patches[k].grid[diff] == -1)
    assert len(sim.patches) > 16
    counts = np.zeros(4, dtype=int)
    for p in sim.patches.values():
        if p.fixed:
            counts += np.bincount(p.grid[p.grid >= 0].astype(int), minlength=4)
    assert counts[BANANA] > 0 and counts[JELLYBEAN] > 0 and counts[WALL] > 0


def test_interaction_kernels_follow_the_energy_functions():
    e = js._Energy(js.jbw_v0_config())
    K = e.K
    assert K == 15  # cross reaches 15 cells; the piecewise box sqrt(200) < 15
    H = e.Hd[-1]  # H[new] = kernel of adding a type: Hd[empty, new][t]
    # wall-wall cross (10, 15, 20, -200, -20, 1), counted both ways (g(x, y) + g(y, x))
    assert H[WALL][WALL][K + 5, K] == 40 and H[WALL][WALL][K + 12, K] == -400
    assert H[WALL][WALL][K + 3, K + 3] == -40 and H[WALL][WALL][K + 12, K + 12] == 2
    # jellybean-banana box (10, 200, 2, -100): sq 9 < 10 -> 4 ; sq 10 -> -200 ; sq 200 -> 0
    assert H[BANANA][JELLYBEAN][K + 3, K] == 4 and H[BANANA][JELLYBEAN][K + 3, K + 1] == -200
    assert H[BANANA][JELLYBEAN][K + 14, K + 2] == 0
    assert np.all(H[:, :, K, K] == 0)  # no self-interaction


@pytest.mark.parametrize("sampler", ["mh", "gibbs"])
def test_both_samplers_make_jellybean_clusters_and_wall_lines(sampler):
    sim = js.JBWSimulator(js.jbw_v0_config(sampler=sampler, first_neighbourhood_multiplier=3),
                          seed=11)
    g = np.concatenate([np.concatenate([sim.patches[(i, j)].grid for j in (-1, 0)], axis=1)
                        for i in (-1, 0)], axis=0)
    walls = np.argwhere(g == WALL)
    assert len(walls) > 10
    # wall cells mostly have a wall neighbour on the same row or column (lines)
    wallset = {tuple(p) for p in walls.tolist()}
    aligned = sum(any((x + dx, y + dy) in wallset for dx, dy in ((1, 0), (-1, 0), (0, 1),
                                                                 (0, -1), (2, 0), (-2, 0),
                                                                 (0, 2), (0, -2)))
                  for x, y in wallset)
    assert aligned / len(wallset) > 0.7
    jb = np.argwhere(g == JELLYBEAN)
    assert len(jb) > 0
    d2 = ((jb[:, None, :] - jb[None, :, :]) ** 2).sum(-1)
    near = (d2 < 10).sum(1) - 1  # other jellybeans within sqrt(10): clusters
    assert np.mean(near > 0) > 0.5


def test_state_dict_roundtrip_continues_identically():
    torch = pytest.importorskip("torch")
    sim = make_sim(seed=12)
    rng = np.random.default_rng(3)
    for _ in range(150):
        sim.step(int(rng.integers(4)))
    buf = io.BytesIO()
    torch.save(sim.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = make_sim(seed=999)
    other.load_state_dict(state)
    actions = rng.integers(4, size=300).tolist()
    for a in actions:
        assert sim.step(a) == other.step(a)
        np.testing.assert_array_equal(sim.vision(), other.vision())
        np.testing.assert_array_equal(sim.scent(), other.scent())


def test_state_dict_roundtrip_keeps_the_cached_scent_of_collected_items_bit_identical():
    """jbw-v1 (scented items everywhere): after collections, a reloaded simulator holds the very
    scent arrays the running one built (FFT once, then one subtraction per collected item), not
    an FFT of today's map, which differs by round-off and flipped float32 scent observations."""
    torch = pytest.importorskip("torch")
    sim = js.JBWSimulator(js.jbw_v1_config(**FAST), seed=4, action_set="turn4")
    rng = np.random.default_rng(1)
    collected = sum(sim.step(int(rng.integers(4))) >= 0 for _ in range(600))
    assert collected >= 2  # items were taken out of the cached scent
    buf = io.BytesIO()
    torch.save(sim.state_dict(), buf)
    buf.seek(0)
    other = js.JBWSimulator(js.jbw_v1_config(**FAST), seed=99, action_set="turn4")
    other.load_state_dict(torch.load(buf, weights_only=True))
    for _ in range(600):
        a = int(rng.integers(4))
        assert sim.step(a) == other.step(a)
        np.testing.assert_array_equal(sim.scent(), other.scent())
        np.testing.assert_array_equal(sim.vision(), other.vision())


# --- the gymnasium environment ---------------------------------------------------------------
def fast_env(**kw):
    args = dict(world="jbw-v0", world_overrides=FAST, episode_steps=20, phase_episodes=2,
                backend="builtin")
    args.update(kw)
    return JellyBeanWorldEnv(**args)


def test_reward_sign_flips_exactly_at_the_phase_boundary():
    env = fast_env(phase_episodes=2, episode_steps=5)
    rewards, phases, tasks = [], [], []
    for ep in range(6):
        _, info = env.reset()
        assert info["episode"] == ep
        sim = env.simulator
        fx, fy = js.DIRECTION_VECTORS[sim.direction]
        sim.set_item(sim.x + fx, sim.y + fy, JELLYBEAN)
        _, r, term, trunc, info = env.step(0)
        rewards.append(r)
        phases.append(info["phase"])
        tasks.append(info["task_index"])
        for _ in range(4):
            _, _, term, trunc, info = env.step(1)
        assert trunc and not term and "episode_items" in info
    assert rewards == [1.0, 1.0, -1.0, -1.0, 1.0, 1.0]
    assert phases == [0, 0, 1, 1, 0, 0] and tasks == [0, 0, 1, 1, 2, 2]
    assert env.num_phases == 2


def test_item_rewards_are_configurable_and_scaled_by_the_sign():
    env = fast_env(item_rewards={"banana": 0.5, "onion": 2.0}, phase_signs=(1.0, -3.0),
                   phase_episodes=1, world="jbw-v1", action_set="turn4")
    out = []
    for ep in range(2):
        env.reset()
        sim = env.simulator
        for t in (BANANA, ONION, JELLYBEAN):
            fx, fy = js.DIRECTION_VECTORS[sim.direction]
            sim.set_item(sim.x + fx, sim.y + fy, t)
            out.append(env.step(0)[1])
    assert out == [0.5, 2.0, 0.0, -1.5, -6.0, 0.0]


def test_observation_layout_and_gymnasium_make():
    env = gymnasium.make(ENV_ID, world="jbw-v0", world_overrides=FAST, backend="builtin")
    obs, info = env.reset(seed=5)
    assert obs.shape == (11 * 11 * 3 + 3,) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    vision, scent = split_flat_observation(obs)
    np.testing.assert_array_equal(vision, env.unwrapped.simulator.vision())
    np.testing.assert_array_equal(scent, env.unwrapped.simulator.scent())
    assert info["backend"] == "builtin" and env.unwrapped.backend == "builtin"
    d = fast_env(obs_mode="dict")
    o, _ = d.reset()
    assert set(o) == {"vision", "scent"} and o["vision"].shape == (11, 11, 3)
    assert d.observation_space.contains(o)


def test_gymnasium_check_env_passes():
    from gymnasium.utils.env_checker import check_env

    for kw in ({}, {"obs_mode": "dict", "world_mode": "fresh", "action_set": "jbw"}):
        env = fast_env(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env, skip_render_check=True)


def test_reset_seed_rebuilds_the_world_and_fresh_mode_changes_worlds():
    env = fast_env()
    o1, _ = env.reset(seed=3)
    for _ in range(5):
        env.step(0)
    o2, _ = env.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    o3, _ = env.reset()  # continuing: the same world, the agent where it stopped
    assert env.simulator.time == 0  # seeded reset made a new world; no steps since
    fresh = fast_env(world_mode="fresh")
    seen = set()
    for _ in range(3):
        fresh.reset()
        sim = fresh.simulator
        assert (sim.x, sim.y, sim.time) == (0, 0, 0)
        seen.add(sim.patches[(0, 0)].grid.tobytes())
    assert len(seen) == 3


def test_env_state_dict_resumes_identically():
    torch = pytest.importorskip("torch")
    env = fast_env(episode_steps=30, action_set="turn4")
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(int(rng.integers(4)))
    buf = io.BytesIO()
    torch.save(env.state_dict(), buf)
    buf.seek(0)
    other = fast_env(episode_steps=30, action_set="turn4")
    other.load_state_dict(torch.load(buf, weights_only=True))
    for _ in range(60):
        a = int(rng.integers(4))
        r1, r2 = env.step(a), other.step(a)
        np.testing.assert_array_equal(r1[0], r2[0])
        assert r1[1:4] == r2[1:4]
        if r1[3]:
            np.testing.assert_array_equal(env.reset()[0], other.reset()[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"phase_episodes": -1}, "phase_episodes must be a positive integer"),
    ({"phase_episodes": 0}, "phase_episodes must be a positive integer"),
    ({"episode_steps": 0}, "episode_steps must be a positive integer"),
    ({"item_rewards": {"diamond": 1.0}}, "unknown item 'diamond'.*valid items.*jellybean"),
    ({"item_rewards": {"onion": float("nan")}}, "finite number"),
    ({"world": "jbw-v9"}, "valid: jbw-v0, jbw-v1, jbw-paper"),
    ({"phase_steps": 150, "episode_steps": 100}, "phase_steps \\(150\\) must be a multiple of "
                                                 "episode_steps \\(100\\)"),
    ({"phase_steps": 0}, "phase_steps must be a positive integer"),
    ({"action_set": "wasd"}, "valid: jbw, turn4, move4"),
    ({"obs_mode": "pixels"}, "valid: flat, dict"),
    ({"world_mode": "episodic"}, "valid: continuing, fresh"),
    ({"backend": "unity"}, "valid: auto, builtin, jbw"),
    ({"phase_signs": (1.0, 0.0)}, "non-zero"),
    ({"world_overrides": {"patch": 16}}, "unknown world_overrides keys.*patch_size"),
    ({"world_overrides": {"vision_range": 40}}, "vision_range must be an integer in"),
])
def test_bad_config_raises_value_error_naming_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        JellyBeanWorldEnv(**kwargs)


def test_bad_world_specs_raise_value_error():
    with pytest.raises(ValueError, match="refers to unknown items"):
        js.WorldConfig(items=[js.ItemSpec("a", (0,), (1,), interactions={"b": ("zero",)})])
    with pytest.raises(ValueError, match="valid fn: zero, piecewise_box, cross"):
        js.WorldConfig(items=[js.ItemSpec("a", (0,), (1,), interactions={"a": ("cross_hash",)})],
                       agent_color=(0,))
    with pytest.raises(ValueError, match="diverges"):
        js.jbw_v0_config(decay_param=0.5, diffusion_param=0.2)
    with pytest.raises(ValueError, match="valid items"):
        js.jbw_v0_config().item_index("truffle")


@pytest.mark.skipif(jbw_available(), reason="the real jbw package is installed here")
def test_missing_real_jbw_is_a_clear_error_and_auto_falls_back():
    with pytest.raises(ValueError, match="setup_jbw.sh"):
        JellyBeanWorldEnv(backend="jbw")
    assert fast_env(backend="auto").backend == "builtin"


def test_config_schedule_helpers():
    cfg = JellyBeanWorldConfig(phase_episodes=3, phase_signs=(1.0, -1.0, 0.5))
    assert [cfg.phase_of_episode(e) for e in range(10)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]
    assert cfg.reward_vector().tolist() == [0.0, -1.0, 1.0, 0.0, 0.0, 0.0]  # jbw-v1 order


# --- presets, actions and the paper's schedule --------------------------------------------------
@pytest.mark.parametrize("world", ["jbw-v0", "jbw-v1", "jbw-paper"])
def test_every_preset_has_upstreams_three_actions_and_four_on_request(world):
    env = JellyBeanWorldEnv(world=world, world_overrides=FAST, backend="builtin")
    assert env.config.action_set == "jbw" and env.action_space.n == 3
    env.reset()
    sim = env.simulator
    assert (sim.x, sim.y, sim.direction) == (0, 0, js.UP)
    env.step(1)
    assert sim.direction == js.LEFT and (sim.x, sim.y) == (0, 0)   # 1 = turn left
    env.step(2)
    env.step(2)
    assert sim.direction == js.RIGHT and (sim.x, sim.y) == (0, 0)  # 2 = turn right
    clear_around(sim)
    env.step(0)
    assert (sim.x, sim.y) == (1, 0)                                 # 0 = move forward
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        env.step(3)
    four = JellyBeanWorldEnv(world=world, world_overrides=FAST, backend="builtin",
                             action_set="turn4")
    assert four.action_space.n == 4
    four.reset()
    clear_around(four.simulator)
    four.step(3)  # 3 = move backward, facing kept
    assert (four.simulator.x, four.simulator.y, four.simulator.direction) == (0, -1, js.UP)


def test_jbw_paper_preset_is_the_papers_world():
    """Configurations.swift (rebuttal = false): vision range 8, patch size 64, 10,000 MCMC
    iterations, agent colour 0, and jbw-v1's six items with their energies."""
    paper, v1 = js.make_world_config("jbw-paper"), js.make_world_config("jbw-v1")
    assert (paper.vision_range, paper.patch_size, paper.mcmc_iterations) == (8, 64, 10_000)
    assert tuple(paper.agent_color) == (0.0, 0.0, 0.0)
    assert (paper.decay_param, paper.diffusion_param, paper.deleted_item_lifetime) == (0.4, 0.14,
                                                                                      2000)
    assert paper.items == v1.items and paper.item_names == (
        "banana", "onion", "jellybean", "wall", "tree", "truffle")
    assert js.make_world_config("jbw-paper", mcmc_iterations=50).mcmc_iterations == 50
    env = JellyBeanWorldEnv(world="jbw-paper", world_overrides=FAST, backend="builtin")
    obs, _ = env.reset()
    assert obs.shape == (17 * 17 * 3 + 3,)
    vision, scent = split_flat_observation(obs, vision_range=8)
    assert vision.shape == (17, 17, 3) and scent.shape == (3,)
    clear_around(env.simulator, radius=9)
    np.testing.assert_array_equal(env.simulator.vision()[8, 8], np.zeros(3))  # agent colour 0


def _reward_of_a_jellybean(env):
    """Put a jellybean in front of the agent and step onto it; the reward."""
    sim = env.simulator
    fx, fy = js.DIRECTION_VECTORS[sim.direction]
    sim.set_item(sim.x + fx, sim.y + fy, JELLYBEAN)
    return env.step(0)[1]


def test_phase_steps_flip_the_sign_after_exactly_that_many_steps():
    env = fast_env(phase_steps=40, episode_steps=20, phase_episodes=7)  # phase_steps wins
    assert env.config.phase_episodes == 2
    rewards = {}
    env.reset()
    for step in range(1, 121):
        if step in (40, 41, 80, 81):
            rewards[step] = _reward_of_a_jellybean(env)
        else:
            env.step(1)
        if env.elapsed_steps == env.config.episode_steps:
            env.reset()
    assert rewards == {40: 1.0, 41: -1.0, 80: -1.0, 81: 1.0}


@pytest.mark.slow
def test_paper_schedule_flips_the_sign_at_100k_steps():
    """jbw-paper with the paper's cyclical schedule: a jellybean is worth +1 at step 100,000 and
    -1 at step 100,001 (1,000-step episodes in one continuing world)."""
    env = JellyBeanWorldEnv(world="jbw-paper", world_overrides=FAST, backend="builtin",
                            phase_steps=100_000, episode_steps=1000)
    env.reset()
    for step in range(1, 100_000):
        if env.step(1)[3]:  # turning in place: no map generation, fast
            env.reset()
    assert env.elapsed_steps == 999 and env.task_index == 0
    assert _reward_of_a_jellybean(env) == 1.0  # step 100,000: the last of the first phase
    _, info = env.reset()
    assert info["episode"] == 100 and info["task_index"] == 1 and info["reward_sign"] == -1.0
    assert _reward_of_a_jellybean(env) == -1.0  # step 100,001


# --- fidelity ----------------------------------------------------------------------------------
def reference_observation(items, deleted, x, y, direction, t, wc):
    """Vision (image layout) and scent at (x, y) computed from scratch from a list of live items
    ``(type, ix, iy)`` and collected items ``(ix, iy, type, time)`` (jbw/simulator.h semantics)."""
    R, n, L = wc.vision_range, wc.patch_size, wc.deleted_item_lifetime
    h = n // 2
    D = js.diffusion_table(n, wc.decay_param, wc.diffusion_param, L)
    pal = np.array([it.color for it in wc.items], np.float32)
    sc = np.array([it.scent for it in wc.items], np.float64)
    vis = np.zeros((2 * R + 1, 2 * R + 1, wc.color_dim), np.float32)
    scent = np.zeros(wc.scent_dim)
    for typ, ix, iy in items:
        dx, dy = ix - x, iy - y
        if abs(dx) <= h and abs(dy) <= h:
            scent += sc[typ] * D[L - 1, dx + h, dy + h]
        if abs(dx) <= R and abs(dy) <= R:
            xr, yr = js._rotate_offset(direction, dx, dy)
            vis[R - yr, xr + R] += pal[typ]
    vis[R, R] += np.asarray(wc.agent_color, np.float32)
    for ix, iy, typ, td in deleted:
        dx, dy, age = ix - x, iy - y, t - td
        if abs(dx) <= h and abs(dy) <= h and age < L:
            scent += sc[typ] * (D[L - 1, dx + h, dy + h] - D[age, dx + h, dy + h])
    return vis, scent


@pytest.mark.parametrize("world", ["jbw-v0", "jbw-v1"])
def test_builtin_observations_match_a_from_scratch_reference(world):
    """jbw-v1 collects items (lingering scent); on jbw-v0 the agent also stands on bananas and
    onions it cannot collect (vision: item plus agent colour)."""
    sim = make_sim(seed=13, world=world)
    wc = sim.config
    rng = np.random.default_rng(5)
    deleted, stood = [], 0
    for _ in range(400):
        got = sim.step(0 if rng.random() < 0.5 else int(rng.integers(4)))
        if got >= 0:
            deleted.append((sim.x, sim.y, got, sim.time))
        stood += sim.item_at(sim.x, sim.y) >= 0
        items = [(sim.item_at(ix, iy), ix, iy) for ix in range(sim.x - 16, sim.x + 17)
                 for iy in range(sim.y - 16, sim.y + 17) if sim.item_at(ix, iy) >= 0]
        vis, scent = reference_observation(items, deleted, sim.x, sim.y, sim.direction, sim.time,
                                           wc)
        np.testing.assert_array_equal(sim.vision(), vis)
        np.testing.assert_allclose(sim.scent(), scent, rtol=1e-5, atol=1e-6)
    assert (len(deleted) if world == "jbw-v1" else stood) > 0


needs_jbw = pytest.mark.skipif(not jbw_available(), reason="the real jbw package is not "
                               "installed (palr_plasticity_aware_lr/setup_jbw.sh)")


def _jbw_config_fields(config):
    """A ``jbw.SimulatorConfig``'s settings as plain values (enums by value; the seed left out)."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return getattr(v, "value", v)
    items = [{k: plain(getattr(it, k)) for k in (
        "name", "scent", "color", "required_item_counts", "required_item_costs", "blocks_movement",
        "visual_occlusion", "intensity_fn", "intensity_fn_args", "interaction_fns")}
        for it in config.items]
    return {"items": items, **{k: plain(getattr(config, k)) for k in (
        "max_steps_per_movement", "allowed_movement_directions", "allowed_turn_directions",
        "no_op_allowed", "vision_range", "patch_size", "mcmc_num_iter", "agent_color",
        "collision_policy", "decay_param", "diffusion_param", "deleted_item_lifetime",
        "agent_field_of_view")}}


@needs_jbw
@pytest.mark.parametrize("world, upstream", [("jbw-v0", "make_config"),
                                             ("jbw-v1", "make_v1_config")])
def test_real_jbw_backend_config_is_upstreams(world, upstream):
    """The config the jbw backend hands the real simulator (3 actions) is upstream's gym config:
    items, energies, required counts (jbw-v0: a banana for a banana, an onion for an onion),
    allowed moves and turns, and every simulator setting."""
    import jbw.environments
    ours = jbw_simulator_config(js.make_world_config(world), "jbw", seed=0)
    assert _jbw_config_fields(ours) == _jbw_config_fields(getattr(jbw.environments, upstream)())


@needs_jbw
def test_real_jbw_backend_paper_config_is_v1_with_the_papers_settings():
    import jbw.environments
    ours = _jbw_config_fields(jbw_simulator_config(js.make_world_config("jbw-paper"), "jbw", 0))
    v1 = _jbw_config_fields(jbw.environments.make_v1_config())
    v1.update(vision_range=8, patch_size=64, mcmc_num_iter=10_000, agent_color=[0.0, 0.0, 0.0])
    assert ours == v1


@needs_jbw
@pytest.mark.parametrize("world", ["jbw-v0", "jbw-v1", "jbw-paper"])
def test_real_jbw_backend_follows_the_builtin_conventions(world):
    """The real simulator's moves, vision (converted to the image layout) and scent are what the
    built-in simulator's rules predict from the real map (4 actions: backward moves too)."""
    env = JellyBeanWorldEnv(backend="jbw", world=world, episode_steps=10 ** 6, seed=5,
                            action_set="turn4")
    obs, _ = env.reset()
    real, agent, wc = env.simulator, env._backend.agent, env.config.world_config
    R, reach = wc.vision_range, wc.patch_size // 2 + 1

    def live_items(x, y, rad):
        return [(typ, ix, iy) for patch in real._map((x - rad, y - rad), (x + rad, y + rad))
                for (typ, (ix, iy)) in patch[4]]

    rng = np.random.default_rng(0)
    deleted, t = [], 0
    for _ in range(200 if wc.patch_size <= 32 else 50):  # the real map() of 64-patches is slow
        x, y = (int(v) for v in agent.position())
        d = agent.direction().value
        a = 0 if rng.random() < 0.5 else int(rng.integers(4))
        kind, rel = js.ACTION_SETS["turn4"][a]
        near = {(ix, iy): typ for typ, ix, iy in live_items(x, y, 2)}
        if kind == "move":
            dx, dy = js.move_vector(d, rel)
            tx, ty, nd = x + dx, y + dy, d
        else:
            tx, ty, nd = x, y, js._TURN[(d, rel)]
        if near.get((tx, ty), -1) >= 0 and wc.items[near[(tx, ty)]].blocks_movement:
            tx, ty = x, y
        before = np.asarray(agent.collected_items(), np.int64).copy()
        obs, _, _, _, _ = env.step(a)
        t += 1
        assert (tuple(int(v) for v in agent.position()), agent.direction().value) == ((tx, ty), nd)
        delta = np.asarray(agent.collected_items(), np.int64) - before
        if delta.any():
            deleted.append((tx, ty, int(np.argmax(delta)), t))
        vis, scent = reference_observation(live_items(tx, ty, reach), deleted, tx, ty, nd, t, wc)
        v, s = split_flat_observation(obs, R)
        np.testing.assert_array_equal(v, vis)
        np.testing.assert_allclose(s, scent, rtol=1e-4, atol=1e-5)
