#ifndef SKYVOL_SKYVOL_HPP
#define SKYVOL_SKYVOL_HPP

/// @file
/// Everything in skyvol that needs no FUSE: errors, the store concept, the stores and volumes.
/// The FUSE adaptor has its own header and CMake target (`skyvol::fuse`).

#include <skyvol/error.hpp>
#include <skyvol/version.hpp>

#include <skyvol/store/concepts.hpp>
#include <skyvol/store/key.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/store/object_info.hpp>

#include <skyvol/file.hpp>
#include <skyvol/mode.hpp>
#include <skyvol/volume.hpp>

#endif
