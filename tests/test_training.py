"""hrl_fund.training: hyperparameter merging, the agent factory's guards, date-indexed leak-free runs, determinism."""
import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

import hrl_fund.envs  # noqa: F401  (registers hrl_fund/StatArb-v0)
from hrl_fund.envs import baseline_policy
from hrl_fund.training import (
    ALGORITHMS,
    load_specialist,
    make_agent,
    merge_hyper,
    random_policy,
    run_policy,
    specialist_settings,
    stream_metrics,
    train_specialist,
)

SEGMENTS = {"specialist_train": ["2005-01-03", "2014-12-31"], "specialist_val": ["2015-01-02", "2016-12-30"],
            "cio_train": ["2017-01-03", "2019-12-31"], "cio_val": ["2020-01-02", "2020-12-31"],
            "test": ["2021-01-04", "2022-12-28"]}
COSTS = {"equity": {"commission_bps": 1.0, "half_spread_bps": 2.0, "slippage_bps": 2.0, "borrow_bps_annual": 50.0}}
SHARED = {"lr": 0.0003, "gamma": 0.99, "n_steps": 64, "batch_size": 32, "n_epochs": 2, "ent_coef": 0.0,
          "net_arch": [16, 16], "total_timesteps": 128, "n_envs": 1, "eval_freq": 64, "torch_threads": 1}
ENV_KWARGS = {"pair": ["KO", "PEP"], "costs": COSTS["equity"], "episode_length": 64, "min_trade": 0.0}


def segment_env(segment):
    return gym.make("hrl_fund/StatArb-v0", **{**ENV_KWARGS, "segment": tuple(segment), "episode_length": None})


def test_merge_hyper_overrides_and_fills():
    merged = merge_hyper(SHARED, {"pair": ["KO", "PEP"], "algo": {"lr": 0.001, "n_envs": 2}})
    assert merged["lr"] == 0.001 and merged["n_envs"] == 2 and merged["gamma"] == 0.99
    assert merged["n_eval_episodes"] == 1
    assert SHARED["lr"] == 0.0003


@pytest.mark.parametrize("algo, block, key", [
    ({**SHARED, "learning_rate": 0.1}, None, "learning_rate"),
    (SHARED, {"algo": {"n_step": 8}}, "n_step"),
    ({key: value for key, value in SHARED.items() if key != "total_timesteps"}, None, "total_timesteps"),
    ({**SHARED, "batch_size": 0}, None, "batch_size"),
])
def test_merge_hyper_names_the_bad_key(algo, block, key):
    with pytest.raises(ValueError, match=key):
        merge_hyper(algo, block)


def test_unknown_algorithm_lists_the_known_ones():
    env = segment_env(SEGMENTS["specialist_val"])
    with pytest.raises(ValueError, match="known algorithms: " + ", ".join(ALGORITHMS)):
        make_agent("A2C", env, merge_hyper(SHARED), seed=0)


def test_dqn_on_a_box_action_fails_before_training():
    env = segment_env(SEGMENTS["specialist_val"])
    assert isinstance(env.action_space, gym.spaces.Box)
    with pytest.raises(ValueError, match="DQN needs a Discrete action space"):
        make_agent("DQN", env, merge_hyper(SHARED), seed=0)


def test_ddpg_on_a_discrete_action_fails():
    env = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match="DDPG needs a continuous Box"):
        make_agent("DDPG", env, merge_hyper(SHARED), seed=0)


def test_specialist_settings_split_env_and_baseline_keys():
    block = {"asset_class": "equity", "pair": ["KO", "PEP"], "window": 250, "z_in": 2.0, "z_feature": "z_60",
             "check_paths": 40, "algo": {"lr": 0.001}}
    env_kwargs, baseline_kwargs = specialist_settings("stat_arb", block, COSTS)
    assert env_kwargs == {"pair": ["KO", "PEP"], "window": 250, "costs": COSTS["equity"]}
    assert baseline_kwargs == {"z_in": 2.0, "z_feature": "z_60"}
    with pytest.raises(ValueError, match="asset_class"):
        specialist_settings("stat_arb", {"pair": ["KO", "PEP"]}, COSTS)


def test_run_policy_is_date_indexed_and_stays_out_of_sample():
    oos = [SEGMENTS["cio_train"][0], SEGMENTS["test"][1]]
    env = segment_env(oos)
    frame = run_policy(random_policy(env.action_space, 0), env)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "date"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index.min() > pd.Timestamp(oos[0]) and frame.index.max() <= pd.Timestamp(oos[1])
    for name in ("specialist_train", "specialist_val"):
        start, end = (pd.Timestamp(day) for day in SEGMENTS[name])
        assert not ((frame.index >= start) & (frame.index <= end)).any(), name
    assert np.isfinite(frame["return"]).all()
    # returns compound to the env's equity path
    initial = env.unwrapped.initial_equity
    np.testing.assert_allclose(initial * np.cumprod(1 + frame["return"].to_numpy()), frame["equity"], rtol=1e-9)


def test_baseline_and_random_share_the_validation_calendar():
    env = segment_env(SEGMENTS["specialist_val"])
    baseline = run_policy(baseline_policy("stat_arb", env), env)
    random_run = run_policy(random_policy(env.action_space, 1), env)
    assert baseline.index.equals(random_run.index)
    metrics = stream_metrics(random_run)
    assert metrics["n_days"] == len(random_run) and metrics["total_costs"] > 0


def _train_and_run(tmp_path, seed):
    folder = tmp_path / f"seed_{seed}"
    summary = train_specialist("stat_arb", ENV_KWARGS, merge_hyper(SHARED), seed, SEGMENTS, folder, progress_bar=False)
    env = segment_env(SEGMENTS["specialist_val"])
    frozen = load_specialist(folder, env)
    assert frozen.normalizer.training is False and frozen.normalizer.norm_reward is False
    return summary, run_policy(frozen, env), frozen.model.policy.state_dict()


def test_same_seed_same_agent_other_seed_other_agent(tmp_path):
    first = _train_and_run(tmp_path / "first", 5)
    second = _train_and_run(tmp_path / "second", 5)
    other = _train_and_run(tmp_path / "other", 6)
    assert first[0]["learning_curve"] == second[0]["learning_curve"]
    pd.testing.assert_frame_equal(first[1], second[1])
    assert first[1]["return"].abs().sum() > 0
    assert all(torch.equal(first[2][key], second[2][key]) for key in first[2])
    assert not all(torch.equal(first[2][key], other[2][key]) for key in first[2])
