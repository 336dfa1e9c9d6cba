"""The `kefu` console entry point (pyproject's `kefu = "starter:cli"`). The command line itself lives in cli/."""

from __future__ import annotations

from cli.main import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    cli()
