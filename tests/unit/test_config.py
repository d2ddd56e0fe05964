"""The farm file model: what a valid file becomes, and the rules that refuse the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_farm.errors import ConfigError, UsageError
from buildkit_farm.farmfile.desired import NodeSettings
from buildkit_farm.farmfile.load import json_schema, load_config, load_config_text
from buildkit_farm.farmfile.model import FarmConfig

BUILDER = '[builder]\nname = "farm"\n'
NODE1 = '[[node]]\nname = "node1"\nendpoint = "unix:///var/run/docker.sock"\nplatforms = ["linux/amd64"]\n'
NODE2 = '[[node]]\nname = "node2"\nendpoint = "ssh://farm@127.0.0.1:2222"\nplatforms = ["aarch64", "armhf"]\n'


@pytest.fixture()
def farm_dir(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app" / "Dockerfile.linux-amd64").write_text("FROM scratch\n")
    (tmp_path / "app" / "Dockerfile.linux-arm64").write_text("FROM scratch\n")
    return tmp_path


def load(text: str, base: Path) -> FarmConfig:
    (base / "multiarch.toml").write_text(text)
    return load_config(base / "multiarch.toml")


def issues(text: str, base: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(text, base)
    return [(i.path, i.message) for i in caught.value.issues]


def test_the_example_file_validates():
    config = load_config(Path(__file__).parents[2] / "multiarch.toml.example")
    assert [n.name for n in config.nodes] == ["node1", "node2", "edge"]
    assert config.pinned_platforms() == {
        "linux/amd64": "node1",
        "linux/arm64": "node2",
        "linux/arm/v7": "node2",
        "linux/386": "edge",
    }


def test_aliases_are_normalised_everywhere(farm_dir):
    config = load(
        BUILDER
        + NODE1
        + NODE2
        + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["x86_64", "armv8", "arm32v7"]\n'
        'tags = ["127.0.0.1:5000/app:{version}"]\n',
        farm_dir,
    )
    assert config.nodes[1].platforms == ("linux/arm64", "linux/arm/v7")
    assert config.targets[0].platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert config.targets[0].tags == ("127.0.0.1:5000/app:{version}",)


def test_paths_resolve_against_the_farm_files_folder(farm_dir, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load(
        BUILDER
        + NODE1
        + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\ntags = ["r/app:1"]\n',
        farm_dir,
    )
    target = config.targets[0]
    assert target.context == farm_dir / "app"
    assert target.dockerfile == farm_dir / "app" / "Dockerfile"  # the default
    assert config.file == farm_dir / "multiarch.toml"


def test_dockerfiles_keys_imply_the_platforms(farm_dir):
    config = load(
        BUILDER + NODE1 + NODE2 + '[[target]]\nname = "app"\ncontext = "app"\ntags = ["r/app:1"]\nvariant_tags = true\n'
        'dockerfiles = { "linux/amd64" = "app/Dockerfile.linux-amd64", "aarch64" = "app/Dockerfile.linux-arm64" }\n',
        farm_dir,
    )
    target = config.targets[0]
    assert target.platforms == ("linux/amd64", "linux/arm64")
    assert target.dockerfiles == {
        "linux/amd64": farm_dir / "app" / "Dockerfile.linux-amd64",
        "linux/arm64": farm_dir / "app" / "Dockerfile.linux-arm64",
    }
    assert target.dockerfile is None


def test_a_target_of_sources_only_is_a_manifest_target(farm_dir):
    config = load(
        BUILDER
        + NODE1
        + '[[target]]\nname = "win"\nsources = ["r/app:windows-amd64", "r/app@sha256:'
        + "a" * 64
        + '"]\ntags = ["r/app:1"]\n',
        farm_dir,
    )
    target = config.target("win")
    assert target.is_manifest_only
    assert target.platforms == () and target.dockerfile is None


def test_node_settings_merge_builder_defaults_with_node_overrides(farm_dir):
    (farm_dir / "buildkitd.toml").write_text("debug = true\n")
    config = load(
        '[builder]\nname = "farm"\ndriver_opts = { network = "host", memory = "2g" }\n'
        'buildkitd_flags = "--allow-insecure-entitlement network.host"\nbuildkitd_config = "buildkitd.toml"\n'
        'buildkit_image = "127.0.0.1:5000/buildkit:v0.13"\n'
        + NODE1
        + '[[node]]\nname = "node2"\nendpoint = "ssh://farm@127.0.0.1:2222"\nplatforms = ["linux/arm64"]\n'
        'driver_opts = { memory = "1g", "default-load" = true }\nbuildkitd_flags = "--debug"\n'
        'buildkitd_config = { registry = { "127.0.0.1:5000" = { http = true } } }\n'
        '[[node]]\nname = "edge"\ncontext = "my-context"\n',
        farm_dir,
    )
    node1, node2, edge = config.node_settings()
    assert node1 == NodeSettings(
        name="node1",
        context="node1",
        endpoint="unix:///var/run/docker.sock",
        tls=None,
        owns_context=True,
        platforms=("linux/amd64",),
        driver="docker-container",
        driver_opts=(("image", "127.0.0.1:5000/buildkit:v0.13"), ("memory", "2g"), ("network", "host")),
        buildkitd_flags="--allow-insecure-entitlement network.host",
        buildkitd_config="debug = true\n",
    )
    assert node2.driver_opts == (
        ("default-load", "true"),
        ("image", "127.0.0.1:5000/buildkit:v0.13"),
        ("memory", "1g"),
        ("network", "host"),
    )
    assert node2.buildkitd_flags == "--debug"
    assert node2.buildkitd_config == '[registry."127.0.0.1:5000"]\nhttp = true\n'
    assert (edge.context, edge.endpoint, edge.owns_context, edge.platforms) == ("my-context", None, False, ())


def test_tcp_node_with_tls(farm_dir):
    for name in ("ca", "cert", "key"):
        (farm_dir / f"{name}.pem").write_text("placeholder")
    config = load(
        BUILDER + '[[node]]\nname = "node3"\nendpoint = "tcp://node3.example:2376"\n'
        'tls = { ca = "ca.pem", cert = "cert.pem", key = "key.pem" }\n',
        farm_dir,
    )
    (settings,) = config.node_settings()
    assert settings.tls.ca == farm_dir / "ca.pem" and settings.tls.key == farm_dir / "key.pem"
    assert settings.owns_context and settings.endpoint == "tcp://node3.example:2376"


def test_kubernetes_nodes_become_driver_opts(farm_dir):
    config = load(
        '[builder]\nname = "kube"\ndriver = "kubernetes"\ndriver_opts = { namespace = "buildkit" }\n'
        '[[node]]\nname = "kube-arm64"\nplatforms = ["linux/arm64"]\nreplicas = 2\n'
        'nodeselector = { "kubernetes.io/arch" = "arm64" }\n',
        farm_dir,
    )
    (settings,) = config.node_settings()
    assert settings.driver == "kubernetes"
    assert dict(settings.driver_opts) == {
        "namespace": "buildkit",
        "nodeselector": "kubernetes.io/arch=arm64",
        "replicas": "2",
    }
    assert (settings.context, settings.endpoint, settings.owns_context) == ("", None, False)


def test_remote_nodes_pass_the_buildkitd_address_and_certificates(farm_dir):
    for name in ("ca", "cert", "key"):
        (farm_dir / f"{name}.pem").write_text("placeholder")
    config = load(
        '[builder]\nname = "farm"\ndriver = "remote"\n'
        '[[node]]\nname = "bk1"\nendpoint = "tcp://bk1.example:1234"\nplatforms = ["linux/s390x"]\n'
        'tls = { ca = "ca.pem", cert = "cert.pem", key = "key.pem" }\n',
        farm_dir,
    )
    (settings,) = config.node_settings()
    assert settings.context == "tcp://bk1.example:1234" and not settings.owns_context
    assert dict(settings.driver_opts) == {
        "cacert": str(farm_dir / "ca.pem"),
        "cert": str(farm_dir / "cert.pem"),
        "key": str(farm_dir / "key.pem"),
    }


def test_every_issue_is_reported_at_once(farm_dir):
    found = issues(
        '[builder]\nname = "default"\n'
        '[[node]]\nname = "node1"\nendpoint = "unix:///var/run/docker.sock"\nplatforms = ["armv9"]\n'
        '[[node]]\nname = "node2"\nendpoint = "unix:///var/run/docker.sock"\n'
        '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/riscv64"]\ntags = ["R/App"]\n'
        'dockerfile = "nope"\nargs = { GITHUB_TOKEN = "x" }\n',
        farm_dir,
    )
    paths = [path for path, _ in found]
    assert paths == [
        "builder.name",
        'node "node1".platforms[0]',
        'target "app".tags[0]',
        'node "node2".endpoint',
        'target "app".dockerfile',
        'target "app".args.GITHUB_TOKEN',
    ]


def test_a_bad_key_does_not_hide_the_rules_on_the_rest_of_its_table(farm_dir):
    found = issues(
        BUILDER + NODE1 + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64", "linux/riscv64"]\n'
        'tags = ["R/App"]\ndockerfile = "nope"\n',
        farm_dir,
    )
    assert ('target "app".platforms[1]', "linux/riscv64 is pinned to no node") in found
    assert any(path == 'target "app".dockerfile' for path, _ in found)


def test_a_dropped_key_does_not_cause_false_alarms(farm_dir):
    # platforms is wrong, so "platforms is required" or "pinned to no node" would be noise
    found = issues(
        BUILDER + NODE1 + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["armv9"]\ntags = ["r/app:1"]\n',
        farm_dir,
    )
    assert [path for path, _ in found] == ['target "app".platforms[0]']


def test_a_typo_in_one_platform_does_not_hide_a_pin_listed_twice(farm_dir):
    found = issues(
        BUILDER
        + NODE1.replace('["linux/amd64"]', '["armv9", "linux/amd64", "x86_64"]')
        + '[[node]]\nname = "node2"\nendpoint = "ssh://farm@h2"\nplatforms = ["amd64"]\n',
        farm_dir,
    )
    # indices are the file's own, though the bad item is left out of the checks
    assert found == [
        ('node "node1".platforms[0]', found[0][1]),
        ('node "node1".platforms[2]', "linux/amd64 is listed twice"),
    ]  # node2's pin of amd64 is no mistake: node1 and node2 are amd64's pool
    assert found[0][1].startswith('unknown platform "armv9"')


def test_a_typo_in_a_pin_does_not_report_its_platform_unserved(farm_dir):
    # "aarch46" was meant to pin linux/arm64: "pinned to no node" would only repeat the typo
    found = issues(
        BUILDER
        + NODE1.replace('["linux/amd64"]', '["linux/amd64", "aarch46"]')
        + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64", "linux/arm64"]\ntags = ["r/app:1"]\n',
        farm_dir,
    )
    assert [path for path, _ in found] == ['node "node1".platforms[1]']


def test_the_good_items_of_a_target_array_are_still_checked(farm_dir):
    found = issues(
        BUILDER
        + NODE1
        + '[[target]]\nname = "a"\ncontext = "app"\nplatforms = ["linux/amd64"]\ntags = ["r/shared:1"]\n'
        '[[target]]\nname = "b"\ncontext = "app"\nplatforms = ["armv9", "linux/amd64", "linux/riscv64"]\n'
        'tags = ["Bad Tag", "r/shared:1"]\n',
        farm_dir,
    )
    paths = [path for path, _ in found]
    assert ('target "b".tags[1]', '"r/shared:1" is also a tag of target "a"') in found
    assert ('target "b".platforms[2]', "linux/riscv64 is pinned to no node") in found
    assert paths.count('target "b".platforms[0]') == 1 and 'target "b".tags[0]' in paths


def test_allow_emulation_serves_an_unpinned_platform(farm_dir):
    config = load(
        BUILDER + NODE1 + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64", "linux/riscv64"]\n'
        'allow_emulation = ["riscv64"]\ntags = ["r/app:1"]\n',
        farm_dir,
    )
    assert config.targets[0].allow_emulation == ("linux/riscv64",)
    assert config.summary()["targets"][0]["platforms"] == {"linux/amd64": "node1", "linux/riscv64": "emulated"}


def test_secrets_by_reference(farm_dir):
    (farm_dir / "npmrc").write_text("placeholder")
    config = load(
        BUILDER + NODE1 + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\ntags = ["r/app:1"]\n'
        'secrets = [{ id = "npm", env = "NPM_TOKEN" }, { id = "npmrc", src = "npmrc" }]\n',
        farm_dir,
    )
    env, src = config.targets[0].secrets
    assert (env.id, env.env, env.src) == ("npm", "NPM_TOKEN", None)
    assert src.src == farm_dir / "npmrc"


def test_a_dockerfile_named_relative_to_the_context_gets_a_hint(farm_dir):
    with pytest.raises(ConfigError) as caught:
        load(
            BUILDER
            + NODE1
            + '[[target]]\nname = "app"\ncontext = "app"\ndockerfile = "Dockerfile.linux-amd64"\nplatforms = ["linux/amd64"]\ntags = ["r/app:1"]\n',
            farm_dir,
        )
    (issue,) = caught.value.issues
    assert issue.path == 'target "app".dockerfile'
    assert f"did you mean {farm_dir / 'app' / 'Dockerfile.linux-amd64'}" in issue.hint


def test_credential_values_are_never_echoed(farm_dir):
    with pytest.raises(ConfigError) as caught:
        load(BUILDER + NODE1.replace("platforms", 'password = "hunter2-secret"\nplatforms'), farm_dir)
    assert "hunter2-secret" not in caught.value.message


def test_missing_file_points_to_farm_init(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "multiarch.toml")
    (issue,) = caught.value.issues
    assert issue.message == "file not found" and "farm init" in issue.hint


def test_a_folder_is_not_a_farm_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_non_utf8_file(tmp_path):
    (tmp_path / "f.toml").write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "f.toml")


def test_syntax_error_carries_its_line(tmp_path):
    (tmp_path / "f.toml").write_text('[builder]\nname = "farm"\n\n[[node]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "f.toml")
    (issue,) = caught.value.issues
    assert issue.line == 4
    assert issue.render("f.toml").startswith("f.toml:4: TOML syntax error")


def test_lookups_by_name(farm_dir):
    config = load(
        BUILDER
        + NODE1
        + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\ntags = ["r/app:1"]\n',
        farm_dir,
    )
    assert config.node("node1").endpoint == "unix:///var/run/docker.sock"
    assert config.target("app").name == "app"
    with pytest.raises(UsageError, match='no target "nope"') as caught:
        config.target("nope")
    assert caught.value.exit_code == 2 and "app" in caught.value.hint
    with pytest.raises(UsageError, match='no node "nope"'):
        config.node("nope")


def test_models_are_frozen(farm_dir):
    config = load(BUILDER + NODE1, farm_dir)
    with pytest.raises(Exception):
        config.builder.name = "other"  # type: ignore[misc]


def test_load_config_text_resolves_against_base(farm_dir):
    config = load_config_text(
        BUILDER
        + NODE1
        + '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\ntags = ["r/app:1"]\n',
        base=farm_dir,
    )
    assert config.targets[0].context == farm_dir / "app"


def test_schema_describes_the_files_keys():
    schema = json_schema()
    assert set(schema["properties"]) == {"builder", "node", "target", "bake"}
    assert schema["required"] == ["builder"]
    node = schema["$defs"]["NodeConfig"]
    assert node["additionalProperties"] is False
    assert {"name", "endpoint", "context", "platforms", "tls", "nodeselector", "replicas"} <= set(node["properties"])
    assert {"dockerfiles", "sources", "variant_tags", "allow_emulation", "secrets"} <= set(
        schema["$defs"]["TargetConfig"]["properties"]
    )
    text = json.dumps(schema)  # serialisable as is
    assert '"null"' not in text  # TOML has no null: optional keys are simply absent
    assert node["properties"]["replicas"]["type"] == "integer"


def test_summary_is_plain_json(farm_dir):
    config = load(BUILDER + NODE1 + NODE2, farm_dir)
    data = json.loads(json.dumps(config.summary()))
    assert data["nodes"][1] == {
        "name": "node2",
        "where": "ssh://farm@127.0.0.1:2222",
        "platforms": ["linux/arm64", "linux/arm/v7"],
    }
    assert "node2" in config.describe() and "linux/arm/v7" in config.describe()


def test_credentials_are_reported_once_in_file_order_even_under_a_repeated_name(farm_dir):
    found = issues(
        BUILDER
        + NODE1.replace("platforms", 'token = "a"\nplatforms')
        + '[[node]]\nname = "node1"\ncontext = "ctx"\npassword = "b"\n',
        farm_dir,
    )
    assert found == [
        ("node[1].name", 'node name "node1" is used twice (first at node[0])'),
        ('node "node1".token', "looks like a credential"),
        ("node[1].password", "looks like a credential"),
    ]


def test_a_buildkitd_config_is_read_once_at_load(farm_dir):
    # Planning reads no file: what it plans from was read when the file was loaded.
    (farm_dir / "buildkitd.toml").write_text("debug = true\n")
    config = load(BUILDER + 'buildkitd_config = "buildkitd.toml"\n' + NODE1, farm_dir)
    (farm_dir / "buildkitd.toml").unlink()
    assert config.node_settings()[0].buildkitd_config == "debug = true\n"
    assert config.desired.nodes[0].buildkitd_config == "debug = true\n"
