// Network addresses, written once for the agent, the collector and the platform's transport: what counts as this
// machine's loopback, and "host:port" as listen options give it. Built on inet_pton, never on string prefixes (a
// prefix test takes the host name 127.example.com for a loopback address).
#ifndef FERRY_LIB_NET_ADDRESS_H_
#define FERRY_LIB_NET_ADDRESS_H_

#include <string>
#include <string_view>
#include <vector>

namespace ferry::net {

// Whether a host that Ferry is told to listen on or connect to is this machine's loopback: the name localhost (any
// case), an IPv4 literal in 127.0.0.0/8 or the IPv6 literal ::1 (in any of its spellings), each with or without one
// trailing dot (the absolute form). Names are never resolved: 127.example.com, localhost.example.com and
// 0x7f000001 are not loopback. An IPv6 literal comes without brackets (SplitHostPort removes them). An IPv4-mapped
// literal (::ffff:127.0.0.1) is not a loopback host: it is what a peer address looks like, not what a
// configuration names.
bool IsLoopbackHost(std::string_view host);

// Whether a peer address as the socket layer reports it (numeric, e.g. cpp-httplib's remote_addr) is loopback:
// 127.0.0.0/8, ::1, or an IPv4-mapped ::ffff:127.x.y.z (an IPv4 peer of a dual-stack socket). Names and anything
// inet_pton does not read are not loopback.
bool IsLoopbackPeer(std::string_view address);

// Splits "host:port" as listen options give it: "127.0.0.1:8443", "localhost:0", "[::1]:8443". The port is 0-65535
// in decimal digits only; the host is not empty; an IPv6 literal must be bracketed ("::1:80" is refused as
// ambiguous) and comes back without its brackets. false (outputs untouched) for anything else.
bool SplitHostPort(std::string_view hostport, std::string* host, int* port);

// The inverse: "host:port", bracketing a host that holds a ':' (an IPv6 literal).
std::string JoinHostPort(std::string_view host, int port);

// Whether the Host header of a request to a local listener names this machine, the defence against DNS rebinding (a
// page on evil.example whose name was made to resolve to 127.0.0.1 still sends "Host: evil.example:8787"). Allowed:
// the loopback hosts of IsLoopbackHost (localhost, 127.0.0.0/8, ::1, which comes bracketed: "[::1]") and the names
// in `names` (compared without case; one trailing dot ignored on either side; an IPv6 literal given with or without
// brackets), each with or without ":port" (1-5 decimal digits, at most 65535). Refused: an empty header, an
// unbracketed IPv6 literal, blanks, control characters, a user-info part ("a@b") and anything else malformed.
// Pure: no lookups, no I/O; both HTTP servers (the agent's, lib/httpd) call it before any route runs.
bool IsAllowedHost(std::string_view host_header, const std::vector<std::string>& names);

// The form IsAllowedHost compares a configured name in: lowercase, without brackets and without one trailing dot;
// "" when `name` is not a host name or address literal (empty, a port, a path, '*', blanks or control characters).
std::string NormalizeHostName(std::string_view name);

}  // namespace ferry::net

#endif  // FERRY_LIB_NET_ADDRESS_H_
