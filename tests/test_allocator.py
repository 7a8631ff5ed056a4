"""Contracts of the allocator env (hrl_fund.allocator: single and batched), stage 03's dataset, and the
allocator's training (hrl_fund.master: Transformer and MLP policies)."""
import json
import logging

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from hrl_fund.allocator import (
    AllocatorEnv,
    BatchedAllocatorVecEnv,
    align_regime,
    align_streams,
    bench_batched,
    build_cio_dataset,
    check_streams,
    cio_dataset,
    project_weights,
    project_weights_batch,
    read_specialist_streams,
    regime_features,
    synthetic_market,
    synthetic_streams,
    write_synthetic_inputs,
)


@pytest.fixture(scope="module")
def streams() -> pd.DataFrame:
    return synthetic_streams(n_days=400, seed=11)


@pytest.fixture(scope="module")
def regime(streams) -> pd.DataFrame:
    return regime_features(synthetic_market(n_days=len(streams), seed=11, start=str(streams.index[0].date())))


def rollout(env: AllocatorEnv, seed: int, n_steps: int = 10**6):
    "Rewards and infos of a seeded random-action rollout until the episode ends"
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rewards, infos = [], []
    for _ in range(n_steps):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.n_assets).astype(np.float32))
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.array(rewards), infos


# --- simplex projection -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_assets", [2, 3, 5, 8, 20])
def test_projection_is_on_the_capped_simplex(n_assets):
    rng = np.random.default_rng(n_assets)
    for cap in [1 / n_assets, 0.3 if n_assets > 3 else 0.5, 0.5, 1.0]:
        actions = rng.uniform(-1, 1, (300, n_assets)) * rng.choice([0.01, 1.0, 10.0], (300, 1))
        weights = project_weights_batch(actions, max_weight=cap)
        assert weights.min() >= 0
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-9)
        assert weights.max() <= cap + 1e-12


def test_projection_redistributes_excess_in_proportion():
    weights = project_weights(np.array([1.0, 1.0, 0.5, 0.0]), max_weight=0.35, scale=2.0)
    free = np.exp([1.0, 0.0])  # the uncapped assets' softmax numerators
    np.testing.assert_allclose(weights, [0.35, 0.35, *(0.3 * free / free.sum())])
    np.testing.assert_allclose(project_weights(np.zeros(5)), np.full(5, 0.2))


def test_projection_matches_iterative_redistribution():
    "The closed form equals capping and redistributing in proportion until nothing exceeds the cap"
    rng = np.random.default_rng(7)
    for _ in range(300):
        n_assets = int(rng.integers(2, 10))
        cap = float(rng.uniform(1 / n_assets, 1.0))
        action = rng.uniform(-1, 1, n_assets)
        weights = np.exp(5.0 * action)
        weights /= weights.sum()
        capped = np.zeros(n_assets, dtype=bool)
        for _ in range(n_assets):
            capped |= weights > cap
            weights[capped] = cap
            weights[~capped] *= (1 - cap * capped.sum()) / weights[~capped].sum()
        np.testing.assert_allclose(project_weights(action, max_weight=cap), np.minimum(weights, cap), atol=1e-12)


# --- registration, checkers ---------------------------------------------------------------------------------

def test_make_without_arguments_and_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    import hrl_fund.envs  # noqa: F401  (registers hrl_fund/Allocator-v0)
    env = gym.make("hrl_fund/Allocator-v0")
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert env.unwrapped.regime_names == ["vix_level", "vix_percentile", "index_trend", "market_volatility"]
    env.close()
    gym_check_env(gym.make("hrl_fund/Allocator-v0", episode_length=30).unwrapped)
    sb3_check_env(AllocatorEnv(episode_length=30, window=1))


def test_observation_layout_reshapes_into_tokens(streams, regime):
    env = AllocatorEnv(streams, regime=regime, window=7, lookback=15)
    n_assets, n_regime = 4, 4
    assert env.token_shape == (7, 5 * n_assets + n_regime)
    assert env.state_size == n_assets + 2
    assert env.observation_space.shape == (7 * env.token_shape[1] + env.state_size,)
    assert env.observation_layout["size"] == env.observation_space.shape[0]
    env.reset(seed=0)
    for _ in range(40):
        observation, *_ = env.step(env.action_space.sample())
    tokens = observation[: 7 * env.token_shape[1]].reshape(env.token_shape)
    row = env._row
    for age in range(7):  # tokens[-1] is today, tokens[-1 - age] is `age` days ago
        np.testing.assert_allclose(tokens[-1 - age, : 5 * n_assets].reshape(n_assets, 5), env.features[row - age], rtol=1e-6)
        np.testing.assert_allclose(tokens[-1 - age, 5 * n_assets:], regime.to_numpy()[row - age], rtol=1e-6)


