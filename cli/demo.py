"""``invoke demo``: the README's first command — the whole rollout, live, in about a minute."""

from __future__ import annotations

from invoke import Exit, task

from cli.base import clean_errors, project_dir


@task(
    help={
        "jobs": "baseline size: jobs seeded before the rollout (default 100000)",
        "env": "local (default: embedded servers, own database phasegate_demo) or ci (throwaway)",
        "workers": "workload processes (default 2)",
        "rate": "workload operations per second, all processes together (default 80)",
    }
)
def demo(c, jobs=None, env="local", workers=None, rate=None):
    """Seed a realistic baseline, keep a live workload running, walk every phase with its gate."""
    from rich.console import Console

    from cli.progress import progress_bars
    from demo.run import run_demo

    # Parsed here, not by Invoke: its own int() of a typed default ends in a traceback.
    try:
        jobs = int(jobs) if jobs is not None else 100_000
        workers = int(workers) if workers is not None else 2
        rate = float(rate) if rate is not None else 80.0
    except ValueError:
        raise Exit("phasegate: --jobs and --workers must be integers, --rate a number", code=2) from None
    # Bars only on a terminal (Rich's own test, as for the rest of the demo's output).
    with clean_errors(), progress_bars(Console().is_terminal) as bars:
        result = run_demo(env, project_dir(), jobs=jobs, workers=workers, rate=rate,
                          on_progress=bars)
    if not result.ok:
        failed = next((p for p in result.phases if p.outcome != "gated"), None)
        where = f"{failed.phase}: {failed.error or failed.outcome}" if failed else "incomplete"
        raise Exit(f"phasegate: demo stopped at {where}", code=1)
