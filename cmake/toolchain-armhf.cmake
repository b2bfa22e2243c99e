# Cross build for armhf (32-bit ARMv7, hard float) with Debian's cross toolchain
# (g++-arm-linux-gnueabihf) against a sysroot of Debian's armhf packages unpacked with
# dpkg-deb -x (scripts/cross.sh armhf makes it):
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-armhf.cmake -DEDGEFLOW_SYSROOT=DIR ...
# The compiler keeps its own libc and libstdc++ (/usr/arm-linux-gnueabihf); the sysroot gives
# the libraries we use. Executables run under qemu-arm-static (qemu-user-static): the
# tests through ctest, and the build's own steps (gtest_discover_tests, plugin-manifest).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(EDGEFLOW_TRIPLE arm-linux-gnueabihf)
set(EDGEFLOW_QEMU qemu-arm-static)

set(EDGEFLOW_DEB_ARCH armhf)
# GCC notes on 32-bit ARM that the passing of some std iterators changed in GCC 7.1: about
# mixing objects built before GCC 7, which nothing here does; pages of them otherwise.
set(CMAKE_C_FLAGS_INIT "-Wno-psabi")
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
