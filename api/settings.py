"""The API's configuration, from the environment (docs/api.md has the table).

Who may call: with neither KEFU_OIDC_ISSUER nor KEFU_OIDC_JWKS_FILE, kefu's own issuer (infra/issuer.py, tokens from
`kefu token issue`); otherwise an OIDC provider: KEFU_OIDC_ISSUER (checked as `iss`; its discovery document gives
the JWKS) and/or KEFU_OIDC_JWKS_FILE (the signing keys from a file, no network), KEFU_OIDC_AUDIENCE (required),
KEFU_OIDC_ROLE_CLAIM (default kefu_role; a dotted path such as realm_access.roles reaches into nested claims),
KEFU_OIDC_SUBJECT_CLAIM (default sub). KEFU_PUBLIC_URL: the address customers' links point at.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from api.errors import ApiError
from infra.issuer import ROLE_CLAIM

DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Settings:
    oidc_issuer: str | None = None
    jwks_file: Path | None = None
    audience: str | None = None
    role_claim: str = ROLE_CLAIM
    subject_claim: str = "sub"
    public_url: str | None = None

    @property
    def embedded(self) -> bool:
        """Tokens come from kefu's own issuer (no OIDC provider configured)."""
        return self.oidc_issuer is None and self.jwks_file is None


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ

    def value(name: str) -> str | None:
        return env.get(name, "").strip() or None

    jwks_file = value("KEFU_OIDC_JWKS_FILE")
    settings = Settings(oidc_issuer=value("KEFU_OIDC_ISSUER"), jwks_file=Path(jwks_file) if jwks_file else None,
                        audience=value("KEFU_OIDC_AUDIENCE"), role_claim=value("KEFU_OIDC_ROLE_CLAIM") or ROLE_CLAIM,
                        subject_claim=value("KEFU_OIDC_SUBJECT_CLAIM") or "sub",
                        public_url=(value("KEFU_PUBLIC_URL") or "").rstrip("/") or None)
    if not settings.embedded and settings.audience is None:
        raise ApiError(500, "KEFU_OIDC_AUDIENCE", "set it to the audience your provider puts in kefu's tokens: "
                                                  "without it a token meant for another application would pass")
    return settings


def api_port(environ: Mapping[str, str] | None = None) -> int:
    """KEFU_API_PORT (default 8000)."""
    env = os.environ if environ is None else environ
    raw = env.get("KEFU_API_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ApiError(500, "KEFU_API_PORT", f"{raw!r} is not a port number (1-65535)")
    return int(raw)
