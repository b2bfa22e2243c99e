#!/usr/bin/env bash
# Installs what is missing, builds, and runs the weather-station demo: two simulated edge
# devices aggregate one-minute windows, the cloud prints them. Ctrl-C stops it cleanly.
source "$(dirname "$0")/common.sh"
install_missing
build -DBUILD_TESTING=OFF
exec "$BUILD/cli/edgeflow" run "$ROOT/pipelines/weather-station.yaml" --for "${1:-30s}"
