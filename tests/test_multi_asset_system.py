"""The multi-asset system end to end on a user's CSV written here: a late-listing instrument, a coin that trades on
weekends, a missing day; the data route, the walk-forward stage and the results stage, at smoke scale."""
import json

import numpy as np
import pandas as pd
import pytest

from hrl_fund.data import multi_asset_panel
from hrl_fund.multi_asset_training import multi_asset_stage

TINY_ALGO = {"n_steps": 32, "batch_size": 64, "n_epochs": 2, "total_timesteps": 256, "net_arch": [16]}
CLASSES = {"STOCK": "equity", "INDEX": "equity_index", "BOND": "bond", "COIN": "crypto", "LATE": "equity"}


@pytest.fixture(scope="module")
def users_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(5)
    days = pd.date_range("2015-01-01", "2019-12-31", freq="D")  # every calendar day: the coin's own calendar
    weekdays = days[days.day_of_week < 5]
    frame = pd.DataFrame(index=days)
    for ticker, vol in (("STOCK", 0.015), ("INDEX", 0.01), ("BOND", 0.003), ("LATE", 0.02)):
        frame[ticker] = pd.Series(100 * np.exp(np.cumsum(rng.normal(0.0002, vol, len(weekdays)))), index=weekdays)
    frame["COIN"] = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.04, len(days))))
    frame.loc[frame.index < "2017-03-01", "LATE"] = np.nan  # lists part-way
    frame.loc[frame.index < "2016-01-01", "COIN"] = np.nan
    frame.loc[pd.Timestamp("2018-05-16"), "STOCK"] = np.nan  # a missing day inside the series
    frame.index.name = "date"
    path = folder / "my_prices.csv"
    frame.to_csv(path)
    classes = folder / "my_classes.csv"
    pd.DataFrame({"ticker": list(CLASSES), "asset_class": list(CLASSES.values())}).to_csv(classes, index=False)
    return path, classes


def test_the_csv_route_masks_late_listings_repairs_gaps_and_adds_cash(users_csv):
    path, classes = users_csv
    prices, meta, findings = multi_asset_panel("csv", path=path, asset_classes=str(classes))
    assert (prices.index.day_of_week < 5).all()  # exchange calendar: the coin's weekend moves land on Monday
    assert prices.loc[: "2017-02-28", "LATE"].isna().all() and prices.loc["2017-03-01":, "LATE"].notna().all()
    assert prices.loc[pd.Timestamp("2018-05-16"), "STOCK"] == prices.loc[pd.Timestamp("2018-05-15"), "STOCK"]
    assert any(finding["ticker"] == "STOCK" and finding["date"] == "2018-05-16" for finding in findings)
    assert "CASH" in prices and meta.loc["CASH", "asset_class"] == "cash"
    with pytest.raises(ValueError, match="LATE"):
        multi_asset_panel("csv", path=path, asset_classes={key: value for key, value in CLASSES.items() if key != "LATE"})


@pytest.fixture(scope="module")
def trained(users_csv, tmp_path_factory):
    path, classes = users_csv
    root = tmp_path_factory.mktemp("system")
    settings = {"source": "csv", "path": str(path), "asset_classes": str(classes), "market": "INDEX",
                "train_start": "2016-01-04", "test": ["2019-01-02", "2019-12-31"], "progress_bar": False,
                "walk_forward": {"n_folds": 2, "validation_days": 40}, "episode_length": 100,
                "transformer": {"d_model": 16, "n_heads": 2, "dim_feedforward": 32}, "algo": {"n_envs": 4}}
    segments = {"test": ["2019-01-02", "2019-12-31"]}
    report = multi_asset_stage(root, TINY_ALGO, settings, segments, [0, 1])
    return root, report, settings


def test_the_stage_trains_every_fold_and_chains_the_test_blocks(trained):
    root, report, _ = trained
    returns = pd.read_parquet(root / "outputs/multi_asset/test_returns.parquet")
    assert list(returns.columns) == ["agent/seed_0", "agent/seed_1", "ablation/seed_0", "ablation/seed_1"]
    assert str(returns.index[0].date()) == "2019-01-02" and str(returns.index[-1].date()) == "2019-12-31"
    assert returns.notna().all().all() and len(report["folds"]) == 2
    weights = pd.read_parquet(root / "outputs/multi_asset/test_weights.parquet")
    held = weights[[column for column in weights if column.startswith("agent/seed_0/")]]
    np.testing.assert_allclose(held.sum(axis=1), 1.0, atol=1e-9)
    assert all(check["passed"] for check in report["env_checks"])
    saved = json.loads((root / "reports/multi_asset_training.json").read_text())
    assert saved["data"]["instruments"] == ["STOCK", "INDEX", "BOND", "LATE", "COIN", "CASH"]
    assert saved["configurations_tried"] == 2


def test_bad_walk_forward_and_unpriced_tickers_are_named(users_csv, tmp_path):
    from hrl_fund.multi_asset_env import multi_asset_arrays
    from hrl_fund.multi_asset_training import check_fold_data, walk_forward_folds
    path, classes = users_csv
    prices, meta, _ = multi_asset_panel("csv", path=path, asset_classes=str(classes))
    with pytest.raises(ValueError, match="n_folds"):  # 20 test days in 5 folds: 4 days each, under the 5-day window
        walk_forward_folds(prices.index, ("2019-12-02", "2019-12-27"), n_folds=5, validation_days=40,
                           train_start="2016-01-04", window=5)
    with pytest.raises(ValueError, match="validation_days"):
        walk_forward_folds(prices.index, ("2019-01-02", "2019-12-31"), n_folds=2, validation_days=3,
                           train_start="2016-01-04", window=5)
    early = walk_forward_folds(prices.index, ("2016-09-01", "2016-12-30"), n_folds=1, validation_days=40,
                               train_start="2016-01-04", window=5)
    with pytest.raises(ValueError, match=r"\['LATE'\].*fold 0"):  # LATE lists in 2017: no price to train on
        check_fold_data(multi_asset_arrays(prices, meta), early)
    with pytest.raises(ValueError, match="multi_asset.source"):
        multi_asset_stage(tmp_path, TINY_ALGO, {"source": "bloomberg"}, {"test": ["2019-01-02", "2019-12-31"]}, [0])
