#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test (unit, integration, e2e).
# Pass ctest options to narrow it: scripts/test.sh -L unit
source "$(dirname "$0")/common.sh"
PACKAGES+=(chromium curl)  # the dashboard's test: a headless browser, an HTTP digest client
install_missing
build -DBUILD_TESTING=ON
cd "$BUILD"
ctest --output-on-failure -j2 --timeout 600 "$@"
