"""Every secret the compose stack needs, created once under deploy/secrets/ (git- and docker-ignored), owner-only.

    .venv/bin/python deploy/make_secrets.py            # creates what is missing; never overwrites a key
    sudo .venv/bin/python deploy/make_secrets.py --chown   # also hands each file to the container user reading it
    .venv/bin/python deploy/make_secrets.py --renew-certs  # new leaf certificates from the same CA (before expiry)

mTLS between Temporal and its clients (tls/): a CA (ca.pem, ca.key: the key is never mounted anywhere), the
frontend's server certificate (SAN temporal, localhost, 127.0.0.1), the internode certificate (server and client:
Temporal's roles call each other and the frontend with it), and one client certificate each for the workers, the
HTTP API, the Web UI server and the admin tools. All ECDSA P-256; leaves carry only the extended key usage they need
(serverAuth or clientAuth), so a client certificate cannot serve as the frontend.

Application keys: codec.keys (payload key, `python -m infra.codec genkey`), codec-server.token (the codec server's
bearer token) and codec-proxy-auth.conf (the same token as an nginx header line for the UI gateway),
principal-api.key and principal-worker.key (Ed25519 signing keys of infra/principal.py, key ids api1 / worker1),
issuer.key (Ed25519 PEM, KEFU_ISSUER_KEY_FILE: the API's own token issuer and the customer links the workers sign).

The compose variables go to .env beside docker-compose.yml (0600): the database passwords, the UI gateway's
oauth2-proxy cookie secret, and KEFU_PRINCIPAL_TRUSTED, the API's public key, which the workers trust. Existing lines
are kept.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import os
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from a checkout: the project's own modules fix the key formats
    sys.path.insert(0, str(ROOT))

from infra.codec import CodecKeyError, new_key_entry  # noqa: E402
from infra.principal import public_entry, signer_from_env  # noqa: E402

SERVER_NAME = "temporal"  # the compose service name; clients verify it (TEMPORAL_TLS_SERVER_NAME)
CA_DAYS = 3650
LEAF_DAYS = 397
# uids of the images' users: temporalio/server, temporalio/ui, the kefu image (Dockerfile); nginx reads as root
TEMPORAL_UID, UI_UID, KEFU_UID, ROOT_UID = 1000, 5000, 10001, 0


@dataclass(frozen=True)
class Leaf:
    name: str  # file stem under tls/
    common_name: str
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    server: bool
    client: bool
    uid: int  # who reads the key in its container


LEAVES = (
    Leaf("frontend", SERVER_NAME, (SERVER_NAME, "localhost"), ("127.0.0.1",), server=True, client=False,
         uid=TEMPORAL_UID),
    Leaf("internode", SERVER_NAME, (SERVER_NAME,), (), server=True, client=True, uid=TEMPORAL_UID),
    Leaf("worker", "kefu-worker", ("kefu-worker",), (), server=False, client=True, uid=KEFU_UID),
    Leaf("api", "kefu-api", ("kefu-api",), (), server=False, client=True, uid=KEFU_UID),
    Leaf("admin", "kefu-admin", ("kefu-admin",), (), server=False, client=True, uid=KEFU_UID),
    Leaf("ui", "temporal-ui", ("temporal-ui",), (), server=False, client=True, uid=UI_UID),
)
PRINCIPALS = {"api": "api1", "worker": "worker1"}  # principal-<name>.key -> key id (distinct: the worker merges them)


def say(message: str) -> None:
    print(message, flush=True)


# --- files ------------------------------------------------------------------------------------------------------
def write_new(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Create path with data and mode; False (untouched) when it exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # the umask masked os.open's mode
    return True


def replace(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write data to path atomically (a new file renamed over the old one), with mode."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    write_new(tmp, data, mode)
    os.replace(tmp, path)


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --- certificates -----------------------------------------------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kefu"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days: int, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)  # a little slack for clock skew


def make_ca(now: dt.datetime, days: int = CA_DAYS) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days, now)
    cert = (x509.CertificateBuilder().subject_name(_name("kefu internal CA")).issuer_name(_name("kefu internal CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(leaf: Leaf, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, now: dt.datetime,
              days: int = LEAF_DAYS, extra_dns: Iterable[str] = ()) -> tuple[ec.EllipticCurvePrivateKey,
                                                                              x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days, now)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys((*leaf.dns, *extra_dns))]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in leaf.ips]
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if leaf.server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if leaf.client else [])
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder().subject_name(_name(leaf.common_name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(min(end, ca.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def ensure_tls(folder: Path, renew: bool, days: int, extra_dns: Iterable[str]) -> dict[Path, int]:
    """The CA (created once) and every leaf (created when missing, or all again with renew). Returns each key's
    reader uid, for --chown."""
    tls = folder / "tls"
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key_path, ca_path = tls / "ca.key", tls / "ca.pem"
    if not ca_key_path.exists():
        ca_key, ca = make_ca(now)
        write_new(ca_key_path, pem_key(ca_key))
        replace(ca_path, pem_cert(ca), 0o644)
        say(f"created {ca_path} (CA, {CA_DAYS} days) and its key {ca_key_path}: keep the key off the servers")
    loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise SystemExit(f"{ca_key_path}: not an EC key")
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    readers: dict[Path, int] = {}
    for leaf in LEAVES:
        key_path, cert_path = tls / f"{leaf.name}.key", tls / f"{leaf.name}.pem"
        readers[key_path] = readers[cert_path] = leaf.uid
        if key_path.exists() and cert_path.exists() and not renew:
            continue
        key, cert = make_leaf(leaf, loaded, ca, now, days, extra_dns if leaf.server else ())
        replace(key_path, pem_key(key))
        replace(cert_path, pem_cert(cert), 0o644)
        role = "/".join(r for r, on in (("server", leaf.server), ("client", leaf.client)) if on)
        say(f"{'renewed' if renew else 'created'} {cert_path} ({role}, CN {leaf.common_name}, {days} days)")
    return readers


# --- application keys -------------------------------------------------------------------------------------------
def principal_key_text(key_id: str) -> str:
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return f"# kefu principal signing key (Ed25519); keep it secret\n{key_id}:{base64.b64encode(seed).decode()}\n"


def nginx_auth_line(token: str) -> str:
    return ("# the UI gateway adds the codec server's bearer token (made by deploy/make_secrets.py)\n"
            f'proxy_set_header Authorization "Bearer {token}";\n')


def ensure_app_keys(folder: Path) -> tuple[dict[Path, int], str | None]:
    """Codec key, codec-server token (and its nginx line), principal keys. Returns readers and the API's public
    principal entry (None when the key file cannot be read: handed over to uid 10001 and run without sudo)."""
    readers: dict[Path, int] = {}
    codec = folder / "codec.keys"
    if write_new(codec, f"# kefu payload key; keep it secret, keep it to read old runs\n{new_key_entry('k1')}\n"
                 .encode()):
        say(f"created {codec} (payload key k1)")
    token_path = folder / "codec-server.token"
    if write_new(token_path, f"{secrets.token_urlsafe(32)}\n".encode()):
        say(f"created {token_path} (the codec server's bearer token)")
    proxy = folder / "codec-proxy-auth.conf"
    readers.update({codec: KEFU_UID, token_path: KEFU_UID, proxy: ROOT_UID})
    try:
        wanted = nginx_auth_line(token_path.read_text(encoding="utf-8").strip()).encode()
        if not proxy.exists() or proxy.read_bytes() != wanted:  # derived from the token: kept in step with it
            replace(proxy, wanted)
            say(f"wrote {proxy} (the token as the UI gateway's header)")
    except PermissionError:  # handed to the containers' users by an earlier --chown: only root reads it now
        say(f"note: cannot read {token_path} or {proxy} (run with sudo to check them)")
    for name, key_id in PRINCIPALS.items():
        path = folder / f"principal-{name}.key"
        if write_new(path, principal_key_text(key_id).encode()):
            say(f"created {path} (principal signing key {key_id})")
        readers[path] = KEFU_UID
    issuer = folder / "issuer.key"
    if write_new(issuer, Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())):
        say(f"created {issuer} (token and customer-link issuer key)")
    readers[issuer] = KEFU_UID
    api_key = folder / "principal-api.key"
    try:
        api = signer_from_env({"KEFU_PRINCIPAL_KEY_FILE": str(api_key)}, create=False)
    except CodecKeyError as exc:
        say(f"note: {exc}")
        return readers, None
    return readers, public_entry(api)


# --- .env -------------------------------------------------------------------------------------------------------
def ensure_env(path: Path, trusted: str | None) -> None:
    """Add the variables .env lacks (owner-only); never change a value that is there."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    have = {line.split("=", 1)[0].strip() for line in lines if "=" in line and not line.lstrip().startswith("#")}
    wanted = {
        "KEFU_DB_PASSWORD": secrets.token_urlsafe(24),
        "TEMPORAL_DB_PASSWORD": secrets.token_urlsafe(24),
        "KEFU_UI_OIDC_COOKIE_SECRET": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    if trusted:
        wanted["KEFU_PRINCIPAL_TRUSTED"] = trusted
    added = [f"{name}={value}" for name, value in wanted.items() if name not in have]
    if added:
        header = [] if lines else ["# compose variables made by deploy/make_secrets.py; keep this file private"]
        replace(path, ("\n".join([*lines, *header, *added]) + "\n").encode())
        say(f"{path}: added {', '.join(a.split('=', 1)[0] for a in added)}")
    else:
        os.chmod(path, 0o600)
    current = dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
                   if "=" in line and not line.lstrip().startswith("#"))
    if trusted and trusted not in current.get("KEFU_PRINCIPAL_TRUSTED", "").split(","):
        say(f"warning: {path} KEFU_PRINCIPAL_TRUSTED does not list the API's key {trusted.split(':')[0]}; "
            f"the workers will refuse the API's messages until it does: {trusted}")


