"""One-shot setup (docker-compose service `search-attributes`): register every search attribute of infra/search.py
in TEMPORAL_NAMESPACE, waiting for the server and the namespace to come up. Idempotent; exits 0 when all exist.

    python deploy/register_search_attributes.py [--timeout 180]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from infra import temporal_env  # the image installs the project (pip install -e .), so this works from any directory


async def main(timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await temporal_env.connect()
            added = await temporal_env.register_search_attributes(client)
        except Exception as exc:  # server or namespace not ready yet
            if time.monotonic() > deadline:
                print(f"search attributes: giving up: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                      file=sys.stderr)
                return 2
            await asyncio.sleep(3)
            continue
        print(f"search attributes in {temporal_env.namespace()}: "
              f"{'added ' + ', '.join(added) if added else 'all present'}", flush=True)
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=180.0)
    raise SystemExit(asyncio.run(main(parser.parse_args().timeout)))
