"""hrl_fund.training: hyperparameters per algorithm, the agent factory's guards, env fingerprints, checkpoints and
resume after a kill, reports and streams, collection for stage 03, the tune command, determinism."""
import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import hrl_fund.envs  # noqa: F401  (registers hrl_fund/StatArb-v0)
from conftest import REPO, tool_env
from hrl_fund.envs import baseline_policy
from hrl_fund.training import (
    ALGORITHMS,
    HYPER_KEYS,
    check_out_of_sample,
    collect_specialists,
    env_fingerprint,
    evaluate_specialist,
    load_specialist,
    main,
    make_agent,
    merge_hyper,
    model_meta,
    pad_after_termination,
    preflight,
    random_policy,
    run_policy,
    specialist_settings,
    stream_metrics,
    train_specialist,
)

SEGMENTS = {"specialist_train": ["2005-01-03", "2014-12-31"], "specialist_val": ["2015-01-02", "2016-12-30"],
            "cio_train": ["2017-01-03", "2019-12-31"], "cio_val": ["2020-01-02", "2020-12-31"],
            "test": ["2021-01-04", "2022-12-28"]}
COSTS = {"equity": {"commission_bps": 1.0, "half_spread_bps": 2.0, "slippage_bps": 2.0, "borrow_bps_annual": 50.0}}
SHARED = {"lr": 0.0003, "gamma": 0.99, "n_steps": 64, "batch_size": 32, "n_epochs": 2, "ent_coef": 0.0,
          "net_arch": [16, 16], "total_timesteps": 128, "n_envs": 1, "eval_freq": 64, "torch_threads": 1}
ENV_KWARGS = {"pair": ["KO", "PEP"], "costs": COSTS["equity"], "episode_length": 64, "min_trade": 0.0}
STAT_ARB = "hrl_fund/StatArb-v0"


def segment_env(segment, env_id=STAT_ARB, **kwargs):
    return gym.make(env_id, **{**ENV_KWARGS, **kwargs, "segment": tuple(segment), "episode_length": None})


# ---------------------------------------------------------------- hyperparameters

def test_merge_hyper_overrides_and_fills():
    merged = merge_hyper(SHARED, {"pair": ["KO", "PEP"], "algo": {"lr": 0.001, "n_envs": 2}})
    assert merged["lr"] == 0.001 and merged["n_envs"] == 2 and merged["gamma"] == 0.99
    assert merged["n_eval_episodes"] == 1 and merged["vec_env"] == "dummy"
    assert SHARED["lr"] == 0.0003


def test_precedence_shared_then_algorithm_then_specialist():
    algo = {**SHARED, "batch_size": 32, "DDPG": {"batch_size": 128, "tau": 0.02}, "DQN": {"batch_size": 48}}
    ddpg = merge_hyper(algo, {"algo": {"tau": 0.01}}, "DDPG")
    assert (ddpg["batch_size"], ddpg["tau"], ddpg["lr"]) == (128, 0.01, 0.0003)
    assert merge_hyper(algo, None, "DQN")["batch_size"] == 48
    assert merge_hyper(algo, None, "PPO")["batch_size"] == 32
    assert "n_steps" not in ddpg and "buffer_size" not in merge_hyper(algo, None, "PPO")


@pytest.mark.parametrize("algo_name", list(ALGORITHMS))
def test_every_documented_key_reaches_the_algorithm(algo_name):
    keys = {key for key, spec in HYPER_KEYS.items() if algo_name in spec.algos}
    assert keys == set(merge_hyper(SHARED, None, algo_name))


