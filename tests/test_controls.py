"""hrl_fund.controls: the committed limits validate, the trained allocators' own weight maps pass the controls
untouched, every output of random (often broken) proposals lies on the simplex within every limit, each breaker's safe
action and their precedence, events that serialise to JSON, bad limits and states refused by name, and the speed."""
import json
import time
from dataclasses import replace

import numpy as np
import pytest

from conftest import REPO
from hrl_fund.allocator import project_weights
from hrl_fund.config import load_params
from hrl_fund.controls import ControlLimits, FundState, apply_controls, as_date
from hrl_fund.multi_asset_env import masked_weights

ASSETS = ["SP500", "STOCK_A", "STOCK_B", "BOND", "HEDGE", "COIN", "ETH", "CASH"]
CLASSES = ["equity_index", "equity", "equity", "bond", "volatility_hedge", "crypto", "crypto", "cash"]
SLEEVES = ["stat_arb", "market_making", "vol_trading", "delta_hedging", "futures_spreads", "factor_tracking",
           "fx_arbitrage", "cash"]
CASH_ONLY = np.eye(8)[7]


@pytest.fixture
def limits():
    return ControlLimits.from_params(load_params(REPO / "params.yaml")["serving"]["controls"])


@pytest.fixture
def healthy():
    return FundState("2024-03-04", "2024-03-01", drawdown=0.02, daily_return=0.001, weights=np.full(8, 1 / 8))


def test_the_allocators_own_weights_pass_the_committed_controls_untouched(limits, healthy):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (200, 8))
    multi_asset = masked_weights(actions, np.ones((200, 8)), cash_index=7, max_weight=limits.max_weight)
    cio = np.array([project_weights(action, max_weight=limits.max_weight) for action in actions])
    state = replace(healthy, weights=None)  # no turnover judged: the policy's own answer, nothing else
    for weights in multi_asset:
        for proposal in (weights, weights.astype(np.float32)):  # float32: what an ONNX session returns
            decision = apply_controls(proposal, ASSETS, CLASSES, limits, state, stale_days=5)
            assert decision.fired == [] and decision.safe_action is None
            np.testing.assert_allclose(decision.weights, weights, atol=1e-6)
    for weights in cio:
        decision = apply_controls(weights, SLEEVES, None, limits, state, stale_days=5)
        assert decision.fired == []
        np.testing.assert_allclose(decision.weights, weights, atol=1e-15)


def test_every_output_is_on_the_simplex_within_every_limit():
    rng = np.random.default_rng(1)
    for trial in range(3000):
        proposal = rng.dirichlet(np.full(8, 0.3)) * rng.choice([1.0, 1.0, 1.0, 1.00005, 0.7])
        if trial % 9 == 0:
            proposal[rng.integers(8)] = rng.choice([np.nan, -np.inf, -0.2])
        limits = ControlLimits(max_drawdown=0.2, max_daily_loss=0.05, max_turnover=rng.uniform(0.01, 1),
                               max_weight=rng.uniform(0.05, 1), restricted=("ETH",) if trial % 4 == 0 else (),
                               max_class_weight={"crypto": rng.uniform(0.01, 1), "equity": rng.uniform(0.01, 1)})
        held = rng.dirichlet(np.full(8, 0.5)) if trial % 2 else None
        state = FundState("2024-03-04", ["2024-03-01", "2024-02-20", None][trial % 3 if trial % 11 == 0 else 0],
                          drawdown=rng.uniform(0, 0.3), daily_return=rng.normal(0, 0.03), weights=held)
        classes = CLASSES if trial % 5 else None
        assets = ASSETS if classes else ASSETS[:7] + ["cash"]
        decision = apply_controls(proposal, assets, classes, limits, state, stale_days=5)
        weights = decision.weights
        assert weights.dtype == np.float64 and np.isfinite(weights).all() and weights.min() >= 0
        assert abs(weights.sum() - 1) <= 1e-12
        assert weights[:7].max() <= limits.max_weight + 1e-12
        assert trial % 4 or weights[6] == 0
        if classes:
            assert weights[5:7].sum() <= limits.max_class_weight["crypto"] + 1e-12
            assert weights[1:3].sum() <= limits.max_class_weight["equity"] + 1e-12
        assert set(decision.fired) == {event["control"] for event in decision.events}
        json.dumps(decision.events, allow_nan=False)  # the log line can be written
        if decision.safe_action == "derisk_to_cash":
            np.testing.assert_array_equal(weights, CASH_ONLY)
        if decision.fired == ["turnover"]:
            assert 0.5 * np.abs(weights - held).sum() == pytest.approx(limits.max_turnover, abs=1e-12)


@pytest.mark.parametrize("change, fired, action", [
    ({"drawdown": 0.3}, ["drawdown"], "derisk_to_cash"),
    ({"daily_return": -0.05}, ["daily_loss"], "derisk_to_cash"),
    ({"last_price_date": "2024-02-27"}, ["stale_data"], "hold"),
    ({"last_price_date": None}, ["missing_data"], "hold"),
    ({"daily_return": None}, ["missing_data"], "hold"),
    ({"missing": ("COIN.momentum_21",)}, ["missing_data"], "hold"),
    ({"last_price_date": "2024-02-20", "drawdown": 0.2}, ["drawdown", "stale_data"], "derisk_to_cash"),
])
def test_each_breaker_takes_its_safe_action(limits, healthy, change, fired, action):
    held = np.array([0.1, 0.1, 0.1, 0.3, 0.1, 0.1, 0.0, 0.2])
    state = replace(healthy, weights=held, **change)
    decision = apply_controls(np.full(8, 1 / 8), ASSETS, CLASSES, limits, state, stale_days=5)
    assert (decision.fired, decision.safe_action) == (fired, action)
    np.testing.assert_allclose(decision.weights, CASH_ONLY if action == "derisk_to_cash" else held, atol=1e-15)
    if action == "hold":  # without reported weights, holding means cash
        unknown = apply_controls(np.full(8, 1 / 8), ASSETS, CLASSES, limits, replace(state, weights=None), stale_days=5)
        np.testing.assert_array_equal(unknown.weights, CASH_ONLY)


