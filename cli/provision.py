"""``invoke provision``: the platform engineer's command (Pulumi, through the Automation API)."""

from __future__ import annotations

from invoke import Exit, task

from cli.base import clean_errors


@task(help={
    "stack": "Pulumi stack: dev | staging | prod (infra/Pulumi.<stack>.yaml)",
    "preview": "show what would change; change nothing",
    "destroy": "delete the stack's resources (protected production resources refuse)",
})
def provision(c, stack="dev", preview=False, destroy=False):
    """Create or update the database, its least-privilege roles and Redis for a stack."""
    if preview and destroy:
        raise Exit("phasegate: choose at most one of --preview and --destroy", code=2)
    from infra import automation

    action = (automation.Action.PREVIEW if preview
              else automation.Action.DESTROY if destroy else automation.Action.UP)
    with clean_errors():
        result = automation.provision(stack, action)
    done = ", ".join(f"{op} {n}" for op, n in sorted(result.changes.items())) or "no changes"
    print(f"provision {result.action.value} on {result.stack}: {done}")
