"""buildkit-farm: declarative multi-architecture builds on a farm of Buildx nodes."""

__version__ = "0.1.0"