# --- determinism ---------------------------------------------------------------------------------------------

def test_same_seed_same_trajectory(streams):
    first, first_infos = rollout(AllocatorEnv(streams, episode_length=60), seed=5)
    second, second_infos = rollout(AllocatorEnv(streams, episode_length=60), seed=5)
    np.testing.assert_array_equal(first, second)
    assert [info["date"] for info in first_infos] == [info["date"] for info in second_infos]
    assert len(first) == 60


# --- accounting ----------------------------------------------------------------------------------------------

def test_accounting_identity(streams):
    env = AllocatorEnv(streams, cost_bps=25, max_weight=0.5)
    rewards, infos = rollout(env, seed=2)
    equity = np.array([1.0] + [info["equity"] for info in infos])
    pnl = np.array([info["pnl"] for info in infos])
    np.testing.assert_allclose(np.diff(equity), pnl, rtol=0, atol=1e-12)
    assert pnl.sum() == pytest.approx(equity[-1] - equity[0], abs=1e-9)
    for previous, info, row in zip([None, *infos[:-1]], infos, range(len(infos)), strict=True):
        assert info["cost"] >= 0
        assert info["pnl"] == pytest.approx(info["gross_pnl"] - info["cost"], abs=1e-13)
        assert info["position"].sum() == pytest.approx(1.0, abs=1e-9)
        if previous is not None:
            np.testing.assert_array_equal(info["held"], previous["position"])
            assert info["gross_pnl"] == pytest.approx(previous["equity"] * info["held"] @ env.returns[row + 1], abs=1e-14)
    assert len(infos) == len(streams) - 1  # whole data: decisions on every bar but the last


def test_costs_reduce_equity_and_cash_is_free(streams):
    _, free = rollout(AllocatorEnv(streams, cost_bps=0), seed=4)
    _, costly = rollout(AllocatorEnv(streams, cost_bps=50), seed=4)
    assert costly[-1]["equity"] < free[-1]["equity"]
    assert sum(info["cost"] for info in free) == 0
    env = AllocatorEnv(streams, cost_bps=100, max_weight=1.0, action_scale=300, derisk_drawdown=None)
    env.reset(seed=0)
    all_cash = np.array([-1, -1, -1, 1], dtype=np.float32)
    assert env.step(all_cash)[4]["cost"] == pytest.approx(0.0, abs=1e-15)  # already in cash: nothing paid
    per_asset = AllocatorEnv(streams, cost_bps={"trend": 10, "carry": 0, "value": 0, "cash": 0}, max_weight=1.0,
                             action_scale=300, derisk_drawdown=None)
    per_asset.reset(seed=0)
    info = per_asset.step(np.array([-1, 1, -1, -1], dtype=np.float32))[4]  # cash -> carry costs nothing here
    assert info["cost"] == pytest.approx(0.0, abs=1e-12)


# --- fills one bar after the decision (leakage canaries) ----------------------------------------------------

def _state(env: AllocatorEnv) -> tuple:
    return (env._weights.copy(), env._equity, env._peak, env._steps, env._volatility_buffer.copy(), env._return_sum,
            env._return_square_sum, env._row)


def _restore(env: AllocatorEnv, state: tuple) -> None:
    (weights, env._equity, env._peak, env._steps, buffer, env._return_sum, env._return_square_sum, env._row) = state
    env._weights, env._volatility_buffer = weights.copy(), buffer.copy()


def test_a_decision_never_earns_the_bar_it_could_peek_at(streams):
    """The gross pnl of the step decided at t is fixed before the decision (the held book earns bar t+1); the
    decision earns from bar t+2 on. A peeking oracle and its opposite get the same gross pnl."""
    env = AllocatorEnv(streams, cost_bps=5, max_weight=1.0, action_scale=50.0, derisk_drawdown=None)
    env.reset(seed=0)
    for _ in range(50):
        env.step(np.zeros(env.n_assets, dtype=np.float32))
    for _ in range(30):
        row, state = env._row, _state(env)
        oracle = -np.ones(env.n_assets, dtype=np.float32)
        oracle[int(np.argmax(env.returns[row + 1]))] = 1.0  # knows bar t+1
        _, _, _, _, peeked = env.step(oracle)
        _restore(env, state)
        _, _, _, _, info = env.step(-oracle)
        assert peeked["gross_pnl"] == info["gross_pnl"]
        assert info["date"] == env.dates[row + 1]


