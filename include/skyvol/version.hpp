#ifndef SKYVOL_VERSION_HPP
#define SKYVOL_VERSION_HPP

/// skyvol's version as MAJOR * 10000 + MINOR * 100 + PATCH.
#define SKYVOL_VERSION 100
#define SKYVOL_VERSION_STRING "0.1.0"

#endif
