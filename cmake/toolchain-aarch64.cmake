# Cross build for arm64 with Debian's cross toolchain (g++-aarch64-linux-gnu) against a sysroot
# of Debian's arm64 packages unpacked with dpkg-deb -x (scripts/cross.sh arm64 makes it):
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DEDGEFLOW_SYSROOT=DIR ...
# The compiler keeps its own libc and libstdc++ (/usr/aarch64-linux-gnu); the sysroot gives
# the libraries we use. Executables run under qemu-aarch64-static (qemu-user-static): the
# tests through ctest, and the build's own steps (gtest_discover_tests, plugin-manifest).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(EDGEFLOW_TRIPLE aarch64-linux-gnu)
set(EDGEFLOW_QEMU qemu-aarch64-static)

set(EDGEFLOW_DEB_ARCH arm64)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
