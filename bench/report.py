"""`python -m bench.report FILE.json ...`: the summary table of saved bench results as markdown, headed by the date
and the command that produced them (for docs/performance.md and the README)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.harness import markdown


def main(argv: list[str] | None = None) -> int:
    for name in argv if argv is not None else sys.argv[1:]:
        print(markdown(json.loads(Path(name).read_text(encoding="utf-8"))))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
