"""Bearer tokens and customer links (issue 14), with real keys and real JWTs, no network: kefu's own issuer, an OIDC
provider's keys from a JWKS file (RS256 and ES256), roles from a configurable claim, role `system` never issued
nor accepted, and links bound to one request and one question."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from activities.notify import Notifier
from api.auth import verifier_for
from api.errors import ApiError
from api.settings import Settings, settings_from_env
from infra.issuer import Issuer, TokenError, issuer_from_env
from infra.principal import Principal
from models.records import Notice

PROVIDER = "https://sso.example.test/realms/center"


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return issuer_from_env({"KEFU_DATA_DIR": str(tmp_path / "data")})


def refused(verify: Any, token: str, status: int, words: str) -> None:
    with pytest.raises(ApiError) as info:
        verify(token)
    assert info.value.status == status and words in info.value.message, info.value.message


def test_the_embedded_issuer_key_is_owner_only_and_reused(tmp_path: Path, issuer: Issuer) -> None:
    key = tmp_path / "data" / "issuer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert issuer_from_env({"KEFU_DATA_DIR": str(tmp_path / "data")}).key_id == issuer.key_id
    key.chmod(0o644)
    with pytest.raises(ValueError, match="mode 0644 lets group or others read or write it"):
        issuer_from_env({"KEFU_DATA_DIR": str(tmp_path / "data")})


def test_embedded_tokens_verify_and_system_is_never_issued(issuer: Issuer) -> None:
    verify = verifier_for(Settings(), issuer).verify
    assert verify(issuer.issue("sup-1", "supervisor", timedelta(hours=8))) == Principal(sub="sup-1", role="supervisor")
    with pytest.raises(TokenError, match="role: system can never be issued"):
        issuer.issue("kefu", "system", timedelta(hours=1))
    past = datetime.now(UTC) - timedelta(hours=2)
    refused(verify, issuer.issue("sup-1", "supervisor", timedelta(hours=1), now=past), 401, "token: expired")
    forged = jwt.encode({"iss": "kefu", "aud": "kefu", "sub": "kefu", "kefu_role": "system",
                         "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}, issuer.key,
                        algorithm="EdDSA", headers={"kid": issuer.key_id})
    refused(verify, forged, 403, "role system can never come from a token")
    refused(verify, "not-a-token", 401, "malformed")


def test_a_token_from_another_issuer_or_key_is_refused(tmp_path: Path, issuer: Issuer) -> None:
    verify = verifier_for(Settings(), issuer).verify
    stranger = issuer_from_env({"KEFU_DATA_DIR": str(tmp_path / "elsewhere")})
    refused(verify, stranger.issue("sup-1", "supervisor", timedelta(hours=1)), 401, "bad signature")
    claims = {"iss": PROVIDER, "aud": "kefu", "sub": "sup-1", "kefu_role": "supervisor",
              "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}
    refused(verify, jwt.encode(claims, issuer.key, algorithm="EdDSA"), 401, "from another issuer")
    refused(verify, jwt.encode(claims | {"iss": "kefu", "aud": "crm"}, issuer.key, algorithm="EdDSA"), 401,
            "another audience")
    hs = jwt.encode(claims | {"iss": "kefu"}, "shared-secret-of-at-least-32-bytes!!", algorithm="HS256")
    refused(verify, hs, 401, "token:")


# --- an OIDC provider, its keys from a JWKS file -----------------------------------------------------------------
@pytest.fixture
def provider(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Two signing keys (RS256, ES256) as a provider publishes them, in a JWKS file."""
    keys = {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1())}
    published = []
    for kid, key in keys.items():
        algorithm = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        published.append(jwk | {"kid": kid, "use": "sig", "alg": "RS256" if kid.startswith("rsa") else "ES256"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": published}), encoding="utf-8")
    return keys, path


def provider_token(keys: dict[str, Any], kid: str, ttl: timedelta = timedelta(hours=1), **claims: Any) -> str:
    body = {"iss": PROVIDER, "aud": "kefu-api", "sub": "zhang.wei", "exp": int((datetime.now(UTC) + ttl).timestamp()),
            **claims}
    return jwt.encode(body, keys[kid], algorithm="RS256" if kid.startswith("rsa") else "ES256",
                      headers={"kid": kid})


def test_oidc_tokens_from_a_jwks_file_with_roles_from_a_configured_claim(provider: tuple[dict[str, Any], Path]) -> None:
    keys, path = provider
    env = {"KEFU_OIDC_ISSUER": PROVIDER, "KEFU_OIDC_JWKS_FILE": str(path), "KEFU_OIDC_AUDIENCE": "kefu-api",
           "KEFU_OIDC_ROLE_CLAIM": "realm_access.roles", "KEFU_OIDC_SUBJECT_CLAIM": "preferred_username"}
    verify = verifier_for(settings_from_env(env)).verify
    roles = {"realm_access": {"roles": ["offline_access", "agent", "team_lead"]}, "preferred_username": "zhang.wei"}
    assert verify(provider_token(keys, "rsa-1", **roles)) == Principal(sub="zhang.wei", role="team_lead")
    assert verify(provider_token(keys, "ec-1", **roles)).role == "team_lead"
    refused(verify, provider_token(keys, "rsa-1", ttl=timedelta(minutes=-5), **roles), 401, "expired")
    refused(verify, provider_token(keys, "rsa-1", iss="https://other.example.test", **roles), 401, "another issuer")
    refused(verify, provider_token(keys, "rsa-1", aud="other-app", **roles), 401, "another audience")
    refused(verify, provider_token(keys, "rsa-1", realm_access={"roles": ["viewer"]}, preferred_username="z"), 403,
            "names no kefu role")
    refused(verify, provider_token(keys, "rsa-1", realm_access={"roles": ["system", "agent"]},
                                   preferred_username="z"), 403, "role system can never come from a token")
    unknown = jwt.encode({"iss": PROVIDER, "aud": "kefu-api", "sub": "x", "exp": 2_000_000_000},
                         rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                         headers={"kid": "rsa-9"})
    refused(verify, unknown, 401, "a key the issuer does not publish")


def test_oidc_needs_an_audience() -> None:
    with pytest.raises(ApiError, match="KEFU_OIDC_AUDIENCE"):
        settings_from_env({"KEFU_OIDC_ISSUER": PROVIDER})


# --- customer links -----------------------------------------------------------------------------------------------
def test_a_link_answers_one_question_of_one_request_until_it_expires(issuer: Issuer) -> None:
    until = datetime.now(UTC) + timedelta(days=3)
    token = issuer.link("R-1", "confirm", until, nonce="R-1:resolution:customer:customer:1")
    assert token == issuer.link("R-1", "confirm", until, nonce="R-1:resolution:customer:customer:1")  # stable
    found = issuer.verify_link(token)
    assert (found.request_id, found.question) == ("R-1", "confirm")
    with pytest.raises(TokenError, match="link: expired"):
        issuer.verify_link(issuer.link("R-1", "survey", datetime.now(UTC) - timedelta(hours=1), nonce="n"))
    person = issuer.issue("sup-1", "supervisor", timedelta(hours=1))
    with pytest.raises(TokenError, match="another audience"):
        issuer.verify_link(person)  # a bearer token is never a link
    refused(verifier_for(Settings(), issuer).verify, token, 401, "another audience")  # nor a link a bearer token
    head, body, signature = token.split(".")
    tampered = json.loads(jwt.utils.base64url_decode(body)) | {"req": "R-2"}
    forged = ".".join([head, jwt.utils.base64url_encode(json.dumps(tampered).encode()).decode(), signature])
    with pytest.raises(TokenError, match="bad signature"):
        issuer.verify_link(forged)


def test_resolution_and_revisit_notices_carry_the_link_only_with_a_public_url(
        issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = Notifier(issuer=issuer)
    contact = {"ticket": "KF-1", "customer_name": "王小明", "customer_phone": "13812345678"}
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    resolution = Notice(key="R-1:resolution:customer:customer:1", request_id="R-1", template="resolution",
                        audience="customer", recipient="customer", language="en",
                        context={"summary": "fixed", "confirm_by": until})
    revisit = resolution.model_copy(update={"key": "R-1:revisit:customer:customer:1", "template": "revisit",
                                            "language": "zh-CN", "context": {"survey_until": until, "scale_max": 100}})
    monkeypatch.delenv("KEFU_PUBLIC_URL", raising=False)
    assert "/c/" not in notifier.render(resolution, contact).body
    monkeypatch.setenv("KEFU_PUBLIC_URL", "https://kefu.example.test/")
    for notice, question in ((resolution, "confirm"), (revisit, "survey")):
        body = notifier.render(notice, contact).body
        token = body.split("https://kefu.example.test/c/")[1].split()[0]
        found = issuer.verify_link(token)
        assert (found.request_id, found.question) == ("R-1", question)
        assert found.expires_at == datetime.fromisoformat(until).replace(microsecond=0)
