"""kefu's own token issuer (issue 14): bearer tokens for people when no OIDC provider is configured, and the signed,
expiring customer links of the resolution and revisit notices (a customer never logs in).

One Ed25519 key (JWT algorithm EdDSA), a PEM file created owner-only on first use: KEFU_ISSUER_KEY_FILE, default
.data/issuer.key (KEFU_DATA_DIR). The API verifies with it and the worker signs customer links with it while it
renders notices (activities/notify.py), so in production both read the same file (docs/api.md). It is not the
principal key (infra/principal.py): that one vouches for a message to the worker, this one for a person or a link.

- A person's token: iss `kefu`, aud `kefu`, sub, `kefu_role`, iat, exp, jti. Role `system` is never issued.
- A customer link: aud `kefu:customer-link`, sub `customer`, `req` (request id), `q` (confirm or survey), exp,
  jti. Its audience differs, so a link is never a bearer token and a bearer token never a link. The claims are
  fixed by the notice (no issue time), and Ed25519 signatures are deterministic: a retried rendering gives the
  same link.

Imports models only (and infra beside it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.codec import CodecKeyError, read_secret_file
from infra.private_files import FILE_MODE, private_dir
from models.actions import Role

ISSUER = "kefu"  # `iss` of every token kefu issues itself
AUDIENCE = "kefu"  # `aud` of a person's token from the embedded issuer
LINK_AUDIENCE = "kefu:customer-link"
ROLE_CLAIM = "kefu_role"
ALGORITHM = "EdDSA"
Question = Literal["confirm", "survey"]
QUESTIONS: tuple[Question, ...] = ("confirm", "survey")


class TokenError(ValueError):
    """A token that cannot be trusted or issued; one line naming what is wrong, never the token."""


@dataclass(frozen=True)
class CustomerLink:
    """What a verified link allows: answering `question` on `request_id`, until `expires_at`."""

    request_id: str
    question: Question
    expires_at: datetime


@dataclass(frozen=True)
class Issuer:
    key: Ed25519PrivateKey
    key_id: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def issue(self, sub: str, role: Role, ttl: timedelta, now: datetime | None = None) -> str:
        """A person's bearer token. Role `system` exists only inside the worker: never issued."""
        if role == "system":
            raise TokenError("role: system can never be issued; it exists only inside the worker")
        if not 0 < len(sub) <= 64:
            raise TokenError("sub: 1 to 64 characters")
        if ttl <= timedelta(0):
            raise TokenError("ttl: must be positive")
        moment = now or datetime.now(UTC)
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, ROLE_CLAIM: role, "iat": int(moment.timestamp()),
                  "exp": int((moment + ttl).timestamp()), "jti": secrets.token_hex(8)}
        return self._sign(claims)

    def link(self, request_id: str, question: Question, expires_at: datetime, nonce: str) -> str:
        """A customer link's token, for one request and one question; `nonce` (the notice key) keeps it stable."""
        jti = hashlib.sha256(f"{request_id}|{question}|{nonce}".encode()).hexdigest()[:16]
        claims = {"iss": ISSUER, "aud": LINK_AUDIENCE, "sub": "customer", "req": request_id, "q": question,
                  "exp": int(expires_at.timestamp()), "jti": jti}
        return self._sign(claims)

    def verify_link(self, token: str) -> CustomerLink:
        claims = decode(token, self.public, audience=LINK_AUDIENCE, issuer=ISSUER, algorithms=[ALGORITHM],
                        what="link")
        if claims.get("q") not in QUESTIONS or not isinstance(claims.get("req"), str):
            raise TokenError("link: not a customer link")
        return CustomerLink(request_id=claims["req"], question=claims["q"],
                            expires_at=datetime.fromtimestamp(claims["exp"], UTC))

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (for a gateway that verifies kefu's tokens itself)."""
        raw = self.public.public_bytes_raw()
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id, "alg": ALGORITHM,
                          "use": "sig"}]}

    def _sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self.key, algorithm=ALGORITHM, headers={"kid": self.key_id})


def decode(token: str, key: Any, *, audience: str | None, issuer: str | None, algorithms: list[str],
           what: str = "token") -> dict[str, Any]:
    """The claims of a token signed by `key`, or TokenError in one line (expired, wrong audience, …)."""
    options: dict[str, Any] = {"require": ["exp"], "verify_aud": audience is not None,
                               "verify_iss": issuer is not None}
    try:
        return jwt.decode(token, key, algorithms=algorithms, audience=audience, issuer=issuer, options=options,
                          leeway=30)
    except jwt.ExpiredSignatureError:
        raise TokenError(f"{what}: expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError(f"{what}: meant for another audience") from None
    except jwt.InvalidIssuerError:
        raise TokenError(f"{what}: from another issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"{what}: claim {exc.claim} is missing") from None
    except jwt.InvalidSignatureError:
        raise TokenError(f"{what}: bad signature") from None
    except jwt.PyJWTError:
        raise TokenError(f"{what}: malformed or not signed as expected") from None


def key_id(public: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of the key (its `kid`)."""
    x = base64.urlsafe_b64encode(public.public_bytes_raw()).rstrip(b"=").decode()
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()[:16]


def key_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get("KEFU_ISSUER_KEY_FILE", "").strip()
    return Path(explicit) if explicit else Path(env.get("KEFU_DATA_DIR", ".data")) / "issuer.key"


def issuer_from_env(environ: Mapping[str, str] | None = None, create: bool = True) -> Issuer:
    """The issuer's key; the default file is created owner-only on first use (never overwritten). A file that
    group or others may read is refused, like every key file (docs/security.md)."""
    env = os.environ if environ is None else environ
    path = key_file(env)
    if create and not env.get("KEFU_ISSUER_KEY_FILE", "").strip() and not path.exists():
        private_dir(path.parent, tighten=True)
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
    text = read_secret_file(path, "issuer key file")
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except ValueError:
        raise CodecKeyError(f"issuer key file {path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CodecKeyError(f"issuer key file {path}: not an Ed25519 key")
    return Issuer(key=key, key_id=key_id(key.public_key()))