def test_step_depends_only_on_the_next_bar(streams):
    env = AllocatorEnv(streams, cost_bps=5)
    env.reset(seed=0)
    for _ in range(50):
        env.step(np.zeros(env.n_assets, dtype=np.float32))
    row, state = env._row, _state(env)
    action = np.array([1.0, -1.0, -1.0, -1.0], dtype=np.float32)
    _, _, _, _, info = env.step(action)
    original = env.returns.copy()
    env.returns[: row + 1] += 0.05  # the past and present (already observed) change
    _restore(env, state)
    _, _, _, _, info_past = env.step(action)
    assert info_past["pnl"] == info["pnl"]
    env.returns[:] = original
    env.returns[row + 1, 0] += 0.05  # the next bar changes: the held book earns it
    _restore(env, state)
    _, _, _, _, info_next = env.step(action)
    assert info_next["gross_pnl"] > info["gross_pnl"]
    env.returns[:] = original


def test_segment_never_reads_later_rows(streams, regime):
    segment = (str(streams.index[100].date()), str(streams.index[199].date()))
    changed, changed_regime = streams.copy(), regime.copy()
    changed.iloc[200:] = 0.2
    changed_regime.iloc[200:] = 9.0
    first, infos = rollout(AllocatorEnv(streams, regime=regime, segment=segment), seed=1)
    second, _ = rollout(AllocatorEnv(changed, regime=changed_regime, segment=segment), seed=1)
    np.testing.assert_array_equal(first, second)
    assert infos[0]["date"] == streams.index[100].to_datetime64()
    assert infos[-1]["date"] == streams.index[199].to_datetime64()


def test_features_and_regime_are_causal(streams):
    market = synthetic_market(n_days=len(streams), seed=2)
    env = AllocatorEnv(streams, regime=regime_features(market), lookback=30, window=5)
    changed, changed_market = streams.copy(), market.copy()
    changed.iloc[250:] *= -2
    changed_market.iloc[250:] *= 1.7
    other = AllocatorEnv(changed, regime=regime_features(changed_market), lookback=30, window=5)
    np.testing.assert_array_equal(env.features[:250], other.features[:250])
    np.testing.assert_array_equal(env.windows[:250], other.windows[:250])
    assert not np.array_equal(env.windows[250:], other.windows[250:])


# --- the batched VecEnv ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("env_kwargs", [
    {"episode_length": 20, "cost_bps": 15, "derisk_drawdown": 0.02, "window": 4, "lookback": 10},
    {"episode_length": 7, "window": 1, "max_weight": 1.0, "reward": {"concentration": 0.5}},
    {"segment": ("2017-03-01", "2017-04-28")},
], ids=["short-episodes-derisk", "vector-obs", "whole-segment"])
def test_batched_env_equals_dummy_vec_env_of_single_envs(streams, regime, env_kwargs):
    env_kwargs = {"returns": streams, "regime": regime, **env_kwargs}
    n_envs = 6
    reference = DummyVecEnv([lambda: AllocatorEnv(**env_kwargs) for _ in range(n_envs)])
    batched = BatchedAllocatorVecEnv(n_envs, full_info=True, **env_kwargs)
    reference.seed(21)
    batched.seed(21)
    np.testing.assert_array_equal(batched.reset(), reference.reset())
    rng = np.random.default_rng(0)
    episode_ends = 0
    for _ in range(130):
        actions = rng.uniform(-1, 1, (n_envs, batched.n_assets)).astype(np.float32)
        expected, result = reference.step(actions), batched.step(actions)
        np.testing.assert_allclose(result[0], expected[0], rtol=1e-6, atol=1e-7)
        assert result[1].dtype == np.float32
        np.testing.assert_allclose(result[1], expected[1], rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(result[2], expected[2])
        for mine, theirs in zip(result[3], expected[3], strict=True):
            assert set(mine) == set(theirs)
            assert mine["date"] == theirs["date"]
            assert mine["TimeLimit.truncated"] == theirs["TimeLimit.truncated"]
            for key in ("equity", "pnl", "cost", "gross_pnl", "return", "turnover", "held", "position", "exposure"):
                np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-9, atol=1e-12, err_msg=key)
            if "terminal_observation" in theirs:
                np.testing.assert_allclose(mine["terminal_observation"], theirs["terminal_observation"], rtol=1e-6, atol=1e-7)
        episode_ends += int(expected[2].sum())
    assert episode_ends >= n_envs  # auto-resets were exercised