def hand_over(readers: dict[Path, int]) -> None:
    """chown every file to the user of the container that reads it (compose mounts secrets with host owners)."""
    for path, uid in sorted(readers.items()):
        os.chown(path, uid, uid)
    say(f"handed {len(readers)} files to their containers' users (temporal 1000, ui 5000, kefu 10001, nginx root)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "deploy" / "secrets", help="where secrets go")
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env", help="compose variables (default: .env)")
    parser.add_argument("--renew-certs", action="store_true", help="issue every leaf certificate again")
    parser.add_argument("--days", type=int, default=LEAF_DAYS, help="leaf certificate lifetime")
    parser.add_argument("--server-dns", action="append", default=[],
                        help="another name the frontend answers to (a load balancer, a tunnel); repeatable")
    parser.add_argument("--chown", action="store_true", help="give each file to its container's user (root only)")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):
        os.umask(0o077)
    readers = ensure_tls(args.dir, args.renew_certs, args.days, args.server_dns)
    app_readers, trusted = ensure_app_keys(args.dir)
    readers.update(app_readers)
    ensure_env(args.env_file, trusted)
    if args.chown:
        if os.geteuid() != 0:
            print("--chown needs root (sudo)", file=sys.stderr)
            return 2
        hand_over(readers)
    elif any(path.stat().st_uid != uid for path, uid in readers.items()):
        say("note: the containers read these files as other users (kefu 10001, temporal 1000, ui 5000); "
            "run again with `sudo ... --chown` unless Docker Desktop maps mounted files to the container user")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
