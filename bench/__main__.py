"""`python -m bench [--quick] [--json FILE]`: see bench.harness."""

from bench.harness import main

raise SystemExit(main())
