#ifndef SKYVOL_FUSE_DETAIL_FUSE_API_HPP
#define SKYVOL_FUSE_DETAIL_FUSE_API_HPP

/// @file
/// The one place that includes libfuse3's low-level API.

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#endif
