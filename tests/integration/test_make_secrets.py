"""deploy/make_secrets.py: a CA and certificates that verify (chain, SAN, key usage, extended key usage), a real
mTLS handshake with Python's ssl (OpenSSL) between them, owner-only files that are never overwritten, the
application keys in the formats kefu reads, and .env with the API's public key the workers trust. No engine."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509 import DNSName
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from infra import codec, codec_server, principal
from tests.integration.deploy_scripts import load

pytestmark = pytest.mark.integration  # real sockets, no Temporal server
ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("frontend", "internode")
CLIENTS = ("internode", "worker", "api", "admin", "ui")


make_secrets = load("make_secrets")


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    assert make_secrets.main(["--dir", str(folder), "--env-file", str(folder / "compose.env")]) == 0
    return folder


def cert(folder: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((folder / "tls" / f"{name}.pem").read_bytes())


def builder(folder: Path) -> PolicyBuilder:
    return PolicyBuilder().store(Store([cert(folder, "ca")]))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca(secrets_dir: Path) -> None:
    ca = cert(secrets_dir, "ca")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert ca.subject == ca.issuer


@pytest.mark.parametrize("name", SERVERS)
def test_server_certificates_verify_for_the_service_name(secrets_dir: Path, name: str) -> None:
    chain = builder(secrets_dir).build_server_verifier(DNSName("temporal")).verify(cert(secrets_dir, name), [])
    assert chain[-1] == cert(secrets_dir, "ca")
    with pytest.raises(VerificationError):  # a name it was not issued for
        builder(secrets_dir).build_server_verifier(DNSName("archive-db")).verify(cert(secrets_dir, name), [])


@pytest.mark.parametrize("name", CLIENTS)
def test_client_certificates_verify(secrets_dir: Path, name: str) -> None:
    verified = builder(secrets_dir).build_client_verifier().verify(cert(secrets_dir, name), [])
    assert verified.chain[-1] == cert(secrets_dir, "ca")


@pytest.mark.parametrize("name", ("worker", "api", "admin", "ui"))
def test_client_certificate_cannot_serve(secrets_dir: Path, name: str) -> None:
    leaf = cert(secrets_dir, name)
    own_name = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        DNSName)[0]
    with pytest.raises(VerificationError, match="EKU"):  # even for the name in its own SAN
        builder(secrets_dir).build_server_verifier(DNSName(own_name)).verify(leaf, [])


def test_frontend_cannot_be_a_client(secrets_dir: Path) -> None:
    with pytest.raises(VerificationError, match="EKU"):
        builder(secrets_dir).build_client_verifier().verify(cert(secrets_dir, "frontend"), [])


def test_leaf_extensions(secrets_dir: Path) -> None:
    frontend = cert(secrets_dir, "frontend")
    san = frontend.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"temporal", "localhost"}
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for name in ("frontend", "internode", "worker", "api", "admin", "ui"):
        leaf = cert(secrets_dir, name)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
        ekus = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        expected = {"frontend": {ExtendedKeyUsageOID.SERVER_AUTH},
                    "internode": {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}}
        assert ekus == expected.get(name, {ExtendedKeyUsageOID.CLIENT_AUTH}), name
        assert leaf.not_valid_after_utc <= cert(secrets_dir, "ca").not_valid_after_utc


def test_files_owner_only(secrets_dir: Path) -> None:
    assert mode(secrets_dir) == 0o700 and mode(secrets_dir / "tls") == 0o700
    for path in secrets_dir.rglob("*"):
        if path.is_file():
            public = path.suffix == ".pem"
            assert mode(path) == (0o644 if public else 0o600), path


def test_never_overwritten_and_renewed(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    make_secrets.main(["--dir", str(tmp_path), "--env-file", str(env)])
    keys = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    env.write_text(env.read_text() + "KEFU_UI_PORT=9090\n")
    make_secrets.main(["--dir", str(tmp_path), "--env-file", str(env)])
    for path, content in keys.items():
        if path != env:
            assert path.read_bytes() == content, path
    assert "KEFU_UI_PORT=9090" in env.read_text() and env.read_text().count("KEFU_DB_PASSWORD=") == 1

    make_secrets.main(["--dir", str(tmp_path), "--env-file", str(env), "--renew-certs"])
    tls = tmp_path / "tls"
    assert (tls / "ca.pem").read_bytes() == keys[tls / "ca.pem"]
    assert (tls / "ca.key").read_bytes() == keys[tls / "ca.key"]
    assert (tls / "worker.pem").read_bytes() != keys[tls / "worker.pem"]
    assert (tls / "worker.key").read_bytes() != keys[tls / "worker.key"]
    builder(tmp_path).build_client_verifier().verify(cert(tmp_path, "worker"), [])
    assert (tmp_path / "codec.keys").read_bytes() == keys[tmp_path / "codec.keys"]


def test_application_keys_load(secrets_dir: Path) -> None:
    keys = codec.load_keys({"KEFU_CODEC_KEY_FILE": str(secrets_dir / "codec.keys")})
    assert [key_id for key_id, _ in keys] == ["k1"]
    token_file = str(secrets_dir / "codec-server.token")
    token = codec_server.token_from_env(environ={"KEFU_CODEC_SERVER_TOKEN_FILE": token_file})
    assert token and len(token) >= codec_server.MIN_TOKEN
    assert f'proxy_set_header Authorization "Bearer {token}";' in (secrets_dir / "codec-proxy-auth.conf").read_text()
    api = principal.signer_from_env({"KEFU_PRINCIPAL_KEY_FILE": str(secrets_dir / "principal-api.key")})
    worker = principal.signer_from_env({"KEFU_PRINCIPAL_KEY_FILE": str(secrets_dir / "principal-worker.key")})
    assert (api.key_id, worker.key_id) == ("api1", "worker1")
    issuer = serialization.load_pem_private_key((secrets_dir / "issuer.key").read_bytes(), password=None)
    assert isinstance(issuer, Ed25519PrivateKey)  # the format infra/issuer.py reads (KEFU_ISSUER_KEY_FILE)


def test_env_file(secrets_dir: Path) -> None:
    """The workers trust the API's key through KEFU_PRINCIPAL_TRUSTED: a principal the API signs verifies on a
    worker holding its own key; role system stays the worker's."""
    env_path = secrets_dir / "compose.env"
    assert mode(env_path) == 0o600
    env = dict(line.split("=", 1) for line in env_path.read_text().splitlines() if "=" in line)
    assert {"KEFU_DB_PASSWORD", "TEMPORAL_DB_PASSWORD", "KEFU_PRINCIPAL_TRUSTED",
            "KEFU_UI_OIDC_COOKIE_SECRET"} <= set(env)
    assert len(env["KEFU_DB_PASSWORD"]) >= 24 and env["KEFU_DB_PASSWORD"] != env["TEMPORAL_DB_PASSWORD"]
    verifier = principal.verifier_from_env({"KEFU_PRINCIPAL_KEY_FILE": str(secrets_dir / "principal-worker.key"),
                                            "KEFU_PRINCIPAL_TRUSTED": env["KEFU_PRINCIPAL_TRUSTED"]})
    api = principal.signer_from_env({"KEFU_PRINCIPAL_KEY_FILE": str(secrets_dir / "principal-api.key")})
    payload = {"actor": {"id": "agent-a", "role": "agent"}}
    token = api.sign(principal.Principal(sub="agent-a", role="agent"), "kefu-sr-1", "act", payload,
                     datetime.now().astimezone())
    assert verifier.verify(token, "kefu-sr-1", "act", payload, fresh=True).sub == "agent-a"
    system = api.sign(principal.SYSTEM, "kefu-sr-1", "act", payload, datetime.now().astimezone())
    with pytest.raises(principal.PrincipalError, match="system"):
        verifier.verify(system, "kefu-sr-1", "act", payload, fresh=True)


