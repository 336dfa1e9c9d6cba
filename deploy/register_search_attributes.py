"""One-shot setup (docker-compose service `temporal-setup`): create TEMPORAL_NAMESPACE when it does not exist, then
register every search attribute of infra/search.py in it, waiting for the server to come up. Idempotent; exits 0
when both are in place. It connects like every kefu client (mTLS from TEMPORAL_TLS_*, temporal_env.connect).

    python deploy/register_search_attributes.py [--timeout 180] [--retention 30d]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from infra import temporal_env  # the image installs the project (pip install -e .), so this works from any directory

UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def retention(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"retention {text!r}: expected e.g. 30d, 72h")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


async def ensure_namespace(client: Client, keep: timedelta) -> bool:
    """Register the namespace with this retention unless it exists (then it is left as it is); True if created."""
    name = temporal_env.namespace()
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
        return False
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    request = RegisterNamespaceRequest(namespace=name, description="kefu service requests")
    request.workflow_execution_retention_period.FromTimedelta(keep)
    try:
        await client.workflow_service.register_namespace(request)
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:  # another setup run got there first
            raise
        return False
    return True


async def main(timeout: float, keep: timedelta) -> int:
    deadline = time.monotonic() + timeout
    created = False
    while True:
        try:
            client = await temporal_env.connect()
            created = await ensure_namespace(client, keep) or created
            added = await temporal_env.register_search_attributes(client)
        except Exception as exc:  # server not up yet, or a new namespace not in the server's cache yet
            if time.monotonic() > deadline:
                print(f"temporal setup: giving up: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                      file=sys.stderr)
                return 2
            await asyncio.sleep(3)
            continue
        namespace = temporal_env.namespace()
        print(f"namespace {namespace}: {f'created (retention {keep})' if created else 'present'}; search attributes: "
              f"{'added ' + ', '.join(added) if added else 'all present'}", flush=True)
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--retention", type=retention, default=timedelta(days=30),
                        help="closed runs are kept this long in a namespace it creates (default 30d)")
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments.timeout, arguments.retention)))
