"""The multi-asset env (hrl_fund.multi_asset_env): next-bar fills, no look-ahead, late listings, asset-class costs
with size-dependent slippage, margin and liquidation, and the batched VecEnv against single envs."""
import numpy as np
import pandas as pd
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from hrl_fund.multi_asset_env import (
    BatchedMultiAssetVecEnv,
    MultiAssetEnv,
    masked_weights,
    multi_asset_arrays,
    synthetic_panel,
)


@pytest.fixture(scope="module")
def panel():
    return synthetic_panel(n_days=700, seed=3)


def _actions(env, seed, n_steps):
    return np.random.default_rng(seed).uniform(-1, 1, (n_steps,) + env.action_space.shape).astype(np.float32)


def _play(env, actions, seed=0):
    observation, _ = env.reset(seed=seed)
    observations, rewards, infos = [observation], [], []
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        rewards.append(reward)
        infos.append(info)
        env.check_accounting()
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), infos


def test_decision_at_t_is_filled_at_t_plus_1(panel):
    prices, classes = panel
    env = MultiAssetEnv(prices, classes, segment=("2015-06-01", "2016-06-30"))
    actions = _actions(env, 0, 30)
    other = actions.copy()
    other[10] = -other[10]  # a different decision at step 10 only
    _, rewards, infos = _play(env, actions)
    _, other_rewards, other_infos = _play(env, other)
    for step in range(10):
        assert rewards[step] == other_rewards[step]
    # step 10 earns bar t+1 with the book decided at step 9: same gross pnl; only its trade (cost) differs
    assert infos[10]["gross_pnl"] == other_infos[10]["gross_pnl"]
    np.testing.assert_array_equal(infos[10]["held"], other_infos[10]["held"])
    assert not np.array_equal(infos[10]["position"], other_infos[10]["position"])
    assert infos[11]["gross_pnl"] != other_infos[11]["gross_pnl"]


def test_future_prices_never_reach_the_past(panel):
    prices, classes = panel
    cut = prices.index[400]
    shocked = prices.copy()
    later = shocked.index > cut
    factors = np.exp(np.random.default_rng(9).normal(0, 0.2, (int(later.sum()), shocked.shape[1])))
    factors[:, list(shocked.columns).index("CASH")] = 1.0
    shocked.loc[later] = shocked.loc[later].to_numpy() * factors
    segment = (str(prices.index[300].date()), str(prices.index[-1].date()))
    base = MultiAssetEnv(prices, classes, segment=segment)
    moved = MultiAssetEnv(shocked, classes, segment=segment)
    actions = _actions(base, 1, 200)
    base_obs, base_rewards, base_infos = _play(base, actions)
    moved_obs, moved_rewards, _ = _play(moved, actions)
    safe = [step for step, info in enumerate(base_infos) if pd.Timestamp(info["date"]) <= cut]  # earned on <= cut
    assert len(safe) > 90
    np.testing.assert_array_equal(base_obs[: safe[-1] + 2], moved_obs[: safe[-1] + 2])
    np.testing.assert_array_equal(base_rewards[safe], moved_rewards[safe])
    assert not np.array_equal(base_rewards, moved_rewards)  # the canary can fail


def test_late_listing_is_never_bought_before_its_first_price(panel):
    prices, classes = panel
    env = MultiAssetEnv(prices, classes, segment=(str(prices.index[100].date()), str(prices.index[400].date())))
    coin = env.assets.index("COIN")
    buy_coin = -np.ones(env.action_space.shape, dtype=np.float32)
    buy_coin[coin] = 1.0
    _, _, infos = _play(env, [buy_coin] * 300)
    first_price = prices["COIN"].first_valid_index()
    for info in infos:
        decided = pd.Timestamp(info["date"])  # the fill's date; the decision was the bar before
        if decided <= first_price:
            assert info["position"][coin] == 0.0
    assert max(info["position"][coin] for info in infos) == pytest.approx(0.5)  # capped once listed


