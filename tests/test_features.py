"Causal features and time splits: leakage canaries on random panels, feature counts, split properties, bad input."
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hrl_fund.features import (
    FEATURES,
    MARKET_RELATIVE,
    REGIME_FEATURES,
    WARMUP_ROWS,
    make_features,
    segment_masks,
    walk_forward_splits,
)

N_OBS = 700


def random_panel(seed: int, n_obs: int = N_OBS) -> tuple[pd.DataFrame, pd.Series]:
    "Random-walk closes for three stocks and a market (one stock starts late) and a VIX with an off-calendar print"
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2000-01-03", periods=n_obs, name="date")
    shocks = rng.normal(0.0003, 0.015, (n_obs, 4)) * rng.uniform(0.5, 2.0, 4)  # (n_obs, n_tickers)
    prices = pd.DataFrame(100 * np.exp(np.cumsum(shocks, axis=0)), index=dates, columns=["AAA", "BBB", "CCC", "MKT"])
    prices.iloc[: int(rng.integers(20, 200)), 2] = np.nan  # CCC starts trading later
    vix = pd.Series(20 * np.exp(np.cumsum(rng.normal(0, 0.05, n_obs))), index=dates)
    saturday = dates[n_obs // 2] + pd.offsets.Day(5 - dates[n_obs // 2].weekday())
    vix = pd.concat([vix, pd.Series([99.0], index=[saturday])]).sort_index()  # a print on no trading day
    return prices, vix


def perturb_after(prices: pd.DataFrame, vix: pd.Series, cut: pd.Timestamp, rng: np.random.Generator, kind: str):
    "Copies of `prices` and `vix` with every value after `cut` changed (`kind`: noise, scale or nan)"
    prices, vix = prices.copy(), vix.copy()
    later, later_vix = prices.index > cut, vix.index > cut
    if kind == "noise":
        prices.loc[later] = prices.loc[later] * rng.uniform(0.5, 1.5, prices.loc[later].shape)
        vix.loc[later_vix] = vix.loc[later_vix] * rng.uniform(0.5, 1.5, later_vix.sum())
    elif kind == "scale":
        prices.loc[later] = prices.loc[later] * 1e6
        vix.loc[later_vix] = vix.loc[later_vix] * 1e-3
    else:
        prices.loc[later] = np.nan
        vix.loc[later_vix] = np.nan
    return prices, vix


@pytest.mark.parametrize("seed", range(6))
def test_leakage_canary_random_cutoffs(seed):
    prices, vix = random_panel(seed)
    original = make_features(prices, market="MKT", vix=vix)
    rng = np.random.default_rng(1000 + seed)
    for kind in ["noise", "scale", "nan"]:
        cut = prices.index[int(rng.integers(5, N_OBS - 2))]
        perturbed_prices, perturbed_vix = perturb_after(prices, vix, cut, rng, kind)
        perturbed = make_features(perturbed_prices, market="MKT", vix=perturbed_vix)
        past = original.index <= cut
        assert np.array_equal(original.loc[past].to_numpy(), perturbed.loc[past].to_numpy(), equal_nan=True), \
            f"features at or before {cut.date()} moved when later data changed ({kind})"
        future = original.loc[~past].to_numpy(), perturbed.loc[~past].to_numpy()
        assert not np.array_equal(*future, equal_nan=True), "the canary must be able to fail: later features should move"


@pytest.mark.parametrize("seed", range(3))
def test_truncated_history_gives_the_same_features(seed):
    prices, vix = random_panel(seed)
    full = make_features(prices, market="MKT", vix=vix)
    for cut in np.random.default_rng(seed).integers(30, N_OBS, 3):
        date = prices.index[cut]
        truncated = make_features(prices.loc[:date], market="MKT", vix=vix.loc[:date])
        assert np.array_equal(truncated.to_numpy(), full.loc[:date].to_numpy(), equal_nan=True)


def test_feature_count_and_layout():
    prices, vix = random_panel(0)
    features = make_features(prices, market="MKT", vix=vix)
    counts = features.columns.get_level_values("ticker").value_counts()
    assert counts.drop("_market").min() >= 50
    assert counts.to_dict() == {"AAA": 70, "BBB": 70, "CCC": 70, "MKT": 70, "_market": 11}
    assert list(features["AAA"].columns) == list(FEATURES)
    assert list(features["_market"].columns) == list(REGIME_FEATURES)
    assert features.columns.names == ["ticker", "feature"]
    assert features.index.equals(prices.index)
    assert (features.dtypes == "float64").all()
    assert not np.isinf(features.to_numpy()).any()
    assert features.iloc[WARMUP_ROWS:].drop(columns="CCC").notna().all().all()


def test_without_market_or_vix():
    prices, _ = random_panel(1)
    features = make_features(prices, market="NOT_THERE")
    assert set(features.columns.get_level_values("ticker")) == {"AAA", "BBB", "CCC", "MKT"}
    assert len(features["AAA"].columns) == 65 and not set(MARKET_RELATIVE) & set(features["AAA"].columns)
    with_market = make_features(prices, market="MKT")
    assert [name for name in with_market["_market"].columns] == [name for name in REGIME_FEATURES
                                                               if name.startswith("market_")]
    assert (make_features(prices, market="MKT", dtype="float32").dtypes == "float32").all()


def test_beta_and_rank_by_hand():
    prices, vix = random_panel(2)
    features = make_features(prices, market="MKT", vix=vix)
    returns = np.log(prices).diff()
    row = N_OBS - 1
    window = returns.iloc[row - 251:row + 1]
    covariance = np.cov(window["AAA"], window["MKT"])  # (2, 2)
    assert features[("AAA", "beta_252")].iloc[row] == pytest.approx(covariance[0, 1] / covariance[1, 1], rel=1e-9)
    ranks = features.xs("ret_21", axis=1, level="feature").iloc[row].rank(pct=True)
    assert features[("BBB", "xs_rank_ret_21")].iloc[row] == ranks["BBB"]


def test_bad_prices():
    prices, _ = random_panel(3)
    with pytest.raises(ValueError, match="increasing"):
        make_features(prices.iloc[::-1])
    with pytest.raises(ValueError, match="AAA"):
        make_features(prices.assign(AAA=0.0))


SPLIT_CASES = [
    dict(n_obs=100, n_splits=1, min_train=10, test_size=20, purge=0, embargo=0, expanding=True),
    dict(n_obs=100, n_splits=4, min_train=10, test_size=15, purge=5, embargo=3, expanding=True),
    dict(n_obs=100, n_splits=4, min_train=10, test_size=15, purge=5, embargo=3, expanding=False),
    dict(n_obs=31, n_splits=3, min_train=1, test_size=10, purge=0, embargo=10, expanding=True),
]


def random_split_cases(count: int, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        case = dict(n_obs=int(rng.integers(5, 400)), n_splits=int(rng.integers(1, 8)), min_train=int(rng.integers(1, 60)),
                    test_size=int(rng.integers(1, 40)), purge=int(rng.integers(0, 15)), embargo=int(rng.integers(0, 15)),
                    expanding=bool(rng.integers(0, 2)))
        if case["n_obs"] - case["n_splits"] * case["test_size"] - case["purge"] >= case["min_train"]:
            cases.append(case)
    return cases


@pytest.mark.parametrize("case", SPLIT_CASES + random_split_cases(40))
def test_walk_forward_properties(case):
    n_obs = case.pop("n_obs")
    splits = list(walk_forward_splits(pd.bdate_range("2000-01-03", periods=n_obs), **case))
    assert len(splits) == case["n_splits"]
    tests = np.concatenate([test for _, test in splits])
    assert tests.tolist() == list(range(n_obs - case["n_splits"] * case["test_size"], n_obs))
    for number, (train, test) in enumerate(splits):
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
        assert len(test) == case["test_size"]
        assert train.max() < test.min(), "a training row at or after a test row"
        assert test.min() - train.max() - 1 >= case["purge"], "purge gap not respected"
        assert np.all(np.diff(train) > 0)
        assert len(train) >= case["min_train"]
        embargoed = [np.arange(block.max() + 1, block.max() + 1 + case["embargo"]) for _, block in splits[:number]]
        assert not np.isin(train, np.concatenate([[], *embargoed])).any(), "an embargoed row is in a later training set"
        allowed = np.arange(test.min() - case["purge"])  # every row before the purge gap ...
        allowed = allowed[~np.isin(allowed, np.concatenate([[], *embargoed]))]  # ... that is not embargoed
        expected = allowed if case["expanding"] else allowed[-case["min_train"]:]
        assert train.tolist() == expected.tolist(), "only purged and embargoed rows (and, rolling, older ones) may be missing"


@pytest.mark.parametrize("argument, value", [("n_splits", 0), ("min_train", 0), ("test_size", 0), ("purge", -1),
                                             ("embargo", -1), ("n_splits", 2.5), ("test_size", True)])
def test_walk_forward_bad_arguments(argument, value):
    arguments = dict(n_splits=3, min_train=10, test_size=5, purge=2, embargo=1)
    arguments[argument] = value
    with pytest.raises(ValueError, match=argument):
        list(walk_forward_splits(100, **arguments))


def test_walk_forward_too_little_data():
    with pytest.raises(ValueError, match="min_train=50"):
        list(walk_forward_splits(100, n_splits=5, min_train=50, test_size=10, purge=1))
    list(walk_forward_splits(100, n_splits=5, min_train=49, test_size=10, purge=1))  # exactly enough
    with pytest.raises(ValueError, match="increasing"):
        list(walk_forward_splits(pd.bdate_range("2000-01-03", periods=50)[::-1], n_splits=1, min_train=10, test_size=5))


def test_segment_masks():
    dates = pd.bdate_range("2020-01-01", "2020-12-31")
    masks = segment_masks(dates, {"train": ("2020-01-01", "2020-06-30"), "test": ("2020-07-01", "2020-12-31")})
    assert masks["train"].dtype == bool and masks["train"].shape == (len(dates),)
    assert (masks["train"] ^ masks["test"]).all()
    assert dates[masks["train"]][-1] == pd.Timestamp("2020-06-30")
    with pytest.raises(ValueError, match="'train'.*'val'"):
        segment_masks(dates, {"train": ("2020-01-01", "2020-06-30"), "val": ("2020-06-30", "2020-12-31")})
    with pytest.raises(ValueError, match="'late'.*'early'"):
        segment_masks(dates, {"late": ("2020-07-01", "2020-12-31"), "early": ("2020-01-01", "2020-02-01")})
    with pytest.raises(ValueError, match="'reversed'"):
        segment_masks(dates, {"reversed": ("2020-12-31", "2020-01-01")})
