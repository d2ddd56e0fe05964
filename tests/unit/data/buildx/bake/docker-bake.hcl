# The bake file lab/record-buildx-outputs.sh prints with each buildx: every key farm reads,
# in both of buildx's shapes (strings before 0.20, objects since), and keys farm refuses.
variable "REGISTRY" { default = "127.0.0.1:5000" }

group "default" { targets = ["carried"] }

target "carried" {
  context    = "."
  dockerfile = "Dockerfile"
  platforms  = ["linux/amd64", "linux/arm64"]
  tags       = ["${REGISTRY}/record/carried:1"]
  args       = { VERSION = "1" }
  labels     = { "org.opencontainers.image.title" = "carried" }
  target     = "final"
  cache-from = ["type=registry,ref=${REGISTRY}/record/cache:carried"]
  cache-to   = ["type=registry,ref=${REGISTRY}/record/cache:carried,mode=max"]
  secret     = ["id=npm,env=NPM_TOKEN", "id=key,src=key.txt"]
  ssh        = ["default=id_record"]
  attest     = ["type=provenance", "type=sbom,disabled=true"]
  output     = ["type=registry"]
}

target "refused" {
  inherits     = ["carried"]
  attest       = ["type=provenance,mode=max"]
  output       = ["type=docker"]
  pull         = true
  no-cache     = true
  network      = "host"
  extra-hosts  = { "example" = "10.0.0.1" }
  shm-size     = "128m"
  ulimits      = ["nofile=1024:1024"]
  annotations  = ["index:org.opencontainers.image.vendor=farm"]
  call         = "check"
  entitlements = ["network.host"]
}
