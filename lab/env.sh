# Source me (`. lab/env.sh`): exports the lab's facts for tests and for the buildx client.
# The values come from `lab/lab.sh env`; FARM_LAB_SSL_CERT_DIR is what to set SSL_CERT_DIR
# to when the buildx client must trust the TLS registry (127.0.0.1:5443).
eval "$("$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lab.sh" env)"
