"""``invoke verify``: the CI job — every phase forward and back on throwaway containers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from invoke import Exit, task

from cli.base import clean_errors, project_dir
from phasegate.files import check_output_path, write_text_atomic
from phasegate.numbers import whole_number


@task(
    help={
        "provider": "containers (default: testcontainers on Docker or Podman) or binaries (local servers)",
        "jobs": "baseline rows to seed (default 5000)",
        "junit": "where to write the JUnit XML (default reports/verify.xml)",
    }
)
def verify(c, provider="containers", jobs="5000", junit=None):
    """Throwaway Postgres + Redis, seed, run every phase forward and back with all gates, JUnit XML."""
    from rich.console import Console

    from demo.seed import seed_baseline
    from infra.ephemeral import docker_available
    from rollout import verify as verifier
    from rollout.environments import open_target

    out = Path(junit) if junit else project_dir() / "reports" / "verify.xml"
    with clean_errors():  # bad input is refused before minutes of work, not after
        jobs = whole_number(jobs, "--jobs", 100, 10_000_000)
        check_output_path(out, "--junit")
    if provider not in ("containers", "binaries"):
        raise Exit("phasegate: --provider must be containers or binaries", code=2)
    if provider == "containers" and not docker_available():
        raise Exit('phasegate: no Docker-API engine answers (DOCKER_HOST); on Podman run '
                   'eval "$(.ci/podman/setup)" first, or use --provider binaries', code=2)
    console = Console()

    def show(step):  # type: ignore[no-untyped-def]
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        console.print(f"{mark} {step.name} ({step.seconds:.1f}s) {step.message[:200] if not step.ok else ''}")

    with clean_errors(), open_target("ci", project_dir(), provider=provider) as target:
        # No application runs in CI to heartbeat the seeded in-flight jobs: a long lease keeps
        # the liveness gate about the rollout, not about a worker that is not there.
        target = replace(target, settings=replace(target.settings, lease_seconds=3600.0))
        console.print(f"verify on throwaway {provider} servers: seeding {int(jobs):,} jobs")
        # Every kind of row the gates look at, not volume: a few thousand Redis statuses
        # and 50 duplicate cron ticks are enough for parity and dedupe to have work.
        seed_baseline(target.db_url, target.redis_url, jobs=int(jobs),
                      redis_statuses=min(int(jobs), 5000), duplicate_ticks=50)
        steps = verifier.walk(target, project_dir() / "reports" / "verify-plans", report=show)
    with clean_errors():
        write_text_atomic(out, verifier.junit(steps), "--junit")
    failed = [s.name for s in steps if not s.ok]
    console.print(f"JUnit XML: {out}")
    if failed:
        raise Exit(f"phasegate: verify failed at {', '.join(failed)}", code=1)
    console.print(f"[green]verify passed[/]: {len(steps)} steps, every phase forward and back")
