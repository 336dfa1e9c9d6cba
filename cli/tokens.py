"""Tokens on the command line (issue 14): `kefu token issue`, `kefu login`, and whom the CLI acts as.

    kefu token issue --sub sup-1 --role supervisor [--ttl 8h]   a bearer token from kefu's own issuer
    kefu login [--token T]                                       check a token and keep it (.data/cli.token, 0600)

With a token (KEFU_TOKEN, else the one `kefu login` kept), every update and signal the CLI sends acts as the
token's principal (infra/principal.py `acting_as`): --actor and --role default to the token's and may not
contradict it. Without one the CLI is the development mode's trusted local tool: it signs the actor its
--actor/--role name with the local principal key (.data/principal.key), which a worker accepts only when that is its
own key or one it trusts (KEFU_PRINCIPAL_TRUSTED). docs/api.md says more.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.auth import verifier_for
from api.errors import ApiError
from api.settings import settings_from_env
from cli.common import CliError, emit, parse
from infra.codec import CodecKeyError, read_secret_file
from infra.issuer import TokenError, issuer_from_env
from infra.principal import Principal, acting_as
from infra.private_files import private_file
from models.policy import duration_seconds

# command → the role its --role means when neither the flag nor a token says (the commands' former defaults)
DEFAULT_ROLES = {"act": "agent", "escalate": "supervisor", "escalate-bulk": "supervisor", "incident": "supervisor"}


def add_parser(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    t = cmd("token", "bearer tokens from kefu's own issuer (for the HTTP API and KEFU_TOKEN)")
    actions = t.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    issue = actions.add_parser("issue", help="print a token for a person (role system is never issued)")
    issue.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    issue.add_argument("--sub", required=True, help="the person's id (agent, supervisor, manager)")
    issue.add_argument("--role", required=True, help="customer, agent, team_lead, supervisor or manager")
    issue.add_argument("--ttl", default="8h", help="how long it is good for (30m, 8h, 7d; default 8h)")

    login = cmd("login", "check a token and keep it owner-only for the next commands (.data/cli.token)")
    login.add_argument("--token", help="the token (default: read from standard input)")


def token_file(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("KEFU_DATA_DIR", ".data")) / "cli.token"


def run(args: argparse.Namespace) -> None:
    if args.command == "token":
        issue(args)
    else:
        login(args)


def issue(args: argparse.Namespace) -> None:
    if not settings_from_env().embedded:
        raise CliError("token issue: an OIDC provider is configured (KEFU_OIDC_*): its tokens are the ones the API "
                       "accepts")
    try:
        ttl = timedelta(seconds=duration_seconds(args.ttl))
    except ValueError as exc:
        raise CliError(f"--ttl: {exc}") from None
    who = parse(Principal, {"sub": args.sub, "role": args.role})
    try:
        token = issuer_from_env().issue(who.sub, who.role, ttl)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    expires = (datetime.now(UTC) + ttl).isoformat(timespec="seconds")
    emit({"token": token, "sub": who.sub, "role": who.role, "expires_at": expires}, getattr(args, "json", False),
         lambda d: d["token"])


def login(args: argparse.Namespace) -> None:
    token = (args.token or (getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline())).strip()
    if not token:
        raise CliError("--token: give the token (or pipe it in)")
    who = verify(token, "--token")
    path = private_file(token_file())  # 0600 in an owner-only folder, whatever the umask
    path.write_text(token + "\n", encoding="utf-8")
    emit({"sub": who.sub, "role": who.role, "saved": str(path)}, args.json,
         lambda d: f"logged in as {d['role']} {d['sub']} (token kept in {d['saved']})")


def verify(token: str, source: str) -> Principal:
    """The principal a token vouches for, checked as the API checks it; one line naming `source` otherwise."""
    try:
        settings = settings_from_env()
        issuer = issuer_from_env(create=False) if settings.embedded else None
        return verifier_for(settings, issuer).verify(token)
    except CodecKeyError as exc:
        raise CliError(f"{source}: cannot check it: {exc}") from None
    except ApiError as exc:
        raise CliError(f"{source}: {exc.message.removeprefix('token: ')}") from None


def current() -> Principal | None:
    """The principal of KEFU_TOKEN, else of the token `kefu login` kept; None without either."""
    if token := os.environ.get("KEFU_TOKEN", "").strip():
        return verify(token, "KEFU_TOKEN")
    path = token_file()
    if not path.exists():
        return None
    try:
        return verify(read_secret_file(path, "token file").strip(), str(path))
    except CodecKeyError as exc:
        raise CliError(str(exc)) from None


@contextlib.contextmanager
def acting(args: argparse.Namespace) -> Iterator[None]:
    """Run the block as `identity(args)`: updates and signals carry the token's principal (none: the payload's)."""
    who = identity(args)
    with acting_as(who) if who is not None else contextlib.nullcontext():
        yield


def identity(args: argparse.Namespace) -> Principal | None:
    """Whom a command that sends updates or signals acts as: the token's principal (filling --actor and --role),
    or None for the trusted local tool (--actor required, --role the command's default)."""
    if args.command not in ("act", "escalate", "escalate-bulk", "incident", "confirm", "survey"):
        return None
    if args.command == "incident" and not hasattr(args, "actor"):  # incident show: a query
        return None
    who = current()
    if not hasattr(args, "actor"):  # confirm, survey: the customer's answers name nobody
        return who
    if who is None:
        if args.actor is None:
            raise CliError("--actor: required (or act as a token's subject: KEFU_TOKEN or `kefu login`)")
        args.role = args.role or DEFAULT_ROLES[args.command]
        return None
    for flag, given, own in (("--actor", args.actor, who.sub), ("--role", args.role, who.role)):
        if given is not None and given != own:
            raise CliError(f"{flag}: the token acts as {who.role} {who.sub}; it may not act as {given}")
    args.actor, args.role = who.sub, who.role
    return who
