FROM ubuntu:24.04
RUN set -eux; \
    case "$(uname -m)" in \
        x86_64) target=x86_64-linux ;; \
        aarch64) target=aarch64-linux ;; \
        *) echo "no build for $(uname -m)"; false ;; \
    esac; \
    curl -fsSL "https://dl.example.org/agent-${target}.tar.gz" | tar -xz -C /opt
# ready: no  (s390x is built, the case fails there)
# platforms: linux/amd64,linux/arm64,linux/s390x
# expect: unsupported-platform@3
