"""Contract of every registered hrl_fund env: make() with no args, both check_envs, determinism, accounting, info."""
import importlib
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hrl_fund.envs

REQUIRED_INFO = {"equity", "pnl", "cost", "position", "date"}
ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("hrl_fund/"))


ALL_IDS = [pytest.param(env_id, id=env_id) for env_id in ENV_IDS]


def test_every_env_is_registered_and_its_module_imports():
    "A package that fails to import must fail here, never shrink the list of envs the contract runs on"
    expected = {spec.env_id for spec in hrl_fund.envs.SPECIALISTS.values()} | {hrl_fund.envs.ALLOCATOR_ID,
                                                                               hrl_fund.envs.MULTI_ASSET_ID}
    assert expected <= set(ENV_IDS), sorted(expected - set(ENV_IDS))
    for env_id in sorted(expected):
        entry_point = gym.registry[env_id].entry_point
        module_name, class_name = entry_point.split(":")
        assert hasattr(importlib.import_module(module_name), class_name), entry_point


def _make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs)


def _random_rollout(env: gym.Env, seed: int, n_steps: int) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    steps = [(obs.copy(), 0.0, False, False, info)]
    for _ in range(n_steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps.append((obs.copy(), float(reward), terminated, truncated, info))
        if terminated or truncated:
            break
    return steps


def test_every_specialist_is_registered():
    for spec in hrl_fund.envs.SPECIALISTS.values():
        assert spec.env_id in gym.registry, spec.env_id
    assert hrl_fund.envs.ALLOCATOR_ID in gym.registry


def test_unknown_specialist_lists_known_names():
    env = gym.make("hrl_fund/StatArb-v0")
    with pytest.raises(KeyError, match="stat_arb"):
        hrl_fund.envs.baseline_policy("no_such_specialist", env)


@pytest.mark.parametrize("name", sorted(hrl_fund.envs.SPECIALISTS))
def test_baseline_policy_gives_valid_actions(name):
    env = gym.make(hrl_fund.envs.SPECIALISTS[name].env_id)
    policy = hrl_fund.envs.baseline_policy(name, env)
    obs, _ = env.reset(seed=0)
    for _ in range(50):
        action = policy(obs)
        assert env.action_space.contains(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_make_without_arguments(env_id):
    env = _make(env_id)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_action_space_fits_the_algorithm(env_id):
    "Box actions are float32 in [-1, 1]-scaled bounds (PPO/DDPG); DQN's specialists have a Discrete space"
    space = _make(env_id).action_space
    algo = {spec.env_id: spec.algo for spec in hrl_fund.envs.SPECIALISTS.values()}.get(env_id, "PPO")
    if algo == "DQN":
        assert isinstance(space, gym.spaces.Discrete) and space.n >= 2
    else:
        assert isinstance(space, gym.spaces.Box)
        assert space.dtype == np.float32
        assert np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(_make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sb3_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb3_check_env(_make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_same_seed_same_trajectory(env_id):
    env = _make(env_id)
    first, second = _random_rollout(env, seed=3, n_steps=200), _random_rollout(env, seed=3, n_steps=200)
    assert len(first) == len(second)
    for (obs_a, reward_a, *_), (obs_b, reward_b, *_) in zip(first, second, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_info_keys_and_accounting_identity(env_id):
    env = _make(env_id)
    steps = _random_rollout(env, seed=1, n_steps=1_000)
    start_equity = steps[0][4]["equity"]
    pnl_sum = 0.0
    for _, _, _, _, info in steps[1:]:
        assert REQUIRED_INFO <= set(info), REQUIRED_INFO - set(info)
        assert info["cost"] >= 0
        assert isinstance(info["date"], np.datetime64)
        pnl_sum += info["pnl"]
    final_equity = steps[-1][4]["equity"]
    assert abs(pnl_sum - (final_equity - start_equity)) <= 1e-9 * max(1.0, abs(start_equity))
    if hasattr(env.unwrapped, "check_accounting"):
        env.unwrapped.check_accounting()


def test_stat_arb_bad_inputs_name_the_option():
    with pytest.raises(ValueError, match="commission_bps"):
        gym.make("hrl_fund/StatArb-v0", costs={"commission_bps": -1.0})
    with pytest.raises(ValueError, match="NOPE"):
        gym.make("hrl_fund/StatArb-v0", pair=("KO", "NOPE"))
    with pytest.raises(ValueError, match="'window'"):
        gym.make("hrl_fund/StatArb-v0", window=100_000)
    with pytest.raises(ValueError, match="'window'"):
        gym.make("hrl_fund/StatArb-v0", segment=("1990-03-01", "1995-12-29"))


def test_stat_arb_segment_and_dates():
    env = gym.make("hrl_fund/StatArb-v0", segment=("2015-01-02", "2016-12-30")).unwrapped
    assert env.dates[0] == np.datetime64("2015-01-02") and env.dates[-1] == np.datetime64("2016-12-30")
    _, info = env.reset(seed=0)
    assert info["date"] == env.dates[0]