@pytest.mark.parametrize("algo, block, algo_name, key", [
    ({**SHARED, "learning_rate": 0.1}, None, "PPO", "learning_rate"),
    (SHARED, {"algo": {"n_step": 8}}, "PPO", "n_step"),
    ({key: value for key, value in SHARED.items() if key != "total_timesteps"}, None, "PPO", "total_timesteps"),
    ({**SHARED, "batch_size": 0}, None, "PPO", "batch_size"),
    ({**SHARED, "DDPG": {"n_epochs": 3}}, None, "DDPG", "n_epochs"),
    (SHARED, {"algo": {"exploration_fraction": 0.1}}, "DDPG", "exploration_fraction"),
    (SHARED, {"algo": {"action_noise_sigma": 0.1}}, "DQN", "action_noise_sigma"),
    ({**SHARED, "gamma": 1.5}, None, "PPO", "gamma"),
    ({**SHARED, "lr": "3e-4"}, None, "PPO", "lr"),
    ({**SHARED, "net_arch": [64, 0]}, None, "PPO", "net_arch"),
    ({**SHARED, "vec_env": "threads"}, None, "PPO", "vec_env"),
    ({**SHARED, "tau": 0.0}, None, "DQN", "tau"),
])
def test_merge_hyper_names_the_bad_key(algo, block, algo_name, key):
    with pytest.raises(ValueError, match=key):
        merge_hyper(algo, block, algo_name)


def test_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValueError, match="known algorithms: " + ", ".join(ALGORITHMS)):
        merge_hyper(SHARED, None, "A2C")
    with pytest.raises(ValueError, match="known algorithms: " + ", ".join(ALGORITHMS)):
        make_agent("A2C", segment_env(SEGMENTS["specialist_val"]), merge_hyper(SHARED), seed=0)


# ---------------------------------------------------------------- agent factory

def test_dqn_on_a_box_action_fails_before_training():
    env = segment_env(SEGMENTS["specialist_val"])
    assert isinstance(env.action_space, gym.spaces.Box)
    with pytest.raises(ValueError, match="DQN needs a Discrete action space"):
        make_agent("DQN", env, merge_hyper(SHARED, None, "DQN"), seed=0)


def test_ddpg_on_a_discrete_action_fails():
    env = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match="DDPG needs a continuous Box"):
        make_agent("DDPG", env, merge_hyper(SHARED, None, "DDPG"), seed=0)


def test_off_policy_keys_reach_sb3():
    env = segment_env(SEGMENTS["specialist_val"])
    hyper = merge_hyper({**SHARED, "DDPG": {"buffer_size": 3000, "learning_starts": 50, "train_freq": 2,
                                            "gradient_steps": 3, "tau": 0.02, "action_noise_sigma": 0.3}}, None, "DDPG")
    agent = make_agent("DDPG", env, hyper, seed=0)
    assert (agent.buffer_size, agent.learning_starts, agent.train_freq.frequency, agent.gradient_steps) == (3000, 50, 2, 3)
    assert agent.tau == 0.02 and np.allclose(agent.action_noise._sigma, [0.3]) and agent.batch_size == 32
    discrete = gym.make("CartPole-v1")
    dqn_hyper = merge_hyper({**SHARED, "DQN": {"target_update_interval": 123, "exploration_fraction": 0.4,
                                               "exploration_initial_eps": 0.9, "exploration_final_eps": 0.02}},
                            None, "DQN")
    dqn = make_agent("DQN", discrete, dqn_hyper, seed=0)
    assert (dqn.target_update_interval, dqn.exploration_fraction, dqn.exploration_initial_eps,
            dqn.exploration_final_eps, dqn.tau) == (123, 0.4, 0.9, 0.02, 1.0)


def test_specialist_settings_split_env_and_baseline_keys():
    block = {"asset_class": "equity", "pair": ["KO", "PEP"], "window": 250, "z_in": 2.0, "z_feature": "z_60",
             "check_paths": 40, "algo": {"lr": 0.001}}
    env_kwargs, baseline_kwargs = specialist_settings("stat_arb", block, COSTS)
    assert env_kwargs == {"pair": ["KO", "PEP"], "window": 250, "costs": COSTS["equity"]}
    assert baseline_kwargs == {"z_in": 2.0, "z_feature": "z_60"}
    with pytest.raises(ValueError, match="fx"):
        specialist_settings("stat_arb", {"asset_class": "fx"}, COSTS)


# ---------------------------------------------------------------- runs and metrics

