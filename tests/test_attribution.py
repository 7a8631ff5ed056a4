"""hrl_fund.attribution and hrl_fund.views on stage 05's synthetic inputs: the yearly parts add up to the excess
return over equal weight for every seed, the specialist table reads stage 02's streams, tearsheets are offline."""
import re

import numpy as np
import pandas as pd
import pytest

from hrl_fund.attribution import seed_attribution, specialist_frame, specialist_metrics, yearly_attribution
from hrl_fund.evaluation import evaluate, read_stage_inputs, write_synthetic_inputs
from hrl_fund.views import write_tearsheet

SEGMENTS = {"specialist_train": ["2012-01-03", "2014-12-31"], "specialist_val": ["2015-01-02", "2015-12-31"],
            "cio_train": ["2016-01-04", "2017-06-30"], "cio_val": ["2017-07-03", "2017-12-29"],
            "test": ["2018-01-02", "2019-06-28"]}
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def fund(tmp_path_factory):
    root = tmp_path_factory.mktemp("fund")
    write_synthetic_inputs(root, SEGMENTS, SEEDS, cost_bps=5.0)
    inputs = read_stage_inputs(root, SEEDS)
    return {"root": root, "inputs": inputs,
            "evaluation": evaluate(inputs, SEGMENTS, cost_bps=5.0, window=63, refit_every=21)}


def test_the_parts_add_up_to_the_excess_return_every_year(fund):
    evaluation = fund["evaluation"]
    per_seed = seed_attribution(evaluation, "cio", "equal_weight")
    assert sorted(per_seed) == ["seed_0", "seed_1"]
    for seed, daily in per_seed.items():
        yearly = yearly_attribution(daily)
        assert list(yearly.index) == ["2018", "2019", "All"]
        excess = evaluation["runs"]["cio"]["returns"][seed] - evaluation["runs"]["equal_weight"]["returns"]["run"]
        assert yearly.loc["All", "excess"] == pytest.approx(excess.sum(), abs=1e-12)
        parts = yearly["allocation"] + yearly["selection"] - yearly["cost_drag"]
        assert np.allclose(parts, yearly["excess"], atol=1e-12)


def test_the_specialist_table_reads_stage_02_streams(fund):
    streams = {name: pd.read_parquet(fund["root"] / "outputs/specialists" / name / "returns.parquet")
               for name in ("stat_arb", "vol_trading", "factor_tracking")}
    metrics = specialist_metrics(streams, fund["inputs"]["market"], SEGMENTS["test"], SEEDS)
    frame = specialist_frame(metrics, {"stat_arb": "PPO"})
    assert list(frame.index[:2]) == ["Stat arb agent (PPO)", "Stat arb rule"]
    assert all(r"\pm" in cell for cell in frame.iloc[0, :4])
    with pytest.raises(ValueError, match=r"lacks \['seed_2'\]"):
        specialist_metrics(streams, fund["inputs"]["market"], SEGMENTS["test"], [0, 1, 2])


def test_a_tearsheet_is_offline_and_byte_stable(fund, tmp_path):
    run = fund["evaluation"]["runs"]
    returns, benchmark = run["cio"]["returns"].mean(axis=1), run["equal_weight"]["returns"]["run"]
    first = write_tearsheet(returns, benchmark, tmp_path / "a.html", "CIO", benchmark_title="Equal weight")
    second = write_tearsheet(returns, benchmark, tmp_path / "b.html", "CIO", benchmark_title="Equal weight")
    assert first.read_bytes() == second.read_bytes()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", first.read_text(), re.IGNORECASE)
