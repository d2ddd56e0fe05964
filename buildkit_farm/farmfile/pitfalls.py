"""Setup mistakes that are valid farm files but fail later: `farm validate` warns about them.

Pure: reads the loaded config only. Each warning says what will go wrong and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_farm.causes import NETWORK_HOST, is_loopback_registry

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import FarmConfig


def warnings(config: FarmConfig) -> list[str]:
    """Every pitfall in `config`, as one line each."""
    found: list[str] = []
    if config.builder.driver == "docker-container":
        isolated = [s.name for s in config.node_settings() if dict(s.driver_opts).get("network") != "host"]
        for target in config.targets if isolated else ():
            loopback = [tag for tag in target.tags if is_loopback_registry(tag)]
            if loopback:
                found.append(
                    f'target "{target.name}" pushes to {loopback[0].partition("/")[0]}, but BuildKit on node(s) '
                    f"{', '.join(isolated)} runs in a container whose loopback is its own, not this machine's: "
                    f"the push would fail as if the registry were down; set {NETWORK_HOST}"
                )
    return found
