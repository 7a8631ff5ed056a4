"""Known-answer, leakage and bad-input checks of the futures_spreads env (the notebook proves the same at length)."""
import numpy as np
import pytest

from hrl_fund.envs.futures_spreads import (
    FuturesSpreadsEnv,
    closed_form_gap,
    future_leak_gap,
    load_spot,
    model_roll_check,
    next_bar_canary,
    static_roll_check,
)


def test_simulated_prices_equal_closed_form():
    assert closed_form_gap(FuturesSpreadsEnv.simulated(n_bars=400, seed=3)) <= 1e-8


def test_rolls_create_no_pnl_beyond_roll_cost():
    static = static_roll_check(roll_cost_bps=2.0)
    assert static["max_abs_pnl_plus_roll_cost"] == 0.0 and static["n_rolls"] >= 11
    assert abs(static["total_roll_cost"] / static["reference_roll_cost"] - 1) <= 1e-9
    assert model_roll_check(n_bars=400, seed=4)["max_abs_gap"] <= 1e-9


def test_next_bar_fills():
    canary = next_bar_canary()
    assert abs(canary["enter_at_jump_minus_1"]) <= 1e-12
    assert abs(canary["enter_at_jump_minus_2"] - 0.10) <= 1e-9


def test_future_perturbation_leaves_past_observations():
    before, after = future_leak_gap(None, ("2011-01-03", "2012-12-31"), cut="2012-01-03")
    assert before == 0.0 and after > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"costs": {"commission_bps": -1.0}}, "commission_bps"),
    ({"roll_cost_bps": -0.5}, "'roll_cost_bps'"),
    ({"window": 100_000}, "'window'"),
    ({"ticker": "NOPE"}, "NOPE"),
    ({"segment": ("2011-01-03", "2012-12-31"), "fit_end": "2012-01-01"}, "'fit_end'"),
])
def test_bad_inputs_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FuturesSpreadsEnv(**kwargs)


def test_non_positive_price_is_rejected():
    prices = load_spot()
    prices.iloc[500, 0] = 0.0
    with pytest.raises(ValueError, match="non-positive"):
        FuturesSpreadsEnv(prices=prices)


def test_accounting_over_random_rollout():
    env = FuturesSpreadsEnv(segment=("2000-03-01", "2002-12-31"), costs={"commission_bps": 0.5, "half_spread_bps": 1.0})
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(600):
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
        env.check_accounting()
        assert info["cost"] >= 0
        if terminated or truncated:
            break
