"""factor_tracking env through gymnasium.make: Discrete contract, baselines, bad inputs, next-bar fills, ETF availability."""
import gymnasium as gym
import numpy as np
import pytest

import hrl_fund.envs  # noqa: F401  (registers the ids the lead has added)
from hrl_fund.data import load_prices
from hrl_fund.envs.factor_tracking import (
    ENV_ID,
    FactorTrackingEnv,
    equal_mix_baseline,
    factor_momentum_baseline,
    fixed_candidate_baseline,
    next_bar_canary,
)

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="hrl_fund.envs.factor_tracking:FactorTrackingEnv")


@pytest.fixture(scope="module")
def env():
    return gym.make(ENV_ID, segment=("2011-01-03", "2012-12-31"))


def test_discrete_actions_and_finite_observations(env):
    assert isinstance(env.action_space, gym.spaces.Discrete)
    assert env.action_space.n == len(env.unwrapped.candidates) == 6
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(300):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(obs).all() and obs.dtype == np.float32
        assert info["cost"] >= 0 and isinstance(info["date"], np.datetime64)
        if terminated or truncated:
            break
    env.unwrapped.check_accounting()


@pytest.mark.parametrize("factory", [equal_mix_baseline, factor_momentum_baseline, fixed_candidate_baseline])
def test_baselines_are_valid_policies(env, factory):
    policy = factory(env)
    obs, _ = env.reset(seed=0)
    for _ in range(60):
        action = policy(obs)
        assert env.action_space.contains(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break


@pytest.mark.parametrize("kwargs, fragment", [
    ({"costs": {"commission_bps": -1.0}}, "commission_bps"),
    ({"tickers": ("KO", "NOPE"), "top_k": 1}, "NOPE"),
    ({"benchmark": "NDX"}, "'benchmark'"),
    ({"lookback": 100_000}, "'lookback' = 100000"),
    ({"segment": ("1990-03-01", "1990-12-31")}, "'lookback'"),
    ({"factor_etfs": ("MTUM",), "segment": ("2011-01-03", "2012-12-31")}, "MTUM"),
    ({"te_penalty": -0.5}, "'te_penalty'"),
    ({"top_k": 0}, "'top_k'"),
])
def test_bad_inputs_name_the_option(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        gym.make(ENV_ID, **kwargs)


def test_non_positive_price_names_ticker_and_value():
    prices = load_prices("offline", tickers=["KO", "PEP", "XOM", "SP500"]).loc["1999":"2003"].copy()
    prices.iloc[400, 1] = 0.0
    with pytest.raises(ValueError, match="0.0 for PEP"):
        FactorTrackingEnv(prices=prices, tickers=("KO", "PEP", "XOM"), top_k=1)


def test_next_bar_fill():
    canary = next_bar_canary()
    assert abs(canary["enter_at_jump_minus_1"]) < 1e-12
    assert abs(canary["enter_at_jump_minus_2"] - 0.10) < 1e-9
