"""Run the Pulumi program under ``pulumi.runtime.set_mocks`` and print its graph as JSON.

Runs in a child process (``python -m tests.unit.infra.pulumi_graph`` with a JSON request on
stdin): the Pulumi runtime keeps process-wide settings and leaves per-thread event loops
behind, which must not leak into the rest of the test session. No CLI, no plugin: the mock
monitor answers every registration, and the program is imported only after the mocks are set.

Output: ``{"resources": [...], "outputs": {name: {"value": ..., "secret": bool}}}`` where each
resource has its type, name, parent and provider names, ``protect``, its inputs, the input
keys that were secret on the wire, and its additional secret outputs.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
import warnings
from pathlib import Path
from typing import Any

MAIN = Path(__file__).resolve().parents[3] / "infra" / "__main__.py"


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    """Strip the wire format's secret wrappers, noting the top-level key of each secret."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            secrets.add(path.split(".")[0])
            return _unwrap(value.get("value"), path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, path, secrets) for v in value]
    return value


def _last(urn: str) -> str:
    return urn.split("::")[-1] if urn else ""


def run(request: dict[str, Any]) -> dict[str, Any]:
    import pulumi
    from google.protobuf.json_format import MessageToDict
    from pulumi.runtime import settings
    from pulumi.runtime.mocks import MockMonitor

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            state = dict(args.inputs)
            if args.typ == "random:index/randomPassword:RandomPassword":
                state["result"] = f"pw-{args.name}"
            if args.typ == "docker:index/remoteImage:RemoteImage":
                state["imageId"] = "sha256:0123"
            return f"{args.name}-id", state

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, None]:
            return {}, None

    resources: list[dict[str, Any]] = []

    class RecordingMonitor(MockMonitor):
        def RegisterResource(self, req: Any) -> Any:  # noqa: N802 (the gRPC method's name)
            response = super().RegisterResource(req)
            secrets: set[str] = set()
            resources.append({
                "type": req.type, "name": req.name, "protect": req.protect,
                "parent": _last(req.parent), "provider": _last(req.provider.split("::", 1)[-1]
                                                                if req.provider else ""),
                "inputs": _unwrap(MessageToDict(req.object), "", secrets),
                "secret_inputs": sorted(secrets),
                "additional_secret_outputs": list(req.additionalSecretOutputs),
            })
            return response

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="phasegate", stack=request["stack"], preview=False,
                             monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(request["config"], request.get("secret_keys", []))
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> Any:
        runpy.run_path(str(MAIN), run_name="phasegate_program")  # the program, after the mocks
        exported = settings.get_root_resource().outputs  # type: ignore[union-attr]

        async def collect() -> None:
            for name, value in exported.items():
                out = pulumi.Output.from_input(value)
                outputs[name] = {"value": await out.future(), "secret": await out.is_secret()}

        return pulumi.Output.from_input(asyncio.ensure_future(collect()))

    program()
    return {"resources": resources, "outputs": outputs}


def main() -> None:
    warnings.simplefilter("ignore")  # the runtime's leftover event loops warn at exit
    request = json.load(sys.stdin)
    try:
        result = run(request)
    except Exception as exc:  # report the program's error to the test, which asserts on it
        result = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
