"""The demo, its seed and the live workload: what ``invoke demo``, the tests and the benchmarks
run the engine against. Not the engine: nothing under ``rollout/`` imports this package.

* :mod:`demo.run`      the whole rollout on a seeded baseline with a live workload, printed
* :mod:`demo.seed`     a realistic pre-rollout baseline (jobs in every state, legacy Redis
                       statuses, duplicate cron ticks)
* :mod:`demo.workload` worker processes driving the ledger API at a target rate
"""