@pytest.mark.parametrize("proposal, control", [(None, "model_error"), (np.full(8, np.nan), "non_finite_output"),
                                               (np.full(8, 0.2), "invalid_output"), (np.ones(3) / 3, "invalid_output")])
def test_a_broken_answer_derisks_to_cash(limits, healthy, proposal, control):
    decision = apply_controls(proposal, ASSETS, CLASSES, limits, healthy, stale_days=5,
                              model_error=TimeoutError("inference took 2 s") if proposal is None else None)
    assert (decision.fired, decision.safe_action) == ([control], "derisk_to_cash")
    np.testing.assert_array_equal(decision.weights, CASH_ONLY)
    json.dumps(decision.events, allow_nan=False)


def test_no_proposal_for_want_of_data_holds_not_derisks(limits, healthy):
    "The service does not run the policy on missing inputs: that is missing_data (hold), not a model error"
    state = replace(healthy, missing=("STOCK_B",))
    decision = apply_controls(None, ASSETS, CLASSES, limits, state, stale_days=5)
    assert (decision.fired, decision.safe_action) == (["missing_data"], "hold")
    np.testing.assert_allclose(decision.weights, healthy.weights)
    blank = apply_controls(None, ASSETS, CLASSES, limits, healthy, stale_days=5)
    assert (blank.fired, blank.safe_action) == (["model_error"], "derisk_to_cash")


def test_a_tight_turnover_limit_then_compliance(healthy):
    limits = ControlLimits(max_turnover=0.1, max_weight=0.3, restricted=("HEDGE",))
    state = replace(healthy, weights=CASH_ONLY)
    decision = apply_controls(np.eye(8)[0], ASSETS, CLASSES, limits, state, stale_days=5)  # all in the index
    assert decision.fired == ["turnover"]
    np.testing.assert_allclose(decision.weights, 0.9 * CASH_ONLY + 0.1 * np.eye(8)[0], atol=1e-15)
    held = np.array([0.4, 0, 0, 0, 0.2, 0, 0, 0.4])  # over the cap and restricted: sold even on a hold
    decision = apply_controls(None, ASSETS, CLASSES, limits, replace(state, weights=held, last_price_date="2024-02-01"),
                              stale_days=5, model_error=None)
    assert decision.fired == ["model_error", "stale_data"] and decision.safe_action == "derisk_to_cash"
    decision = apply_controls(held, ASSETS, CLASSES, limits, replace(state, weights=held, last_price_date="2024-02-01"),
                              stale_days=5)
    assert decision.fired == ["stale_data", "restricted", "position_cap"]
    np.testing.assert_allclose(decision.weights, [0.3, 0, 0, 0, 0, 0, 0, 0.7], atol=1e-15)


@pytest.mark.parametrize("block, message", [
    ({"max_drawdown": 1.2}, "serving.controls.max_drawdown must be a number in (0, 1], got 1.2"),
    ({"max_daily_loss": "5%"}, "serving.controls.max_daily_loss must be a number in (0, 1], got '5%'"),
    ({"max_weight": None}, "serving.controls.max_weight must be a number in (0, 1], got None"),
    ({"max_class_weight": {"crypto": 0}}, "serving.controls.max_class_weight.crypto must be a number in (0, 1], got 0"),
    ({"restricted": [1]}, "serving.controls.restricted must be a list of names, got [1]"),
    ({"max_drawdwn": 0.2}, "serving.controls: unknown key 'max_drawdwn'"),
])
def test_bad_limits_are_named(block, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        ControlLimits.from_params(block)


def test_bad_states_and_shapes_are_named(limits, healthy):
    with pytest.raises(ValueError, match="decision_date must be a date"):
        FundState(None, "2024-03-01")
    with pytest.raises(ValueError, match="last_price_date 2024-03-05 is after decision_date 2024-03-04"):
        FundState("2024-03-04", "2024-03-05")
    with pytest.raises(ValueError, match="drawdown must be a number in"):
        FundState("2024-03-04", "2024-03-01", drawdown="high")
    with pytest.raises(ValueError, match="the current weights have 8 entries for 5 assets"):
        apply_controls(np.full(5, 0.2), ASSETS[:4] + ["CASH"], CLASSES[:4] + ["cash"], limits, healthy, stale_days=5)
    with pytest.raises(ValueError, match="exactly one asset with class 'cash'"):
        apply_controls(np.full(8, 1 / 8), ASSETS, CLASSES[:7] + ["bond"], limits, healthy, stale_days=5)
    assert as_date("2024-03-04", "x") == FundState("2024-03-04", None).decision_date


def test_apply_controls_is_fast(healthy):
    limits = ControlLimits(max_weight=0.2, max_class_weight={"crypto": 0.1, "equity": 0.3}, restricted=("HEDGE",))
    proposal = np.random.default_rng(2).dirichlet(np.ones(8))
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(500):
            apply_controls(proposal, ASSETS, CLASSES, limits, healthy, stale_days=5)
        timings.append((time.perf_counter() - start) / 500)
    assert np.median(timings) < 300e-6, f"apply_controls took {np.median(timings) * 1e6:.0f} µs per call"
