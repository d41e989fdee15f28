// Asio (with SSL) and Beast in separate-compilation mode: their bodies are built here once.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
