#!/usr/bin/env bash
# The whole test suite of weir, as a new user (and CI) runs it:
#   ./scripts/test.sh
# Installs the Kafka clients the tests drive, each through its own package
# manager (tests/<client>/install.sh: Maven, the Go module proxy, npm, PyPI,
# apt), then runs every unit and integration test. Integration tests start
# the real `weir` binary on free loopback ports and drive it with real Kafka
# clients. With WEIR_TEST_BROKER=kafka the client tests run against Apache
# Kafka instead (scripts/kafka-reference.sh), to show they are right about it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs), then run this again" >&2
    exit 1
fi
for install in tests/*/install.sh; do
    echo "installing test clients: $install" >&2
    "$install"
done

cargo test --release --workspace --features weir/fault-injection "$@"
