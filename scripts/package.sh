#!/usr/bin/env bash
# Builds the Debian packages of this machine's architecture into build/: edgeflow and
# edgeflow-vision (the OpenCV plugin). Install with: sudo apt install ./build/edgeflow*.deb
# For arm64, scripts/cross.sh arm64 builds them in build-arm64/.
source "$(dirname "$0")/common.sh"
PACKAGES+=(dpkg-dev file)  # dpkg-shlibdeps for Depends; file for stripping
install_missing
build -DBUILD_TESTING=OFF
cd "$BUILD"
cpack -G DEB
ls -l "$BUILD"/*.deb
