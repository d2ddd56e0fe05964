"""A failed build's hint names the real cause: a loopback registry BuildKit's container cannot reach."""

from __future__ import annotations

from farms import ONE_NODE

from buildkit_farm.builds.run import with_causes
from buildkit_farm.errors import BuildError
from buildkit_farm.farmfile.load import load_config_text

FARM = ONE_NODE + "{opts}\n"
LOG = (
    'target "app": build failed for linux/amd64 on node "node1" (buildx exit 1):\n'
    '  | ERROR: failed to push 127.0.0.1:5000/app: failed to do request: Head "http://127.0.0.1:5000/v2/app/blobs/x": '
    "dial tcp 127.0.0.1:5000: connect: connection refused"
)
GENERIC = "the registry did not answer; start it or fix the tag's host:port. nothing was tagged"


def test_a_loopback_registry_without_host_network_is_named_as_the_cause():
    config = load_config_text(FARM.format(opts=""))
    err = BuildError(LOG, hint=GENERIC)
    with_causes({"app": err}, config.desired)
    assert 'network = "host"' in err.hint and "own loopback" in err.hint
    assert err.hint.endswith("nothing was tagged")


def test_with_host_network_the_registry_really_is_down():
    config = load_config_text(FARM.format(opts='driver_opts = { network = "host" }'))
    err = BuildError(LOG, hint=GENERIC)
    with_causes({"app": err}, config.desired)
    assert "did not answer" in err.hint and "own loopback" not in err.hint