def test_slippage_grows_with_trade_size_and_differs_by_asset_class(panel):
    prices, classes = panel
    costs = {name: {"commission_bps": 0.0, "half_spread_bps": 0.0, "slippage_bps": 0.0, "impact": 1.0,
                    "liquidity": 1.0} for name in ["equity", "equity_index", "bond", "volatility_hedge", "crypto"]}
    costs["bond"]["liquidity"] = 100.0

    def first_cost(ticker, weight, equity=1.0):  # cost of the first trade, as a fraction of equity
        env = MultiAssetEnv(prices, classes, segment=("2016-01-04", "2016-03-31"), costs=costs, max_weight=1.0,
                            initial_equity=equity)
        env.reset(seed=0)
        target = np.zeros(env.n_assets)
        target[env.assets.index(ticker)], target[env.cash_index] = weight, 1.0 - weight
        info = env.step_weights(target)[4]
        return info["cost"] / equity

    small, large = first_cost("STOCK_A", 0.25), first_cost("STOCK_A", 1.0)
    assert large / small == pytest.approx(4.0 ** 1.5, rel=1e-6)  # square-root impact: cost ~ size^1.5
    assert first_cost("STOCK_A", 1.0, equity=1e6) == pytest.approx(large, rel=1e-12)  # liquidity scales with the fund
    assert first_cost("BOND", 1.0) < first_cost("STOCK_A", 1.0)  # more liquid, less volatile
    costs["equity"]["commission_bps"] = 10.0
    assert first_cost("STOCK_A", 1.0) - large == pytest.approx(1e-3, rel=1e-4)  # on the equity at the close: 1 + a day of cash


def test_a_held_book_sells_what_stops_trading(panel):
    prices, classes = panel
    ended = prices.copy()
    ended.loc[ended.index > ended.index[300], "STOCK_B"] = np.nan  # its listing ends
    env = MultiAssetEnv(ended, classes, segment=(str(ended.index[250].date()), str(ended.index[350].date())))
    env.reset(seed=0)
    target = np.zeros(env.n_assets)
    target[env.assets.index("STOCK_B")], target[env.cash_index] = 0.5, 0.5
    _, _, _, _, info = env.step_weights(target)
    held_b = []
    for _ in range(80):
        _, _, terminated, truncated, info = env.step_weights(None)  # hold
        held_b.append(info["position"][env.assets.index("STOCK_B")])
        env.check_accounting()
    assert held_b[0] > 0.4 and held_b[-1] == 0.0
    assert pd.Timestamp(info["date"]) > ended.index[300]


def test_leverage_pays_financing_and_liquidation_balances_the_books(panel):
    prices, classes = panel
    crash = prices.copy()
    crash_day = crash.index[450]
    crash.loc[crash.index >= crash_day, "STOCK_A"] *= 0.7  # a one-day fall of 30%
    env = MultiAssetEnv(crash, classes, segment=(str(crash.index[350].date()), str(crash.index[-1].date())),
                        max_leverage=3.0, max_weight=1.0, maintenance_margin=0.2, liquidation_penalty=0.02,
                        financing_bps=200.0, derisk_drawdown=None)
    action = -np.ones(env.action_space.shape, dtype=np.float32)
    action[env.assets.index("STOCK_A")], action[-1] = 1.0, 1.0
    _, _, infos = _play(env, [action] * 400)
    last = infos[-1]
    assert last["liquidated"] and pd.Timestamp(last["date"]) == crash_day
    marked = last["equity"] + last["cost"] + last["liquidation_penalty"]  # equity at the close, before the sale
    assert last["margin_ratio"] < 0.2
    assert last["liquidation_penalty"] == pytest.approx(0.02 * marked / last["margin_ratio"], rel=1e-9)
    assert 0 < last["equity"] < 0.6
    np.testing.assert_allclose(last["position"][env.cash_index], 1.0)
    held_cash = [info["held"][env.cash_index] for info in infos[1:-1]]
    assert max(held_cash) < -1.5  # about -2: twice the equity borrowed
    assert all(info["financing"] > 0 for info in infos[2:-1])
    equity_path = np.array([1.0] + [info["equity"] for info in infos])
    pnl = np.array([info["pnl"] for info in infos])
    np.testing.assert_allclose(np.cumsum(pnl), equity_path[1:] - 1.0, rtol=0, atol=1e-12)


