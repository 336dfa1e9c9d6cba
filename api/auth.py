"""Bearer tokens → the verified principal (issue 14; SEEDS §10 least privilege).

A token is a JWT signed by the configured issuer: kefu's own (infra/issuer.py) by default, or an OIDC provider's,
whose keys come from a JWKS file or from the provider's discovery document. Its subject and role become the
Principal the API signs into every update (infra/principal.py, `acting_as`); nothing a request body says can
change them. Role `system` exists only inside the worker: a token that claims it is refused.

An unverifiable token is 401 (expired, another issuer, bad signature, unknown key); a verified one whose role kefu
cannot use is 403. Plain Python (no HTTP): the CLI verifies KEFU_TOKEN with the same code.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from pydantic import ValidationError

from api.errors import FORBIDDEN, UNAUTHORIZED, UNAVAILABLE, ApiError
from api.settings import Settings
from infra.issuer import ALGORITHM, AUDIENCE, ISSUER, ROLE_CLAIM, Issuer, TokenError, decode, issuer_from_env
from infra.principal import Principal
from models.actions import ROLE_RANK

# Asymmetric algorithms only: never `none`, never a shared secret (HS*) a public key could be mistaken for.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", ALGORITHM})


class KeySource(Protocol):
    def key(self, kid: str | None) -> tuple[Any, list[str]]:
        """The verification key for `kid` and the algorithms it may sign with."""
        ...


@dataclass(frozen=True)
class EmbeddedKeys:
    issuer: Issuer

    def key(self, kid: str | None) -> tuple[Any, list[str]]:
        return self.issuer.public, [ALGORITHM]


@dataclass
class JwksKeys:
    """Keys of a JWKS document: a file (KEFU_OIDC_JWKS_FILE, read again when a token names an unknown key, for
    rotation) or a URL from the provider's discovery document (fetched and cached by PyJWT)."""

    file: str | None = None
    issuer_url: str | None = None
    _keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    _client: jwt.PyJWKClient | None = None

    def key(self, kid: str | None) -> tuple[Any, list[str]]:
        try:
            found = self._from_file(kid) if self.file else self._from_provider(kid)
        except (OSError, ValueError, jwt.PyJWKClientConnectionError) as exc:
            raise ApiError(UNAVAILABLE, None, f"identity provider keys unavailable ({type(exc).__name__})") from None
        except jwt.PyJWKClientError:
            found = None
        if found is None:
            raise TokenError("token: signed with a key the issuer does not publish")
        algorithm = found.algorithm_name
        if algorithm not in ALGORITHMS:
            raise TokenError(f"token: algorithm {algorithm} is not accepted")
        return found.key, [algorithm]

    def _from_file(self, kid: str | None) -> jwt.PyJWK | None:
        if kid not in self._keys:
            with open(self.file, encoding="utf-8") as fh:  # type: ignore[arg-type]
                keyset = jwt.PyJWKSet.from_json(fh.read())
            self._keys = {k.key_id or "": k for k in keyset.keys}
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid or "")

    def _from_provider(self, kid: str | None) -> jwt.PyJWK | None:
        if self._client is None:
            url = f"{self.issuer_url.rstrip('/')}/.well-known/openid-configuration"  # type: ignore[union-attr]
            with urllib.request.urlopen(url, timeout=10) as answer:
                self._client = jwt.PyJWKClient(json.load(answer)["jwks_uri"], cache_keys=True, lifespan=300)
        return self._client.get_signing_key(kid) if kid else None


@dataclass
class TokenVerifier:
    keys: KeySource
    issuer: str | None
    audience: str | None
    role_claim: str
    subject_claim: str = "sub"

    def verify(self, token: str) -> Principal:
        """The principal a bearer token vouches for, or ApiError (401: not verified; 403: a role kefu refuses)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key, algorithms = self.keys.key(kid)
            claims = decode(token, key, audience=self.audience, issuer=self.issuer, algorithms=algorithms)
        except jwt.PyJWTError:
            raise ApiError(UNAUTHORIZED, "Authorization", "token: malformed") from None
        except TokenError as exc:
            raise ApiError(UNAUTHORIZED, "Authorization", str(exc)) from None
        role = role_of(claims, self.role_claim)
        try:
            return Principal(sub=_claim(claims, self.subject_claim), role=role)  # type: ignore[arg-type]
        except ValidationError:
            raise ApiError(FORBIDDEN, "Authorization", f"token: claim {self.subject_claim} is not a subject kefu "
                                                       "can record (1 to 64 characters)") from None


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (realm_access.roles)."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def role_of(claims: Mapping[str, Any], claim: str) -> str:
    """The kefu role the claim grants: a string, or the highest kefu role in a list of roles."""
    value = _claim(claims, claim)
    named = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []
    if "system" in named:
        raise ApiError(FORBIDDEN, "Authorization", "token: role system can never come from a token")
    roles = [role for role in named if role in ROLE_RANK]
    if not roles:
        raise ApiError(FORBIDDEN, "Authorization", f"token: claim {claim} names no kefu role")
    return max(roles, key=ROLE_RANK.__getitem__)


def verifier_for(settings: Settings, issuer: Issuer | None = None) -> TokenVerifier:
    """kefu's own issuer (embedded), or the OIDC provider the settings name."""
    if settings.embedded:
        return TokenVerifier(EmbeddedKeys(issuer or issuer_from_env()), ISSUER, AUDIENCE, role_claim=ROLE_CLAIM)
    keys = JwksKeys(file=str(settings.jwks_file) if settings.jwks_file else None, issuer_url=settings.oidc_issuer)
    return TokenVerifier(keys, settings.oidc_issuer, settings.audience, settings.role_claim, settings.subject_claim)
