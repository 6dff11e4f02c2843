#!/usr/bin/env bash
# Builds the Go test clients (tests/clients_go.rs) into tests/go/bin:
# franz (franz-go: kgo + kadm) and sarama (IBM/sarama), at the versions
# pinned in go.mod/go.sum, downloaded through the Go module proxy. Go's
# build cache makes a second run fast.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v go >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        # Debian's Go fetches the toolchain go.mod asks for (GOTOOLCHAIN=auto).
        apt-get update -qq && apt-get install -y -qq golang-go >/dev/null
    else
        echo "Go is needed (https://go.dev/dl, or apt-get install golang-go)" >&2
        exit 1
    fi
fi
# -mod=readonly: build exactly what go.sum pins, never edit go.mod.
go build -mod=readonly -o bin/ ./cmd/franz ./cmd/sarama
