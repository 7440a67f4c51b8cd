// The compiled parts of Asio and Beast, built once here (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are set for ferry_httpd's sources): server.cc then compiles only what it uses,
// and this file, which never changes, stays in ccache.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
