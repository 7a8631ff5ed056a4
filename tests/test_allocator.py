"""Contracts of the allocator env (hrl_fund.allocator) and its training (hrl_fund.master)."""
import json

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from hrl_fund.allocator import (
    AllocatorEnv,
    check_streams,
    cio_streams,
    project_weights,
    synthetic_streams,
    write_synthetic_inputs,
)


@pytest.fixture(scope="module")
def streams() -> pd.DataFrame:
    return synthetic_streams(n_days=400, seed=11)


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
        for _ in range(300):
            action = rng.uniform(-1, 1, n_assets) * rng.choice([0.01, 1.0, 10.0])
            weights = project_weights(action, max_weight=cap)
            assert weights.min() >= 0
            assert weights.sum() == pytest.approx(1.0, abs=1e-9)
            assert weights.max() <= cap + 1e-12


def test_projection_redistributes_excess_in_proportion():
    weights = project_weights(np.array([1.0, 1.0, 0.5, 0.0]), max_weight=0.35, scale=2.0)
    free = np.exp([1.0, 0.0])  # the uncapped assets' softmax numerators
    np.testing.assert_allclose(weights, [0.35, 0.35, *(0.3 * free / free.sum())])
    np.testing.assert_allclose(project_weights(np.zeros(5)), np.full(5, 0.2))


# --- registration, checkers ---------------------------------------------------------------------------------

def test_make_without_arguments_and_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    try:
        import hrl_fund.envs  # noqa: F401
    except ImportError:
        pass
    if "hrl_fund/Allocator-v0" not in gym.registry:
        gym.register("hrl_fund/Allocator-v0", entry_point="hrl_fund.allocator:AllocatorEnv")
    env = gym.make("hrl_fund/Allocator-v0")
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    env.close()
    gym_check_env(gym.make("hrl_fund/Allocator-v0", episode_length=30).unwrapped)
    sb3_check_env(AllocatorEnv(episode_length=30))


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
    for info in infos:
        assert info["cost"] >= 0
        assert info["pnl"] == pytest.approx(info["gross_pnl"] - info["cost"], abs=1e-13)
    assert len(infos) == len(streams) - 1  # whole data: decisions on every bar but the last


def test_costs_reduce_equity(streams):
    _, free = rollout(AllocatorEnv(streams, cost_bps=0), seed=4)
    _, costly = rollout(AllocatorEnv(streams, cost_bps=50), seed=4)
    assert costly[-1]["equity"] < free[-1]["equity"]
    assert sum(info["cost"] for info in free) == 0


# --- next-bar execution canary -------------------------------------------------------------------------------

def test_step_depends_only_on_returns_after_the_decision(streams):
    """Changing the returns of bar t+1 changes the step taken at t; changing bars <= t after the
    observation was made cannot (the env reads only the next bar's returns when stepping)."""
    env = AllocatorEnv(streams, cost_bps=5)
    env.reset(seed=0)
    for _ in range(50):
        env.step(np.zeros(env.n_assets, dtype=np.float32))
    row = env._row
    action = np.array([1.0, -1.0, -1.0, -1.0], dtype=np.float32)
    state = (env._weights.copy(), env._equity, env._peak, env._steps, env._volatility_buffer.copy(),
             env._return_sum, env._return_square_sum, env._row)

    def step_from_state():
        (env._weights, env._equity, env._peak, env._steps, buffer, env._return_sum, env._return_square_sum,
         env._row) = (state[0].copy(), *state[1:4], state[4], *state[5:])
        env._volatility_buffer = buffer.copy()
        return env.step(action)

    _, reward, _, _, info = step_from_state()
    original = env.returns.copy()
    env.returns[: row + 1] += 0.05  # the past and present (already observed) change
    _, reward_past_changed, _, _, info_past = step_from_state()
    assert reward_past_changed == reward and info_past["pnl"] == info["pnl"]
    env.returns[:] = original
    env.returns[row + 1, 0] += 0.05  # the next bar changes
    _, reward_next_changed, _, _, info_next = step_from_state()
    assert info_next["pnl"] > info["pnl"]
    assert info_next["date"] == env.dates[row + 1]
    env.returns[:] = original


def test_a_peeking_policy_earns_exactly_the_next_bar(streams):
    env = AllocatorEnv(streams, cost_bps=0, max_weight=1.0, action_scale=200.0)
    env.reset(seed=0)
    row = env._row
    for _ in range(100):
        action = -np.ones(env.n_assets, dtype=np.float32)
        action[int(np.argmax(env.returns[row]))] = 1.0  # best stream of the bar just observed (legal)
        _, _, _, _, info = env.step(action)
        assert info["return"] == pytest.approx(float(info["position"] @ env.returns[row + 1]), abs=1e-14)
        row += 1