def test_git_ignores_secrets() -> None:
    paths = ["deploy/secrets/codec.keys", "deploy/secrets/tls/ca.key", "deploy/secrets/principal-api.key", ".env"]
    result = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.split() == paths, result.stderr
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"deploy/secrets", ".env"} <= set(ignored)


# --- a real handshake (OpenSSL through Python's ssl) --------------------------------------------------------------
def server_context(folder: Path, name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "tls" / f"{name}.pem", folder / "tls" / f"{name}.key")
    context.load_verify_locations(folder / "tls" / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # requireClientAuth
    return context


def client_context(folder: Path, name: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(folder / "tls" / "ca.pem")
    if name:
        context.load_cert_chain(folder / "tls" / f"{name}.pem", folder / "tls" / f"{name}.key")
    return context


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_name: str = "temporal") -> str:
    """The client's certificate CN as the server saw it; raises the client's or the server's ssl error."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert() or {}
                seen["cn"] = dict(pair[0] for pair in peer.get("subject", ()))["commonName"]
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.recv(2)  # TLS 1.3: the server's verdict on the client certificate arrives with the first read
    except (ssl.SSLError, OSError) as exc:
        thread.join(5)
        raise ssl.SSLError(f"client: {exc}; server: {seen.get('error')}") from exc
    finally:
        listener.close()
    thread.join(5)
    if "error" in seen:
        raise ssl.SSLError(f"server: {seen['error']}")
    return str(seen["cn"])


@pytest.mark.parametrize("name", CLIENTS)
def test_mtls_handshake(secrets_dir: Path, name: str) -> None:
    expected = cert(secrets_dir, name).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert handshake(server_context(secrets_dir, "frontend"), client_context(secrets_dir, name)) == expected


def test_internode_handshake(secrets_dir: Path) -> None:
    """Temporal's roles call each other with the internode certificate on both ends."""
    assert handshake(server_context(secrets_dir, "internode"), client_context(secrets_dir, "internode")) == "temporal"


def test_handshake_refused_without_client_certificate(secrets_dir: Path) -> None:
    with pytest.raises(ssl.SSLError, match="did not return a certificate"):
        handshake(server_context(secrets_dir, "frontend"), client_context(secrets_dir, None))


def test_handshake_refuses_a_server_certificate_as_client(secrets_dir: Path) -> None:
    with pytest.raises(ssl.SSLError, match="unsuitable certificate purpose"):  # no clientAuth EKU
        handshake(server_context(secrets_dir, "frontend"), client_context(secrets_dir, "frontend"))


def test_handshake_refuses_a_client_certificate_as_server(secrets_dir: Path) -> None:
    with pytest.raises(ssl.SSLError, match="unsuitable certificate purpose"):  # no serverAuth EKU
        handshake(server_context(secrets_dir, "worker"), client_context(secrets_dir, "api"), server_name="kefu-worker")


def test_handshake_refuses_a_foreign_ca(secrets_dir: Path, tmp_path: Path) -> None:
    make_secrets.main(["--dir", str(tmp_path), "--env-file", str(tmp_path / ".env")])
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):  # a client certificate from another CA
        handshake(server_context(secrets_dir, "frontend"), client_context_mixed(secrets_dir, tmp_path))


def client_context_mixed(trusted: Path, foreign: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(trusted / "tls" / "ca.pem")
    context.load_cert_chain(foreign / "tls" / "worker.pem", foreign / "tls" / "worker.key")
    return context
