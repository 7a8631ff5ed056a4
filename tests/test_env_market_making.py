"""market_making: bad inputs name the option, the session env is the vectorised simulator, the AS (2008) table."""
import math

import gymnasium as gym
import numpy as np
import pytest

from hrl_fund.envs.market_making import (
    AS_2008_TABLES,
    BAD_INPUTS,
    MarketMakingEnv,
    as_baseline,
    as_table,
    as_table_checks,
    env_quote_rule,
    session_profit,
    simulate_sessions,
    symmetric_baseline,
)

ENV_ID = "hrl_fund/MarketMaking-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="hrl_fund.envs.market_making:MarketMakingEnv")


@pytest.mark.parametrize("kwargs, expected", BAD_INPUTS)
def test_bad_inputs_name_the_option(kwargs, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        MarketMakingEnv(**kwargs)


def test_session_env_is_the_simulator_path_by_path():
    env = MarketMakingEnv.as_session(liquidation_cost=0.0)
    rule = as_baseline(env)
    for seed in range(5):
        simulated = simulate_sessions(env_quote_rule(env, rule), 1, np.random.default_rng(seed))["profit"][0]
        assert abs(simulated - session_profit(env, rule, seed)) < 1e-6


def test_as_table_gamma_0_1_matches_the_journal():
    table = as_table(gammas=(0.1,), n_paths=4_000, seed=11)
    failed = [record["name"] for record in as_table_checks(table, gammas=(0.1,)) if not record["passed"]]
    assert failed == []
    inventory, symmetric = table.loc[(0.1, "inventory")], table.loc[(0.1, "symmetric")]
    assert inventory["profit_std"] < 0.6 * symmetric["profit_std"]
    assert abs(inventory["spread"] - AS_2008_TABLES[0.1]["spread"]) < 0.01


def test_daily_mode_contract_and_baselines():
    env = gym.make(ENV_ID, segment=("2011-01-03", "2011-12-30"),
                   costs={"commission_bps": 1.0, "half_spread_bps": 2.0, "slippage_bps": 2.0, "borrow_bps_annual": 50.0})
    for policy in (as_baseline(env), symmetric_baseline(env)):
        obs, info = env.reset(seed=0)
        pnl_sum, finished = 0.0, False
        while not finished:
            action = policy(obs)
            assert env.action_space.contains(action)
            obs, reward, terminated, truncated, info = env.step(action)
            env.unwrapped.check_accounting()
            assert np.isfinite(obs).all() and math.isfinite(reward) and info["cost"] >= 0
            assert isinstance(info["date"], np.datetime64)
            pnl_sum += info["pnl"]
            finished = terminated or truncated
        assert truncated and info["inventory"] == 0.0
        assert abs(pnl_sum - (info["equity"] - env.unwrapped.initial_equity)) < 1e-6