def test_segment_never_reads_later_rows(streams):
    segment = (str(streams.index[100].date()), str(streams.index[199].date()))
    changed = streams.copy()
    changed.iloc[200:] = 0.2
    first, infos = rollout(AllocatorEnv(streams, segment=segment), seed=1)
    second, _ = rollout(AllocatorEnv(changed, segment=segment), seed=1)
    np.testing.assert_array_equal(first, second)
    assert infos[0]["date"] == streams.index[100].to_datetime64()
    assert infos[-1]["date"] == streams.index[199].to_datetime64()


def test_features_are_causal(streams):
    env = AllocatorEnv(streams, window=30)
    changed = streams.copy()
    changed.iloc[250:] *= -2
    other = AllocatorEnv(changed, window=30)
    np.testing.assert_array_equal(env.features[:250], other.features[:250])


# --- bad inputs ----------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_value(streams):
    with_nan = streams.copy()
    with_nan.iloc[7, 2] = np.nan
    with pytest.raises(ValueError, match="'value'"):
        AllocatorEnv(with_nan)
    with pytest.raises(ValueError, match="not sorted"):
        AllocatorEnv(streams.iloc[[0, 2, 1, 3, 4]])
    with pytest.raises(ValueError, match="duplicated date"):
        AllocatorEnv(pd.concat([streams.iloc[:4], streams.iloc[3:6]]))
    with pytest.raises(ValueError, match="max_weight"):
        AllocatorEnv(streams, max_weight=0.2)
    for name in ["alpha", "beta", "gamma", "delta"]:
        with pytest.raises(ValueError, match=name):
            AllocatorEnv(streams, reward={name: -1.0})
    with pytest.raises(ValueError, match="DatetimeIndex"):
        check_streams(streams.reset_index(drop=True))


def test_cash_added_when_absent(streams):
    env = AllocatorEnv(streams.drop(columns="cash"))
    assert env.assets[-1] == "cash"
    assert np.all(env.returns[:, -1] == 0)


# --- stage 03 inputs -----------------------------------------------------------------------------------------

SEGMENTS = {"specialist_train": ["2015-01-02", "2015-12-31"], "specialist_val": ["2016-01-04", "2016-12-30"],
            "cio_train": ["2017-01-03", "2017-06-30"], "cio_val": ["2017-07-03", "2017-09-29"],
            "test": ["2017-10-02", "2017-12-29"]}


def test_cio_streams_read_and_errors(tmp_path):
    write_synthetic_inputs(tmp_path, ["stat_arb"], SEGMENTS)
    frame = cio_streams(tmp_path, ["stat_arb"], SEGMENTS)
    assert list(frame.columns) == ["stat_arb", "stat_arb_baseline", "cash"]
    rates = pd.read_parquet(tmp_path / "outputs/data/rates.parquet")
    np.testing.assert_allclose(frame["cash"], rates["tbill_3m"].reindex(frame.index) / 100 / 252)
    with pytest.raises(FileNotFoundError, match="stage 02"):
        cio_streams(tmp_path, ["fx_arbitrage"], SEGMENTS)
    (tmp_path / "outputs/data/rates.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="rates.parquet"):
        cio_streams(tmp_path, ["stat_arb"], SEGMENTS)


# --- training reproducibility --------------------------------------------------------------------------------

def test_training_is_reproducible(tmp_path, streams):
    from hrl_fund.master import run_allocator, train_allocator
    segments = {"cio_train": [str(streams.index[0].date()), str(streams.index[299].date())],
                "cio_val": [str(streams.index[300].date()), str(streams.index[-1].date())]}
    algo = {"n_steps": 64, "batch_size": 32, "n_epochs": 1, "total_timesteps": 128, "net_arch": [16]}
    outputs = []
    for name in ["first", "second"]:
        summary = train_allocator(streams, segments, algo, {"episode_length": 50, "progress_bar": False}, seed=3,
                                  out_dir=tmp_path / name)
        assert summary["timesteps"] == 128
        returns, weights = run_allocator(tmp_path / name, streams, segments["cio_val"])
        assert len(returns) == 100
        np.testing.assert_allclose(weights.sum(axis=1), 1.0)
        outputs.append(returns)
    pd.testing.assert_series_equal(outputs[0], outputs[1], check_exact=True)
    config = json.loads((tmp_path / "first/allocator.json").read_text())
    assert config["assets"] == list(streams.columns)