def test_batched_env_lean_infos_and_reseeding(streams):
    batched = BatchedAllocatorVecEnv(4, returns=streams, episode_length=5)
    batched.seed(3)
    first = batched.reset()
    batched.seed(3)
    np.testing.assert_array_equal(batched.reset(), first)
    for step in range(5):
        _, _, dones, infos = batched.step(np.zeros((4, 4), dtype=np.float32))
        if step < 4:
            assert not dones.any() and infos == [{}, {}, {}, {}]
    assert dones.all()
    assert all(info["TimeLimit.truncated"] and info["terminal_observation"].shape == first.shape[1:] for info in infos)
    assert batched.last_step["equity"].shape == (4,) and batched.last_step["position"].shape == (4, 4)
    assert batched.get_attr("render_mode") == [None] * 4 and batched.env_is_wrapped(gym.Wrapper) == [False] * 4


def test_bench_batched_reports_env_steps_per_second():
    result = bench_batched(n_envs=256, n_steps=200)
    print(f"BatchedAllocatorVecEnv: {result['env_steps_per_second']:,.0f} env-steps/s at B=256 "
          f"({result['n_assets']} assets, obs {result['observation_size']} floats)")
    assert {"env_steps_per_second", "n_envs", "n_steps", "n_assets", "window", "observation_size", "seconds"} <= set(result)
    assert result["n_envs"] == 256 and result["window"] == 1
    assert result["env_steps_per_second"] > 100_000  # loose floor on a shared 2-core machine; the target is 1,000,000


# --- bad inputs ----------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_value(streams, regime):
    with_nan = streams.copy()
    with_nan.iloc[7, 2] = np.nan
    with pytest.raises(ValueError, match="'value'"):
        AllocatorEnv(with_nan)
    with pytest.raises(ValueError, match="not sorted"):
        AllocatorEnv(streams.iloc[[0, 2, 1, 3, 4]])
    with pytest.raises(ValueError, match="duplicated date"):
        AllocatorEnv(pd.concat([streams.iloc[:4], streams.iloc[3:6]]))
    with pytest.raises(ValueError, match=r"max_weight.*0\.2"):
        AllocatorEnv(streams, max_weight=0.2)
    for name in ["alpha", "beta", "gamma", "delta", "concentration"]:
        with pytest.raises(ValueError, match=f"{name} must be >= 0, got -1.0"):
            AllocatorEnv(streams, reward={name: -1.0})
    with pytest.raises(ValueError, match="DatetimeIndex"):
        check_streams(streams.reset_index(drop=True))
    with pytest.raises(ValueError, match="action_scale"):
        AllocatorEnv(streams, action_scale=1000)
    with pytest.raises(ValueError, match=str(streams.index[3].date())):  # a regime on another calendar
        AllocatorEnv(streams, regime=regime.drop(index=streams.index[3]))
    with pytest.raises(ValueError, match="derisk_floor"):
        AllocatorEnv(streams, derisk_floor=1.5)


def test_zero_variance_sleeve_gives_finite_observations(streams):
    flat = streams.copy()
    flat["carry"] = 0.0
    env = AllocatorEnv(flat)
    assert np.isfinite(env.features).all()
    observation, _ = env.reset(seed=0)
    for _ in range(50):
        observation, reward, *_ = env.step(env.action_space.sample())
        assert np.isfinite(observation).all() and np.isfinite(reward)
        assert env.observation_space.contains(observation)


def test_cash_added_when_absent(streams):
    env = AllocatorEnv(streams.drop(columns="cash"))
    assert env.assets[-1] == "cash"
    assert np.all(env.returns[:, -1] == 0)