def test_run_policy_is_date_indexed_and_stays_out_of_sample():
    oos = [SEGMENTS["cio_train"][0], SEGMENTS["test"][1]]
    env = segment_env(oos)
    frame = run_policy(random_policy(env.action_space, 0), env)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "date"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index.min() > pd.Timestamp(oos[0]) and frame.index.max() <= pd.Timestamp(oos[1])
    for name in ("specialist_train", "specialist_val"):
        start, end = (pd.Timestamp(day) for day in SEGMENTS[name])
        assert not ((frame.index >= start) & (frame.index <= end)).any(), name
    assert np.isfinite(frame["return"]).all()
    initial = env.unwrapped.initial_equity  # returns compound to the env's equity path
    np.testing.assert_allclose(initial * np.cumprod(1 + frame["return"].to_numpy()), frame["equity"], rtol=1e-9)


def test_baseline_and_random_share_the_validation_calendar():
    env = segment_env(SEGMENTS["specialist_val"])
    baseline = run_policy(baseline_policy("stat_arb", env), env)
    random_run = run_policy(random_policy(env.action_space, 1), env)
    assert baseline.index.equals(random_run.index)
    metrics = stream_metrics(random_run)
    assert metrics["n_days"] == len(random_run) and metrics["total_costs"] > 0


# ---------------------------------------------------------------- training, fingerprints, determinism

def _train_and_run(tmp_path, seed):
    folder = tmp_path / f"seed_{seed}"
    summary = train_specialist("stat_arb", ENV_KWARGS, merge_hyper(SHARED), seed, SEGMENTS, folder, progress_bar=False)
    env = segment_env(SEGMENTS["specialist_val"])
    frozen = load_specialist(folder, env)
    assert frozen.normalizer.training is False and frozen.normalizer.norm_reward is False
    return summary, run_policy(frozen, env), frozen.model.policy.state_dict()


def test_same_seed_same_agent_other_seed_other_agent(tmp_path):
    first = _train_and_run(tmp_path / "first", 5)
    second = _train_and_run(tmp_path / "second", 5)
    other = _train_and_run(tmp_path / "other", 6)
    assert first[0]["learning_curve"] == second[0]["learning_curve"]
    pd.testing.assert_frame_equal(first[1], second[1])
    assert first[1]["return"].abs().sum() > 0
    assert all(torch.equal(first[2][key], second[2][key]) for key in first[2])
    assert not all(torch.equal(first[2][key], other[2][key]) for key in first[2])


@pytest.mark.parametrize("name", ["fx_arbitrage", "market_making"])
def test_validation_of_envs_that_draw_at_reset_is_reproducible(tmp_path, name):
    "FX quotes and intraday paths are drawn at reset: every evaluation must replay the same seeded validation market"
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    block = params["specialists"][name]
    hyper = merge_hyper({**SHARED, "total_timesteps": 600, "eval_freq": 300}, {"algo": {"learning_starts": 100,
                        "batch_size": 32, "buffer_size": 1000}}, "DDPG")
    env_kwargs, _ = specialist_settings(name, block, params["costs"])
    env_kwargs["episode_length"] = 64
    segments = params["segments"]
    curves = [train_specialist(name, env_kwargs, hyper, 3, segments, tmp_path / f"run_{run}", progress_bar=False)["learning_curve"]
              for run in range(2)]
    assert curves[0] == curves[1] and len(curves[0]) == 2


def test_a_model_refuses_another_env_version(tmp_path):
    train_specialist("stat_arb", ENV_KWARGS, merge_hyper(SHARED), 0, SEGMENTS, tmp_path, progress_bar=False)
    assert model_meta(tmp_path)["env_fingerprint"] == env_fingerprint(segment_env(SEGMENTS["cio_train"]))
    with pytest.raises(ValueError, match="another version of env 'hrl_fund/StatArb-v0'.*obs_names"):
        load_specialist(tmp_path, segment_env(SEGMENTS["specialist_val"], lookbacks=(5, 20)))


