"""Fixtures for integration tests on the real lab farm (`make lab`; see docs/lab.md).

- `lab`: the lab's facts (endpoints, registries, CA, base image, env for subprocesses).
  Skips every test that uses it when the lab does not answer, but FAILS when CI=true.
- `buildx`: the buildx this run tests, chosen by FARM_LAB_BUILDX (0.13, the system's, by
  default; 0.29, the lab's copy from sid). Checked once per session with `buildx version`:
  a different version fails the run; a missing 0.29 skips it, but FAILS when CI=true.
- `docker_config`: a private DOCKER_CONFIG folder (a Path), empty but for a config.json naming
  the chosen buildx's folder (`cliPluginsExtraDirs`) when it is not the system's. Builders left in it are removed
  after the test, with their BuildKit containers and volumes; so is every BuildKit container
  or state volume on the lab's engines whose name carries one of the test's `unique_name`s.
- `unique_name`: a short, lowercase, unique name (a str); call it with a prefix for more,
  e.g. `unique_name("up")` -> "up-k3x9a2".
- `registry`: the lab's registries, for repository names and reading what was pushed.

Every test in this folder is marked `integration`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
# Helpers beside the tests (registry_images.py) stay importable by their plain names.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
LAB_SH = ROOT / "lab" / "lab.sh"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# What lab/lab.sh prints with `env`; used as is when the script cannot be run.
DEFAULT_FACTS = {
    "FARM_LAB_STATE": "/var/lib/buildkit-farm-lab",
    "FARM_LAB_NODE1": "unix:///var/run/docker.sock",
    "FARM_LAB_NODE2": "ssh://farm@127.0.0.1:2222",
    "FARM_LAB_NODE2_SOCKET": "unix:///var/lib/buildkit-farm-lab/node2/docker.sock",
    "FARM_LAB_NODE2_TCP": "tcp://127.0.0.1:2376",
    "FARM_LAB_NODE3": "unix:///var/lib/buildkit-farm-lab/node3/docker.sock",
    "FARM_LAB_CLIENT_CERT": "/var/lib/buildkit-farm-lab/tls/client.pem",
    "FARM_LAB_CLIENT_KEY": "/var/lib/buildkit-farm-lab/tls/client.key",
    "FARM_LAB_REGISTRY": "127.0.0.1:5000",
    "FARM_LAB_TLS_REGISTRY": "127.0.0.1:5443",
    "FARM_LAB_CA": "/var/lib/buildkit-farm-lab/tls/ca.pem",
    "FARM_LAB_CERT_DIR": "/var/lib/buildkit-farm-lab/tls/certs",
    "FARM_LAB_SSL_CERT_DIR": "/etc/ssl/certs:/var/lib/buildkit-farm-lab/tls/certs",
    "FARM_LAB_BASE": "127.0.0.1:5000/base:latest",
    "FARM_LAB_BUILDKIT_IMAGE": "moby/buildkit:buildx-stable-1",
    "FARM_LAB_BUILDKIT_REF": "127.0.0.1:5000/buildkit:lab",
    "FARM_LAB_FARM_FILE": str(ROOT / "lab" / "farm.toml"),
    "FARM_LAB_BUILDX_029_DIR": "/var/cache/buildkit-farm-lab/buildx-0.29",
}


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class Lab:
    """The lab farm's facts (see lab/lab.sh env)."""

    node1: str  # unix:///var/run/docker.sock (linux/amd64)
    node2: str  # ssh://farm@127.0.0.1:2222 (linux/arm64, linux/arm/v7 under QEMU)
    node2_socket: str  # node2's engine, directly (root only); faster than ssh for checks
    node2_tcp: str  # node2's engine over tcp+TLS: tcp://127.0.0.1:2376, client certificate required
    client_cert: Path  # a client certificate (and key) signed by the lab's CA, for node2_tcp
    client_key: Path
    registry: str  # 127.0.0.1:5000, plain http
    tls_registry: str  # 127.0.0.1:5443, TLS with the lab's CA
    ca: Path  # the TLS registry's CA certificate
    cert_dir: Path  # a folder holding that CA, hashed, for SSL_CERT_DIR
    base: str  # 127.0.0.1:5000/base:latest (linux/amd64, linux/arm64, linux/arm/v7)
    buildkit_image: str  # the image the docker-container driver runs, on both engines
    buildkit_ref: str  # the same image in the lab registry
    farm_file: Path  # lab/farm.toml
    state: Path
    env: dict[str, str] = field(default_factory=dict)  # FARM_LAB_* plus SSL_CERT_DIR, for subprocesses
    node3: str = DEFAULT_FACTS["FARM_LAB_NODE3"]  # a third engine (pools across engines), its unix socket

    def farm_data(self, builder: str) -> dict:
        """lab/farm.toml as data under another builder name, its paths made absolute (a copy lives elsewhere)."""
        data = tomllib.loads(self.farm_file.read_text())
        data["builder"]["name"] = builder
        base = self.farm_file.parent
        for table in [data["builder"], *data.get("node", [])]:
            if isinstance(table.get("buildkitd_config"), str):
                table["buildkitd_config"] = str((base / table["buildkitd_config"]).resolve())
            tls = table.get("tls") or {}
            for key in ("ca", "cert", "key"):
                if isinstance(tls.get(key), str):
                    tls[key] = str((base / tls[key]).resolve())
        return data