def test_stream_repairs_are_named_and_logged(caplog):
    calendar = pd.bdate_range("2021-01-04", periods=40, name="date")
    raw = pd.DataFrame({"a": np.linspace(-0.01, 0.01, 40), "b": np.linspace(0.01, -0.01, 40)}, index=calendar)
    raw.iloc[5, 0] = np.nan
    raw = pd.concat([raw, pd.DataFrame({"a": [0.02], "b": [0.01]}, index=[pd.Timestamp("2021-01-16")])]).sort_index()
    with caplog.at_level(logging.WARNING, logger="hrl_fund.allocator"):
        aligned, repairs = align_streams(raw, calendar)
    assert aligned.index.equals(calendar) and aligned.notna().all().all()
    rules = sorted((repair["rule"], repair["column"]) for repair in repairs)
    assert rules == [("missing_day_flat", "a"), ("off_calendar_compounded", "a"), ("off_calendar_compounded", "b")]
    assert "missing_day_flat" in caplog.text and "off_calendar_compounded" in caplog.text
    monday = pd.Timestamp("2021-01-18")
    assert aligned.loc[monday, "a"] == pytest.approx(1.02 * (1 + raw.loc[monday, "a"]) - 1)
    long_hole = raw.copy()
    long_hole.iloc[20:27, 1] = np.nan
    with pytest.raises(ValueError, match="'b' has no value on 7 consecutive"):
        align_streams(long_hole, calendar, max_gap_days=5)
    regime = pd.DataFrame({"vix_level": np.linspace(0.1, 0.3, 40)}, index=calendar).drop(index=calendar[[3, 4]])
    carried, regime_repairs = align_regime(regime, calendar)
    assert carried.loc[calendar[4], "vix_level"] == regime.loc[calendar[2], "vix_level"]
    assert regime_repairs[0]["rule"] == "regime_carried_forward" and regime_repairs[0]["days"] == 2


# --- stage 03 inputs -----------------------------------------------------------------------------------------

SEGMENTS = {"specialist_train": ["2015-01-02", "2015-12-31"], "specialist_val": ["2016-01-04", "2016-12-30"],
            "cio_train": ["2017-01-03", "2017-06-30"], "cio_val": ["2017-07-03", "2017-09-29"],
            "test": ["2017-10-02", "2017-12-29"]}


