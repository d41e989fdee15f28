#!/bin/sh
# Each module's detail/ is private to it: a header under include/skyvol/M/ may include
# skyvol/M/detail/... and the shared skyvol/detail/..., never skyvol/N/detail/... of another
# module N. The top-level volume.hpp and file.hpp are the fs module's public face.
cd "$(dirname "$0")/../include" || exit 2
status=0
for header in $(find skyvol -name '*.hpp'); do
  case "$header" in
    skyvol/volume.hpp | skyvol/file.hpp) module=fs ;;
    skyvol/*/*) module=${header#skyvol/}; module=${module%%/*} ;;
    *) module= ;;
  esac
  for used in $(sed -n 's|^#include <skyvol/\([a-z_0-9]*\)/detail/.*|\1|p' "$header"); do
    if [ "$used" != "$module" ]; then
      echo "$header includes $used/detail/ (private to $used)"
      status=1
    fi
  done
done
exit $status
