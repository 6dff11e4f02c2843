#!/usr/bin/env bash
# Installs the Python Kafka clients the integration tests drive, from PyPI:
#   - tests/python/requirements.txt into python3's own site-packages
#     (kafka-python 3, confluent-kafka), and aiokafka (pinned below);
#   - kafka-python 2 (pinned below) into tests/python/.deps/kafka-python-2
#     with `pip install --target`: it is the same module (`kafka`) as
#     kafka-python 3, so the tests run it with PYTHONPATH pointing there.
# Idempotent, and quick once everything is installed (no network then).
# Run from anywhere: tests/python/install.sh
set -euo pipefail
cd "$(dirname "$0")"

# The versions tests/clients_python.rs expects (it checks them).
AIOKAFKA_VERSION=0.14.0
KAFKA_PYTHON_2_VERSION=2.3.3
KAFKA_PYTHON_2_DIR=.deps/kafka-python-2

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
    else
        echo "python3 with pip is needed (e.g. apt-get install python3-pip)" >&2
        exit 1
    fi
fi

# `python3 -m pip install ARGS...`, quiet; --break-system-packages only where
# pip knows it (Debian's managed Python).
pip_install() {
    local flags=(--quiet --disable-pip-version-check)
    if python3 -m pip install --help | grep -q -- --break-system-packages; then
        flags+=(--break-system-packages)
    fi
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install "${flags[@]}" "$@"
}

# True when `python3` (with PYTHONPATH=$3, if given) imports module $1 at
# version $2.
has_version() {
    PYTHONPATH="${3:-}" python3 -c "
import sys, $1
sys.exit(0 if $1.__version__ == '$2' else 1)" >/dev/null 2>&1
}

# True when every `name==version` pin given (and in requirements.txt) is the
# installed version: then pip (seconds, even with nothing to do) is skipped.
pins_installed() {
    python3 - "$@" <<'PYTHON' >/dev/null 2>&1
import sys, importlib.metadata as metadata
pins = [line.split("#")[0].strip() for line in open("requirements.txt")] + sys.argv[1:]
for pin in filter(None, pins):
    name, version = pin.split("==")
    if metadata.version(name) != version:
        sys.exit(1)
PYTHON
}

if ! pins_installed "aiokafka==${AIOKAFKA_VERSION}"; then
    pip_install -r requirements.txt "aiokafka==${AIOKAFKA_VERSION}"
fi

# `pip install --target` always reinstalls, so only when the version differs.
if ! has_version kafka "$KAFKA_PYTHON_2_VERSION" "$KAFKA_PYTHON_2_DIR"; then
    rm -rf "$KAFKA_PYTHON_2_DIR"
    mkdir -p .deps
    # The directory ignores itself: nothing under .deps is ever committed.
    echo '*' > .deps/.gitignore
    pip_install --no-deps --target "$KAFKA_PYTHON_2_DIR" \
        "kafka-python==${KAFKA_PYTHON_2_VERSION}"
    if ! has_version kafka "$KAFKA_PYTHON_2_VERSION" "$KAFKA_PYTHON_2_DIR"; then
        echo "kafka-python ${KAFKA_PYTHON_2_VERSION} did not install into tests/python/${KAFKA_PYTHON_2_DIR}" >&2
        exit 1
    fi
fi