def test_batched_copies_follow_single_envs(panel):
    prices, classes = panel
    kwargs = {"prices": prices, "asset_classes": classes, "episode_length": 40, "max_leverage": 2.0,
              "maintenance_margin": 0.3}
    batched = BatchedMultiAssetVecEnv(3, **kwargs)
    singles = DummyVecEnv([lambda: MultiAssetEnv(**kwargs) for _ in range(3)])
    batched.seed(7)
    singles.seed(7)
    np.testing.assert_array_equal(batched.reset(), singles.reset())
    rng = np.random.default_rng(0)
    for _ in range(100):
        actions = rng.uniform(-1, 1, (3,) + batched.action_space.shape).astype(np.float32)
        obs_b, rewards_b, dones_b, _ = batched.step(actions)
        obs_s, rewards_s, dones_s, _ = singles.step(actions)
        np.testing.assert_allclose(obs_b, obs_s, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rewards_b, rewards_s, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(dones_b, dones_s)
    batched.book.check_accounting()


def test_masked_weights_cap_and_mask():
    rng = np.random.default_rng(2)
    tradable = rng.random((50, 8)) < 0.7
    tradable[:, 7] = True
    weights = masked_weights(rng.uniform(-1, 1, (50, 8)), tradable, cash_index=7, max_weight=0.25, scale=20.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (weights[~tradable] == 0).all()
    assert (weights[:, :7] <= 0.25 + 1e-12).all() and (weights >= 0).all()


@pytest.mark.parametrize("bad, words", [
    ({"max_leverage": 0.9}, "max_leverage"),
    ({"max_leverage": 2.0, "maintenance_margin": 0.5}, "maintenance_margin"),
    ({"max_leverage": 1.0, "maintenance_margin": 1.0}, "maintenance_margin"),
    ({"costs": {"crypto": {"liquidity": -1.0}}}, "crypto.liquidity"),
    ({"costs": {"crypto": {"spread": 1.0}}}, "spread"),
    ({"episode_length": 10**6}, "episode_length"),
    ({"segment": ("2030-01-01", "2031-01-01")}, "segment"),
])
def test_bad_settings_name_the_parameter(panel, bad, words):
    prices, classes = panel
    with pytest.raises(ValueError, match=words):
        MultiAssetEnv(prices, classes, **bad)


def test_bad_data_names_the_ticker_or_date(panel):
    prices, classes = panel
    with pytest.raises(ValueError, match="STOCK_B"):
        multi_asset_arrays(prices, {key: value for key, value in classes.items() if key != "STOCK_B"})
    negative = prices.copy()
    negative.iloc[20, 1] = -3.0
    with pytest.raises(ValueError, match=f"STOCK_A.*{negative.index[20].date()}"):
        multi_asset_arrays(negative, classes)
    with pytest.raises(ValueError, match="commodity"):
        MultiAssetEnv(prices, {**classes, "BOND": "commodity"})
    env = MultiAssetEnv(prices, classes)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="not tradable"):
        coin = np.zeros(env.n_assets)
        coin[env.assets.index("COIN")] = 1.0
        env.step_weights(coin)


def _reference_step(env, book, policy, leverage, history):
    """One step of every copy of `book`, written from the formulas in notebook 03a with plain numpy and the env's raw
    arrays (returns, trailing volatility, cost settings), not the kernel's precomputed table"""
    arrays, settings, cash_index = env.arrays, env.settings, env.cash_index
    rows = book.rows.copy()
    growth = 1.0 + arrays["returns"][rows + 1]
    values = book.values * growth
    financing = np.maximum(-book.cash, 0.0) * settings["financing_bps"] * 1e-4 / 252
    cash = book.cash * growth[:, cash_index] - financing
    risky = values.sum(axis=1)
    marked = cash + risky
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.where(risky > 0, marked / risky, np.inf)
    liquidated = (marked <= 0) | (margin < settings["maintenance_margin"])
    hold = np.isnan(policy[:, 0])
    safe = np.where(marked > 0, marked, 1.0)
    drifted = values / safe[:, None]
    drifted[:, cash_index] = cash / safe
    threshold, floor = settings["derisk_drawdown"], settings["derisk_floor"]
    exposure = 1.0 - (1.0 - floor) * np.clip((book.drawdown - threshold) / threshold, 0.0, 1.0)
    chosen = np.where(hold[:, None], drifted * arrays["tradable"][rows], np.nan_to_num(policy))
    target = chosen * np.where(hold, 1.0, leverage * exposure)[:, None]
    target[:, cash_index] = 0.0
    target[liquidated] = 0.0
    target[:, cash_index] = 1.0 - target.sum(axis=1)
    traded = np.abs(target - drifted)
    traded[:, cash_index] = 0.0
    notional = traded * np.maximum(marked, 0.0)[:, None]
    fixed, impact = np.zeros(env.n_assets), np.zeros(env.n_assets)
    for column, name in enumerate(env.classes):
        if name != "cash":
            row = settings["cost_table"][name]
            fixed[column] = (row["commission_bps"] + row["half_spread_bps"] + row["slippage_bps"]) * 1e-4
            impact[column] = row["impact"] / np.sqrt(row["liquidity"] * settings["initial_equity"])
    slippage = impact * arrays["daily_volatility"][rows]
    cost = (notional * (fixed + slippage * np.sqrt(notional))).sum(axis=1)
    penalty = np.where(liquidated, settings["liquidation_penalty"] * risky, 0.0)
    equity = marked - cost - penalty
    net_return = (equity - book.equity) / book.equity
    for copy, value in enumerate(net_return):
        history[copy].append(value)
    volatility = np.array([np.std(past[-20:], ddof=1) if len(past) >= 2 else 0.0 for past in history])
    peak = np.maximum(book.peak, equity)
    drawdown = 1.0 - equity / peak
    herfindahl = (np.delete(chosen, cash_index, axis=1) ** 2).sum(axis=1) - 1.0 / env.n_assets
    charges = (cost + financing + penalty) / book.equity
    coefficients = settings["reward"]
    reward = (coefficients["alpha"] * net_return - coefficients["beta"] * volatility - coefficients["gamma"] * drawdown
              - coefficients["delta"] * charges - coefficients["concentration"] * herfindahl)
    position = np.where((equity <= 0)[:, None], np.eye(env.n_assets)[cash_index], target)
    return {"equity": equity, "cost": cost, "financing": financing, "liquidation_penalty": penalty,
            "margin_ratio": margin, "liquidated": liquidated, "turnover": traded.sum(axis=1), "exposure": exposure,
            "position": position, "drawdown": drawdown, "volatility": volatility, "concentration": herfindahl,
            "reward": reward, "cash": np.where(equity <= 0, equity, equity * target[:, cash_index])}


def test_the_compiled_kernel_matches_the_formulas_through_holds_leverage_and_liquidations(panel):
    prices, classes = panel
    crash = prices.copy()
    for day in (420, 470, 520):  # falls that liquidate the copies levered into it
        crash.iloc[day:, crash.columns.get_loc("STOCK_A")] *= 0.6
    env = MultiAssetEnv(crash, classes, max_leverage=2.5, maintenance_margin=0.3, max_weight=0.6,
                        derisk_drawdown=0.25, derisk_floor=0.3, financing_bps=300.0)
    n_copies, rng = 8, np.random.default_rng(11)
    book = env._new_book(n_copies)
    book.reset_copy(np.arange(n_copies), rng.integers(395, 418, n_copies))
    history = [[] for _ in range(n_copies)]
    seen = {"hold": 0, "liquidated": 0, "derisked": 0}
    for _ in range(150):
        actions = rng.uniform(-1, 1, (n_copies,) + env.action_space.shape)
        actions[:, env.assets.index("STOCK_A")] = actions[:, -1] = 1.0
        policy, leverage = book.policy_weights(actions)
        holding = rng.random(n_copies) < 0.2
        policy[holding] = np.nan
        expected = _reference_step(env, book, policy, leverage, history)
        result = book.step(policy, leverage)
        for key, value in expected.items():
            got = book.cash if key == "cash" else result[key]
            np.testing.assert_allclose(got, value, rtol=1e-9, atol=1e-12, err_msg=key)
        book.check_accounting()
        seen["hold"] += holding.sum()
        seen["liquidated"] += result["liquidated"].sum()
        seen["derisked"] += (result["exposure"] < 1).sum()
        ended = np.flatnonzero(result["terminated"] | result["truncated"])
        if ended.size:
            book.reset_copy(ended, rng.integers(395, 418, ended.size))
            for copy in ended:
                history[copy] = []
    assert min(seen.values()) > 0, seen  # every path of the kernel was exercised


def test_a_non_finite_action_is_refused_before_any_account_changes(panel):
    prices, classes = panel
    vec_env = BatchedMultiAssetVecEnv(4, prices=prices, asset_classes=classes, episode_length=50, max_leverage=2.0)
    vec_env.seed(0)
    vec_env.reset()
    rng = np.random.default_rng(0)
    vec_env.step(rng.uniform(-1, 1, (4,) + vec_env.action_space.shape).astype(np.float32))
    before = {name: np.array(getattr(vec_env.book, name), copy=True) for name in (*vec_env.book.STATE, "rows")}
    for column, words in [(0, "action of copy 2 is not all finite"), (-1, "leverage action of copy 2")]:
        actions = rng.uniform(-1, 1, (4,) + vec_env.action_space.shape).astype(np.float32)
        actions[2, column] = np.nan
        with pytest.raises(ValueError, match=words):
            vec_env.step(actions)
        for name, value in before.items():
            np.testing.assert_array_equal(getattr(vec_env.book, name), value, err_msg=name)
