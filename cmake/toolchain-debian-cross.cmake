# The part of the cross toolchain files shared by every architecture: the including file sets
# CMAKE_SYSTEM_PROCESSOR, EDGEFLOW_TRIPLE (the GNU triple), EDGEFLOW_QEMU (qemu-user's
# program) and EDGEFLOW_DEB_ARCH (Debian's name) first.
if(NOT EDGEFLOW_SYSROOT)
  set(EDGEFLOW_SYSROOT "$ENV{EDGEFLOW_SYSROOT}")
endif()
if(NOT EDGEFLOW_SYSROOT OR NOT IS_DIRECTORY "${EDGEFLOW_SYSROOT}/usr/lib/${EDGEFLOW_TRIPLE}")
  message(FATAL_ERROR "EDGEFLOW_SYSROOT (${EDGEFLOW_SYSROOT}) is not an ${EDGEFLOW_DEB_ARCH} "
                      "sysroot: scripts/cross.sh ${EDGEFLOW_DEB_ARCH} makes one")
endif()
# try_compile projects read this file again: hand them the sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEFLOW_SYSROOT)

set(CMAKE_C_COMPILER ${EDGEFLOW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EDGEFLOW_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGEFLOW_TRIPLE})  # lib/TRIPLE/cmake, pkgconfig

# Libraries, headers and CMake packages from the sysroot only; programs from the host.
set(CMAKE_FIND_ROOT_PATH "${EDGEFLOW_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config: the sysroot's .pc files, their paths under the sysroot (-I/usr/include too,
# which pkg-config would otherwise drop as a system directory of the host).
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${EDGEFLOW_SYSROOT}/usr/lib/${EDGEFLOW_TRIPLE}/pkgconfig:${EDGEFLOW_SYSROOT}/usr/lib/pkgconfig:${EDGEFLOW_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${EDGEFLOW_SYSROOT}")
set(ENV{PKG_CONFIG_ALLOW_SYSTEM_CFLAGS} 1)

# Headers a package finds by plain #include <...> (its CMake config may name none).
foreach(lang C CXX)
  set(CMAKE_${lang}_STANDARD_INCLUDE_DIRECTORIES
      "${EDGEFLOW_SYSROOT}/usr/include/${EDGEFLOW_TRIPLE}" "${EDGEFLOW_SYSROOT}/usr/include")
endforeach()
# The libraries' own dependencies (libssl of Paho, libsodium of ZeroMQ...) at link time.
foreach(kind EXE SHARED MODULE)
  string(APPEND CMAKE_${kind}_LINKER_FLAGS_INIT
    " -Wl,-rpath-link,${EDGEFLOW_SYSROOT}/usr/lib/${EDGEFLOW_TRIPLE}"
    " -Wl,-rpath-link,${EDGEFLOW_SYSROOT}/lib/${EDGEFLOW_TRIPLE}")
endforeach()

# Built programs run under qemu with the sysroot as their root (its loader and libraries).
set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGEFLOW_QEMU} -L "${EDGEFLOW_SYSROOT}")