def _facts() -> dict[str, str]:
    facts = dict(DEFAULT_FACTS)
    try:
        out = subprocess.run(["bash", str(LAB_SH), "env"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return facts
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            facts[key] = value
    return facts


def _answers(host: str, timeout: int = 25) -> str | None:
    """None when the engine at `host` answers; else why not."""
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    try:
        r = subprocess.run(
            ["docker", "-H", host, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_CONTEXT": ""},
        )
    except subprocess.TimeoutExpired:
        return f"{host} did not answer within {timeout}s"
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return f"{host}: {lines[-1] if lines else 'no answer'}"
    return None


def _registry_answers(url: str, ca: Path | None = None) -> str | None:
    import ssl

    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(f"{url}/v2/", timeout=5, context=context):
            return None
    except Exception as err:
        return f"{url}: {err}"


@pytest.fixture(scope="session")
def lab() -> Lab:
    facts = _facts()
    problems = []
    for host in (facts["FARM_LAB_NODE1"], facts["FARM_LAB_NODE2"]):
        why = _answers(host)
        if why:
            problems.append(why)
    ca = Path(facts["FARM_LAB_CA"])
    for url, cafile in (
        (f"http://{facts['FARM_LAB_REGISTRY']}", None),
        (f"https://{facts['FARM_LAB_TLS_REGISTRY']}", ca),
    ):
        if cafile is not None and not cafile.exists():
            problems.append(f"no CA at {cafile}")
            continue
        why = _registry_answers(url, cafile)
        if why:
            problems.append(why)
    if problems:
        message = "the lab farm is not up (run `make lab`): " + "; ".join(problems)
        if IN_CI:
            pytest.fail(message + " [CI=true: integration tests must run]", pytrace=False)
        pytest.skip(message)
    env = {k: v for k, v in facts.items() if k.startswith("FARM_LAB_")}
    env["SSL_CERT_DIR"] = facts["FARM_LAB_SSL_CERT_DIR"]
    return Lab(
        node1=facts["FARM_LAB_NODE1"],
        node2=facts["FARM_LAB_NODE2"],
        node2_socket=facts["FARM_LAB_NODE2_SOCKET"],
        node2_tcp=facts["FARM_LAB_NODE2_TCP"],
        client_cert=Path(facts["FARM_LAB_CLIENT_CERT"]),
        client_key=Path(facts["FARM_LAB_CLIENT_KEY"]),
        registry=facts["FARM_LAB_REGISTRY"],
        tls_registry=facts["FARM_LAB_TLS_REGISTRY"],
        ca=ca,
        cert_dir=Path(facts["FARM_LAB_CERT_DIR"]),
        base=facts["FARM_LAB_BASE"],
        buildkit_image=facts["FARM_LAB_BUILDKIT_IMAGE"],
        buildkit_ref=facts["FARM_LAB_BUILDKIT_REF"],
        farm_file=Path(facts["FARM_LAB_FARM_FILE"]),
        state=Path(facts["FARM_LAB_STATE"]),
        env=env,
        node3=facts["FARM_LAB_NODE3"],
    )


class UniqueName(str):
    """A short unique lowercase name; `unique_name("prefix")` gives another one.

    `tokens` lists the random part of every name handed out, so teardown can find what a
    test left on the engines under those names.
    """

    tokens: list[str]

    def __call__(self, prefix: str = "t") -> str:
        token = _token()
        self.tokens.append(token)
        return f"{prefix}-{token}"


def _token(n: int = 6) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(alphabet) for _ in range(n - 1))


@pytest.fixture
def unique_name() -> UniqueName:
    name = UniqueName(_token(8))
    name.tokens = [str(name)]
    return name


def _builders(config: Path) -> list[dict]:
    out = []
    folder = config / "buildx" / "instances"
    if folder.is_dir():
        for path in folder.iterdir():
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
    return out


def _remove_builders(config: Path, lab: Lab) -> None:
    """Remove every builder of this private config, and its BuildKit containers and volumes."""
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    env.pop("DOCKER_CONTEXT", None)
    env.pop("BUILDX_BUILDER", None)
    for builder in _builders(config):
        name = builder.get("Name")
        if not name:
            continue
        try:
            subprocess.run(["docker", "buildx", "rm", "--force", name], env=env, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        # If buildx could not reach a node (a test stopped sshd), finish the job on the engines.
        if builder.get("Driver", "docker-container") != "docker-container":
            continue
        for node in builder.get("Nodes") or []:
            container = f"buildx_buildkit_{node.get('Name', '')}"
            if container == "buildx_buildkit_":
                continue
            for host in (lab.node1, lab.node2_socket, lab.node3):
                try:
                    subprocess.run(["docker", "-H", host, "rm", "-f", "-v", container], capture_output=True, timeout=30)
                    subprocess.run(
                        ["docker", "-H", host, "volume", "rm", "-f", f"{container}_state"],
                        capture_output=True,
                        timeout=30,
                    )
                except subprocess.TimeoutExpired:
                    pass


def _remove_leftovers(lab: Lab, tokens: list[str]) -> None:
    """Remove BuildKit containers and state volumes on both engines whose names carry a token.

    The instance files miss what a test dropped from its builder before teardown: a node
    that left (buildx leaves its container), `down --keep-state`, a `down` that half failed.
    """
    listings = (("ps", "-a", "--format", "{{.Names}}"), ("volume", "ls", "--format", "{{.Name}}"))
    removals = (("rm", "-f", "-v"), ("volume", "rm", "-f"))
    for host in (lab.node1, lab.node2_socket, lab.node3):
        for listing, removal in zip(listings, removals):  # containers first: they hold the volumes
            try:
                out = subprocess.run(
                    ["docker", "-H", host, *listing],
                    capture_output=True,
                    text=True,
                    timeout=30,
                ).stdout
                ours = [
                    n
                    for n in out.split()
                    # the farm's marker containers (node locks, drains) go with their node
                    if n.startswith(("buildx_buildkit_", "buildkit-farm-"))
                    and any(t in n.split("_", 2)[-1] for t in tokens)
                ]
                if ours:
                    subprocess.run(["docker", "-H", host, *removal, *ours], capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                pass


@dataclass(frozen=True)
class Buildx:
    """The buildx a test run uses: its version and the plugin folder a config must name (None: the system's)."""

    version: str  # "0.13" or "0.29": what FARM_LAB_BUILDX asked for
    plugin_dir: Path | None

    def write_config(self, config: Path) -> None:
        """Make `config` a Docker config whose buildx is this one."""
        if self.plugin_dir is not None:
            (config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(self.plugin_dir)]}) + "\n")


BUILDX_CHOICES = {"0.13": None, "0.29": "FARM_LAB_BUILDX_029_DIR"}


def _fail_or_skip(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " [CI=true: integration tests must run]", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def buildx(lab, tmp_path_factory) -> Buildx:
    asked = os.environ.get("FARM_LAB_BUILDX") or "0.13"
    if asked not in BUILDX_CHOICES:
        pytest.fail(f"FARM_LAB_BUILDX={asked}: choose one of {', '.join(BUILDX_CHOICES)}", pytrace=False)
    key = BUILDX_CHOICES[asked]
    plugin_dir = Path(_facts().get(key, "")) if key else None
    if plugin_dir is not None and not (plugin_dir / "docker-buildx").is_file():
        _fail_or_skip(f"no buildx {asked} in {plugin_dir} (run `lab/lab.sh install`)")
    chosen = Buildx(asked, plugin_dir)
    config = tmp_path_factory.mktemp("buildx-check")
    chosen.write_config(config)
    out = subprocess.run(
        ["docker", "--config", str(config), "buildx", "version"], capture_output=True, text=True, timeout=30
    )
    words = out.stdout.split()
    found = words[1] if len(words) > 1 else out.stderr.strip()
    if not found.startswith(asked + "."):
        pytest.fail(f"FARM_LAB_BUILDX={asked}, but the test configs run buildx {found!r}", pytrace=False)
    return chosen


@pytest.fixture
def docker_config(tmp_path_factory, lab, buildx, unique_name) -> Path:
    config = tmp_path_factory.mktemp("docker-config")
    buildx.write_config(config)
    yield config
    _remove_builders(config, lab)
    _remove_leftovers(lab, unique_name.tokens)


@dataclass(frozen=True)
class Registry:
    """The lab's registries: repository names and reads over the registry HTTP API."""

    address: str
    tls_address: str
    ca: Path

    def __str__(self) -> str:
        return self.address

    def repo(self, name: str, *, tls: bool = False) -> str:
        return f"{self.tls_address if tls else self.address}/{name}"

    def _get(self, path: str, *, tls: bool, accept: str | None = None) -> tuple[dict, dict]:
        import ssl

        base = f"https://{self.tls_address}" if tls else f"http://{self.address}"
        request = urllib.request.Request(f"{base}{path}", headers={"Accept": accept} if accept else {})
        context = ssl.create_default_context(cafile=str(self.ca)) if tls else None
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return json.loads(resp.read()), dict(resp.headers)

    def tags(self, repo: str, *, tls: bool = False) -> list[str]:
        """The tags of `repo` (without the registry address); [] when it does not exist."""
        try:
            return self._get(f"/v2/{repo}/tags/list", tls=tls)[0].get("tags") or []
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []
            raise

    def manifest(self, repo: str, reference: str, *, tls: bool = False) -> dict:
        """The manifest or index at repo:reference, as JSON."""
        accept = ", ".join(
            (
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
        )
        return self._get(f"/v2/{repo}/manifests/{reference}", tls=tls, accept=accept)[0]


@pytest.fixture(scope="session")
def registry(lab) -> Registry:
    return Registry(address=lab.registry, tls_address=lab.tls_registry, ca=lab.ca)


# ---------------------------------------------------------------- the password registry
@dataclass(frozen=True)
class AuthRegistry:
    """The lab's registry that wants a password (`lab/lab.sh up auth-registry`): 127.0.0.1:5001.

    `login(config)` runs `docker login` into that docker config folder (the password goes
    through stdin, never argv); reads go over the registry HTTP API with basic auth.
    """

    address: str
    user: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return self.address

    def repo(self, name: str) -> str:
        return f"{self.address}/{name}"

    def login(self, config: Path) -> None:
        result = subprocess.run(
            ["docker", "--config", str(config), "login", "--username", self.user, "--password-stdin", self.address],
            input=self.password,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"docker login {self.address} failed: {result.stderr.strip()}"

    def _get(self, path: str, *, accept: str | None = None, auth: bool = True) -> tuple[int, bytes, dict]:
        import base64

        headers = {"Accept": accept} if accept else {}
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(f"http://{self.address}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, b"", dict(err.headers or {})
        except OSError:  # nothing listens
            return 0, b"", {}

    def anonymous_status(self) -> int:
        """The status of an anonymous `GET /v2/` (401 while the registry wants a password)."""
        return self._get("/v2/", auth=False)[0]

    def tags(self, repo: str) -> list[str]:
        """The tags of `repo` (without the registry address); [] when it does not exist."""
        status, body, _ = self._get(f"/v2/{repo}/tags/list")
        if status == 404:
            return []
        assert status == 200, f"tags of {repo}: HTTP {status}"
        return json.loads(body).get("tags") or []

    def manifest(self, repo: str, reference: str) -> tuple[dict, str]:
        """The manifest or index at repo:reference as JSON, and its digest (Docker-Content-Digest)."""
        accept = ", ".join(
            (
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
        )
        status, body, headers = self._get(f"/v2/{repo}/manifests/{reference}", accept=accept)
        assert status == 200, f"manifest {repo}:{reference}: HTTP {status}"
        return json.loads(body), headers.get("Docker-Content-Digest", "")

    def catalog(self) -> list[str]:
        status, body, _ = self._get("/v2/_catalog?n=1000")
        assert status == 200, f"catalog: HTTP {status}"
        return json.loads(body).get("repositories") or []


@pytest.fixture(scope="session")
def auth_registry(lab) -> AuthRegistry:
    """The password registry; skips (fails when CI=true) when it is not up or wants no password."""
    facts = _facts()
    address = facts.get("FARM_LAB_AUTH_REGISTRY") or "127.0.0.1:5001"
    found = AuthRegistry(address, facts.get("FARM_LAB_AUTH_USER", ""), facts.get("FARM_LAB_AUTH_PASSWORD", ""))
    status = found.anonymous_status() if found.password else 0
    if status != 401 or found._get("/v2/")[0] != 200:
        message = (
            f"the lab's password registry does not answer as it should on {address} "
            f"(anonymous GET /v2/: {status or 'no password known'}; run `lab/lab.sh up auth-registry`)"
        )
        if IN_CI:
            pytest.fail(message + " [CI=true: integration tests must run]", pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture
def sshd(lab, tmp_path):
    """Start private sshds: `sshd(socket_path)` -> a started `private_sshd.Sshd`; all stopped after the test."""
    from private_sshd import Sshd

    # The client trusts a private sshd through the lab's known-hosts line for any port of
    # 127.0.0.1; a lab whose sshd part was set up by an older lab.sh lacks it: `up sshd` is
    # idempotent (the running sshd is left alone) and writes it.
    known = lab.state / "ssh" / "known_hosts"
    if "[127.0.0.1]:* " not in known.read_text():
        subprocess.run(["bash", str(LAB_SH), "up", "sshd"], capture_output=True, timeout=120, check=True)
    started: list[Sshd] = []

    def make(socket_path: str) -> Sshd:
        d = Sshd(lab, socket_path, tmp_path / f"sshd-{len(started)}")
        started.append(d)
        d.start()
        return d

    yield make
    for d in started:
        d.stop()