# Subprocess that trains with a callback that stalls after the first checkpoint, so the test can kill it there.
_KILLED_RUN = """
import json, sys, time
from stable_baselines3.common.callbacks import BaseCallback
import hrl_fund.envs
from hrl_fund.training import merge_hyper, train_specialist
config = json.loads(sys.argv[1])
class Stall(BaseCallback):
    def _on_step(self):
        if self.num_timesteps > config["stall_after"]:
            print("stalling", flush=True)
            time.sleep(600)
        return True
train_specialist("stat_arb", config["env_kwargs"], merge_hyper(config["hyper"]), 0, config["segments"], config["out"],
                 checkpoint_dir=config["work"], progress_bar=False, callbacks=[Stall()])
"""


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    hyper = {**SHARED, "total_timesteps": 640, "eval_freq": 128}
    config = {"env_kwargs": ENV_KWARGS, "hyper": hyper, "segments": SEGMENTS, "out": str(tmp_path / "model"),
              "work": str(tmp_path / "work"), "stall_after": 300}
    process = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, json.dumps(config)], cwd=REPO, env=tool_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.time() + 300
        while "stalling" not in line and time.time() < deadline and process.poll() is None:
            line = process.stdout.readline()
        assert "stalling" in line, f"the run never reached its stall point (exit {process.poll()})"
        os.kill(process.pid, signal.SIGKILL)  # a hard kill: no cleanup runs
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    checkpoints = sorted(path.name for path in (tmp_path / "work").glob("step_*"))
    assert checkpoints == ["step_0000000256"], checkpoints
    summary = train_specialist("stat_arb", ENV_KWARGS, merge_hyper(hyper), 0, SEGMENTS, tmp_path / "model",
                               checkpoint_dir=tmp_path / "work", progress_bar=False)
    assert summary["resumed_from"] == 256 and summary["trained_timesteps"] == 640 - 256
    assert [point["timesteps"] for point in summary["learning_curve"]] == [128, 256, 384, 512, 640]
    assert not (tmp_path / "work").exists()
    env = segment_env(SEGMENTS["specialist_val"])
    run = run_policy(load_specialist(tmp_path / "model", env), env)
    assert np.isfinite(run["return"]).all() and len(run) == len(env.unwrapped.dates) - 1


def test_a_finished_seed_is_restored_not_retrained(tmp_path, capsys):
    arguments = dict(name="stat_arb", env_kwargs=ENV_KWARGS, hyper=merge_hyper(SHARED), seed=0, segments=SEGMENTS,
                     out_dir=tmp_path / "model", checkpoint_dir=tmp_path / "work", progress_bar=False,
                     keep_checkpoints=True)
    first = train_specialist(**arguments)
    assert (tmp_path / "work" / "finished.json").exists() and not list((tmp_path / "work").glob("step_*"))
    model_bytes = (tmp_path / "model" / "model.zip").read_bytes()
    (tmp_path / "model" / "model.zip").unlink()  # as DVC removes a stage's outputs before rerunning it
    again = train_specialist(**arguments)
    assert "restored the finished run" in capsys.readouterr().out
    assert again == json.loads(json.dumps(first)) and (tmp_path / "model" / "model.zip").read_bytes() == model_bytes


