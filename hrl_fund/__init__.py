"""Notebook-first, reproducible research on deep-RL fund management: a hierarchical multi-strategy fund and a multi-asset allocator

Modules:

- `hrl_fund.envs.factor_tracking`: A DQN env that holds one of several causal factor portfolios built from real stocks (market, momentum, low-vol, quality and value proxies, their equal mix), rebalanced on a fixed schedule, scored on active return against the S&P 500 net of costs, minus a tracking-error penalty.
- `hrl_fund.envs.fx_arbitrage`: A EUR/USD/GBP env on real ECB fixings with seeded synthetic executable quotes (bid/ask, transient cross-rate mispricings), carry accrual from short-rate differentials, next-bar fills and a currency-balance ledger in USD."""

__version__ = "0.1.0"
