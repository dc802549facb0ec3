# Third-party packages, all from Debian (scripts/setup installs them).
find_package(xtl REQUIRED)
find_package(xsimd REQUIRED)
find_package(xtensor REQUIRED)
find_package(xtensor-blas REQUIRED)
find_package(BLAS REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
# libzip (libzip-dev) writes and reads the .npz container; through pkg-config,
# which every libzip install has.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