def test_checkpoints_of_another_env_version_are_refused_before_training(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    other = env_fingerprint(segment_env(SEGMENTS["specialist_val"], lookbacks=(5, 20)))
    (work / "finished.json").write_text(json.dumps({"run_digest": "x", "env_fingerprint": other, "summary": {}}))
    with pytest.raises(ValueError, match="another version of env.*Delete"):
        train_specialist("stat_arb", ENV_KWARGS, merge_hyper(SHARED), 0, SEGMENTS, tmp_path / "model",
                         checkpoint_dir=work, progress_bar=False)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("seeds, algo_name, message", [
    ([], "PPO", "seed list is empty"),
    ([0, 0], "PPO", "distinct integers"),
    ([0], "DQN", "DQN needs a Discrete"),
    ([0], "SAC", "unknown algorithm 'SAC'"),
])
def test_preflight_stops_bad_input(seeds, algo_name, message):
    with pytest.raises(ValueError, match=message):
        preflight("stat_arb", merge_hyper(SHARED), seeds, ENV_KWARGS, SEGMENTS, env_id=STAT_ARB, algo_name=algo_name)


# ---------------------------------------------------------------- the other algorithms on the new envs

NEW_ENVS = {"DQN": ("factor_tracking", "FactorTrackingEnv"), "DDPG": ("delta_hedging", "DeltaHedgingEnv")}


@pytest.mark.parametrize("algo_name", list(NEW_ENVS))
def test_off_policy_specialist_trains_and_runs(tmp_path, algo_name):
    module_name, class_name = NEW_ENVS[algo_name]
    module = importlib.import_module(f"hrl_fund.envs.{module_name}")  # an import error fails the test, never skips it
    env_id = f"hrl_fund_test/{class_name}-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=getattr(module, class_name))
    hyper = merge_hyper({**SHARED, "total_timesteps": 400, "eval_freq": 200, "learning_starts": 100,
                         "buffer_size": 1000}, None, algo_name)
    segments = {**SEGMENTS, "specialist_train": ["2005-01-03", "2012-12-31"], "specialist_val": ["2013-01-02", "2014-12-31"]}
    summary = train_specialist(module_name, {"episode_length": 100}, hyper, 0, segments, tmp_path, env_id=env_id,
                               algo_name=algo_name, progress_bar=False)
    assert summary["algo"] == algo_name and summary["timesteps"] == 400
    env = gym.make(env_id, segment=tuple(segments["specialist_val"]), episode_length=None)
    run = run_policy(load_specialist(tmp_path, env), env)
    assert np.isfinite(run["return"]).all() and len(run) > 400


# ---------------------------------------------------------------- reports, streams, collection

def test_report_streams_and_collection(tmp_path):
    hyper = merge_hyper(SHARED)
    for seed in (0, 1):
        train_specialist("stat_arb", ENV_KWARGS, hyper, seed, SEGMENTS, tmp_path / "models" / f"seed_{seed}",
                         progress_bar=False)
    report, streams = evaluate_specialist("stat_arb", tmp_path / "models", [0, 1], ENV_KWARGS, {}, SEGMENTS)
    assert list(report["segments"]) == ["specialist_val", "cio_train"]
    for segment in ("specialist_val", "cio_train"):
        part = report["segments"][segment]
        assert set(part["policies"]) == {"agent", "baseline", "flat", "random"}
        assert set(part["policies"]["agent"]["per_seed"]) == {"seed_0", "seed_1"}
        for key in ("total_return", "sharpe_ratio", "max_drawdown", "mean_turnover", "total_costs"):
            assert key in part["policies"]["agent"]["mean"] and key in part["policies"]["agent"]["std"]
        verdict = part["verdict"]
        assert verdict["agent_beats_baseline"] == (verdict["agent_mean"] > verdict["baseline"])
        assert ("does NOT beat" in verdict["text"]) != verdict["agent_beats_baseline"]
        assert pd.Timestamp(part["first_day"]) >= pd.Timestamp(SEGMENTS[segment][0])
        assert pd.Timestamp(part["last_day"]) <= pd.Timestamp(SEGMENTS[segment][1])
    assert list(streams.columns) == ["seed_0", "seed_1", "agent", "baseline"]
    check_out_of_sample(streams, SEGMENTS)
    assert streams.index.min() > pd.Timestamp(SEGMENTS["specialist_val"][1])
    assert streams.index.max() <= pd.Timestamp(SEGMENTS["test"][1]) and streams.notna().all().all()

    root = tmp_path / "root"
    for name in ("stat_arb", "other"):
        path = root / "reports/specialists" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**report, "specialist": name}))
        (root / "outputs/specialists" / name).mkdir(parents=True)
        streams.to_parquet(root / "outputs/specialists" / name / "returns.parquet")
    combined, returns = collect_specialists(root, ["stat_arb", "other"], [0, 1], write_to=root)
    assert returns.columns.names == ["specialist", "column"]
    assert list(returns.columns.get_level_values(0).unique()) == ["stat_arb", "other"]
    pd.testing.assert_frame_equal(returns["stat_arb"], streams, check_names=False)
    pd.testing.assert_frame_equal(pd.read_parquet(root / "outputs/specialist_returns.parquet"), returns)
    assert json.loads((root / "reports/specialists.json").read_text())["seeds"] == [0, 1]
    assert set(combined["summary"]) == {"stat_arb", "other"}
    table = (root / "paper/generated/specialists_table.tex").read_text()
    assert "\\toprule" in table and "stat arb" in table and ("yes" in table or "no" in table)
    with pytest.raises(ValueError, match="rerun stage 02"):
        collect_specialists(root, ["stat_arb"], [0, 1, 2])
    with pytest.raises(FileNotFoundError, match="market_making.json"):
        collect_specialists(root, ["market_making"], [0, 1])


