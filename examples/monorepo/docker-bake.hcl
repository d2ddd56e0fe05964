# A monorepo's bake file, as a team would already have it: `docker buildx bake` builds it
# on one builder; `farm build -f farm.toml` builds the same targets across the farm.

variable "REGISTRY" { default = "127.0.0.1:5000/monorepo" }
variable "VERSION" { default = "dev" }

group "default" {
  targets = ["api", "worker", "tools"]
}

# What every image shares: the base, the platforms, the labels.
target "_base" {
  platforms = ["linux/amd64", "linux/arm64"]
  args = { BASE = "127.0.0.1:5000/base:latest" }
  labels = { "org.opencontainers.image.source" = "examples/monorepo" }
}

target "api" {
  inherits = ["_base"]
  context = "services/api"
  tags = ["${REGISTRY}/api:${VERSION}"]
}

target "worker" {
  inherits = ["_base"]
  context = "services/worker"
  tags = ["${REGISTRY}/worker:${VERSION}"]
}

# One image per tool, from one Dockerfile.
target "tools" {
  name = "tool-${tool}"
  matrix = { tool = ["lint", "migrate"] }
  inherits = ["_base"]
  context = "services/tools"
  args = { TOOL = tool }
  tags = ["${REGISTRY}/tool-${tool}:${VERSION}"]
}