def test_cio_dataset_reads_repairs_and_errors(tmp_path):
    write_synthetic_inputs(tmp_path, ["stat_arb", "market_making"], SEGMENTS)
    streams, regime, report = cio_dataset(tmp_path, ["stat_arb", "market_making"], SEGMENTS)
    assert list(streams.columns) == ["stat_arb", "stat_arb_baseline", "market_making", "market_making_baseline", "cash"]
    assert regime.index.equals(streams.index) and list(regime.columns) == report["regime_features"]
    rates = pd.read_parquet(tmp_path / "outputs/data/rates.parquet")
    np.testing.assert_allclose(streams["cash"], rates["tbill_3m"].reindex(streams.index) / 100 / 252)
    assert report["repairs"] == [] and report["calendar"]["days"] == len(streams)
    AllocatorEnv(streams, regime=regime, segment=SEGMENTS["cio_train"])  # the env accepts the dataset
    # a specialist that never trades is dropped (decided on cio_train), by a named rule
    path = tmp_path / "outputs/specialists/market_making/returns.parquet"
    frame = pd.read_parquet(path)
    frame["baseline"] = 0.0
    frame.to_parquet(path)
    streams, _, report = cio_dataset(tmp_path, ["stat_arb", "market_making"], SEGMENTS)
    assert "market_making_baseline" not in streams.columns and report["dropped_sleeves"] == ["market_making_baseline"]
    # misaligned calendars: a specialist whose stream skips days is repaired flat; a late start beyond the limit fails
    frame.drop(index=frame.index[[10, 30]]).to_parquet(path)
    _, _, report = cio_dataset(tmp_path, ["stat_arb", "market_making"], SEGMENTS)
    assert [(repair["rule"], repair["column"], repair["days"]) for repair in report["repairs"]][:2] == [
        ("missing_day_flat", "market_making", 2), ("missing_day_flat", "market_making_baseline", 2)]
    frame.iloc[30:].to_parquet(path)
    with pytest.raises(ValueError, match="'market_making' has no value on 30 consecutive"):
        cio_dataset(tmp_path, ["stat_arb", "market_making"], SEGMENTS)
    with pytest.raises(FileNotFoundError, match="stage 02"):
        cio_dataset(tmp_path, ["fx_arbitrage"], SEGMENTS)
    (tmp_path / "outputs/data/prices.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="prices.parquet"):
        cio_dataset(tmp_path, ["stat_arb"], SEGMENTS)


def test_market_nan_days_are_dropped_and_carried(tmp_path):
    write_synthetic_inputs(tmp_path, ["stat_arb"], SEGMENTS)
    prices = pd.read_parquet(tmp_path / "outputs/data/prices.parquet")
    rates = pd.read_parquet(tmp_path / "outputs/data/rates.parquet")
    raw = read_specialist_streams(tmp_path, ["stat_arb"])
    prices.loc["2017-02-06", "VIX"] = np.nan
    _, regime, report = build_cio_dataset(raw, prices, rates, SEGMENTS)
    assert [repair["rule"] for repair in report["repairs"]] == ["market_nan_dropped", "regime_carried_forward"]
    assert regime.loc["2017-02-06"].equals(regime.loc["2017-02-03"].rename(pd.Timestamp("2017-02-06")))
    with pytest.raises(ValueError, match="'SP500'"):
        build_cio_dataset(raw, prices.drop(columns="SP500"), rates, SEGMENTS)


def test_combined_streams_source(tmp_path):
    dates = pd.bdate_range("2017-01-03", "2017-12-29", name="date")
    table = pd.DataFrame({"stat_arb": 0.001, "stat_arb_baseline": 0.0005, "fx_arbitrage": 0.0002}, index=dates)
    (tmp_path / "outputs").mkdir()
    table.to_parquet(tmp_path / "outputs/specialist_returns.parquet")
    read = read_specialist_streams(tmp_path, ["stat_arb", "fx_arbitrage"], source="combined")
    assert list(read.columns) == ["stat_arb", "stat_arb_baseline", "fx_arbitrage"]
    with pytest.raises(ValueError, match="vol_trading"):
        read_specialist_streams(tmp_path, ["vol_trading"], source="combined")
    with pytest.raises(ValueError, match="unknown streams source"):
        read_specialist_streams(tmp_path, ["stat_arb"], source="csv")


# --- the Transformer policy and training ---------------------------------------------------------------------

def test_transformer_extractor_shapes(streams, regime):
    import torch

    from hrl_fund.master import TransformerExtractor, policy_kwargs
    env = AllocatorEnv(streams, regime=regime, window=6, lookback=10)
    for attend, features_dim in [("time", 2 * 8 + env.state_size), ("sleeves", 4 * 8 + 4 + 2)]:
        kwargs = policy_kwargs("transformer", env, [16], {"d_model": 8, "n_heads": 2, "attend": attend})
        assert kwargs["features_extractor_class"] is TransformerExtractor
        extractor = TransformerExtractor(env.observation_space, **kwargs["features_extractor_kwargs"])
        assert extractor.features_dim == features_dim
        observations = torch.as_tensor(np.stack([env.observation_space.sample() * 0 + 0.1 for _ in range(3)]))
        assert extractor(observations).shape == (3, features_dim)


@pytest.mark.parametrize("policy", ["transformer", "mlp"])
def test_training_is_reproducible(tmp_path, streams, regime, policy):
    from hrl_fund.master import run_allocator, train_allocator
    segments = {"cio_train": [str(streams.index[0].date()), str(streams.index[299].date())],
                "cio_val": [str(streams.index[300].date()), str(streams.index[-1].date())]}
    algo = {"n_steps": 16, "batch_size": 32, "n_epochs": 1, "total_timesteps": 128, "net_arch": [16], "n_envs": 4}
    cio = {"episode_length": 50, "progress_bar": False, "window": 5, "lookback": 10,
           "transformer": {"d_model": 8, "n_heads": 2, "dim_feedforward": 16}}
    outputs = []
    for name in ["first", "second"]:
        summary = train_allocator(streams, segments, algo, cio, seed=3, out_dir=tmp_path / name, regime=regime,
                                  policy=policy)
        assert summary["timesteps"] == 128 and summary["policy"] == policy
        returns, weights = run_allocator(tmp_path / name, streams, segments["cio_val"], regime=regime)
        assert len(returns) == 100
        np.testing.assert_allclose(weights.sum(axis=1), 1.0)
        outputs.append(returns)
    pd.testing.assert_series_equal(outputs[0], outputs[1], check_exact=True)
    config = json.loads((tmp_path / "first/allocator.json").read_text())
    assert config["assets"] == list(streams.columns) and config["policy"] == policy
    assert config["regime_features"] == list(regime.columns)