def test_a_ruined_run_is_closed_out_on_the_calendar():
    calendar = pd.date_range("2020-01-01", periods=4, freq="B", name="date")
    ruined = pd.DataFrame({"return": [0.1, -0.6], "cost": [0.01, 0.02], "equity": [1.1, 0.44], "turnover": [1.0, 1.0],
                           "position": [1.0, -1.0]}, index=calendar[:2])
    padded = pad_after_termination(ruined, calendar)
    assert padded.index.equals(calendar) and padded.notna().all().all()
    assert padded["return"].tolist()[2:] == [0.0, 0.0] and padded["equity"].tolist()[2:] == [0.44, 0.44]
    assert stream_metrics(padded)["total_return"] == pytest.approx(stream_metrics(ruined)["total_return"])
    with pytest.raises(ValueError, match="not a prefix"):
        pad_after_termination(ruined.iloc[1:], calendar)


# ---------------------------------------------------------------- tuning

@pytest.fixture()
def tune_params(tmp_path):
    "params.yaml shrunk to smoke scale (fixed pair, no pair search), written to a temp folder"
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["segments"] = SEGMENTS
    params["algo"] = {**{key: value for key, value in params["algo"].items() if key not in ALGORITHMS},
                      "n_envs": 1, "n_steps": 64, "batch_size": 32, "n_epochs": 2, "net_arch": [16, 16]}
    block = params["specialists"]["stat_arb"]
    block.update(pair=["KO", "PEP"], episode_length=64, algo={})
    block.pop("formation", None)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_tune_prints_a_snippet_and_resumes_its_study(tmp_path, tune_params, capsys):
    before = hashlib.sha256((REPO / "params.yaml").read_bytes()).hexdigest()
    journal = tmp_path / "study.journal"
    arguments = ["tune", "stat_arb", "--params", str(tune_params), "--prices", str(tmp_path / "absent.parquet"),
                 "--storage", str(journal), "--study", "smoke", "--timesteps", "128", "--evaluations", "2"]
    main([*arguments, "--trials", "2"])
    printed = capsys.readouterr().out
    assert "study 'smoke' now has 2 trials" in printed
    snippet = printed[printed.index("# study"):]
    overrides = yaml.safe_load(snippet)["specialists"]["stat_arb"]["algo"]
    assert overrides and set(overrides) <= set(HYPER_KEYS)
    assert not any(isinstance(value, str) for value in overrides.values())  # no 3e-4 strings for YAML 1.1
    params = yaml.safe_load(tune_params.read_text())
    merge_hyper(params["algo"], {"algo": overrides}, "PPO")
    main([*arguments, "--trials", "1"])
    assert "study 'smoke' now has 3 trials" in capsys.readouterr().out
    assert journal.exists()
    assert hashlib.sha256((REPO / "params.yaml").read_bytes()).hexdigest() == before  # never written


def test_tune_accepts_a_database_url(tmp_path, tune_params, capsys):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    main(["tune", "stat_arb", "--params", str(tune_params), "--prices", str(tmp_path / "absent.parquet"),
          "--storage", url, "--trials", "1", "--timesteps", "64", "--evaluations", "1"])
    assert "study 'stat_arb_PPO' now has 1 trials" in capsys.readouterr().out
    import optuna
    assert len(optuna.load_study(study_name="stat_arb_PPO", storage=url).trials) == 1


def test_tune_rejects_bad_settings(tmp_path, tune_params):
    with pytest.raises(SystemExit, match="specialist 'market_maker' is not in params.yaml"):
        main(["tune", "market_maker", "--params", str(tune_params), "--trials", "1"])
    params = yaml.safe_load(tune_params.read_text())
    params["algo"]["learning_rate"] = 0.1
    tune_params.write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit, match="learning_rate"):
        main(["tune", "stat_arb", "--params", str(tune_params), "--trials", "1"])
