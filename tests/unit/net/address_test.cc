// lib/net: what counts as loopback (a host Ferry is told to use, a peer address the socket layer reports) and
// host:port, the one copy the agent, the collector and the platform's transport share.
#include "lib/net/address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::net {
namespace {

TEST(IsLoopbackHost, LoopbackNamesAndLiterals) {
  for (const char* host : {"localhost", "LOCALHOST", "LocalHost.", "127.0.0.1", "127.0.0.1.", "127.255.0.9",
                           "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "0::1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
}

TEST(IsLoopbackHost, NamesThatOnlyLookLoopbackAreNot) {
  for (const char* host : {"127.example.com",
                           "127.0.0.1.example.com",
                           "localhost.example.com",
                           "mylocalhost",
                           "127.0.0.1:80",
                           "[::1]",
                           "::ffff:127.0.0.1",
                           "::2",
                           "128.0.0.1",
                           "10.0.0.1",
                           "0.0.0.0",
                           "::",
                           "0x7f000001",
                           "2130706433",
                           "127.1",
                           "127.0.0.01",
                           " 127.0.0.1",
                           "127.0.0.1 ",
                           "localhost..",
                           "",
                           "."}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  EXPECT_FALSE(IsLoopbackHost(std::string("127.0.0.1\0x", 11)));
  EXPECT_FALSE(IsLoopbackHost(std::string(200, '1')));
}

TEST(IsLoopbackPeer, ReportedLoopbackAddressesIncludingIpv4Mapped) {
  for (const char* a : {"127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1", "::FFFF:127.200.1.1"}) {
    EXPECT_TRUE(IsLoopbackPeer(a)) << a;
  }
  for (const char* a : {"localhost", "127.example.com", "::ffff:10.0.0.1", "::ffff:128.0.0.1", "10.1.2.3",
                        "192.168.0.1", "::2", "fe80::1", "", "127.0.0.1%lo"}) {
    EXPECT_FALSE(IsLoopbackPeer(a)) << a;
  }
}

TEST(SplitHostPort, HostsPortsAndBracketedIpv6) {
  struct Case {
    const char* in;
    const char* host;
    int port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:8443", "127.0.0.1", 8443}, Case{"localhost:0", "localhost", 0}, Case{"[::1]:8787", "::1", 8787},
        Case{"[fe80::1%eth0]:80", "fe80::1%eth0", 80}, Case{"0.0.0.0:65535", "0.0.0.0", 65535},
        Case{"collector.example.com:443", "collector.example.com", 443}}) {
    std::string host = "unchanged";
    int port = -1;
    ASSERT_TRUE(SplitHostPort(c.in, &host, &port)) << c.in;
    EXPECT_EQ(host, c.host) << c.in;
    EXPECT_EQ(port, c.port) << c.in;
    EXPECT_EQ(JoinHostPort(host, port), c.in) << "JoinHostPort is the inverse";
  }
}

TEST(SplitHostPort, RefusesWhatIsNotHostColonPort) {
  for (const char* in : {"",
                         "nowhere",
                         "127.0.0.1",
                         "127.0.0.1:",
                         ":8080",
                         "127.0.0.1:65536",
                         "127.0.0.1:-1",
                         "127.0.0.1:+80",
                         "127.0.0.1: 80",
                         "127.0.0.1:80 ",
                         "127.0.0.1:8o",
                         "127.0.0.1:123456",
                         "::1:80",
                         "[::1]",
                         "[::1]80",
                         "[]:80",
                         "[127.0.0.1]:80",
                         "[::1:80",
                         "::1]:80",
                         "a[b]:80"}) {
    std::string host = "unchanged";
    int port = -1;
    EXPECT_FALSE(SplitHostPort(in, &host, &port)) << in;
    EXPECT_EQ(host, "unchanged") << in;
    EXPECT_EQ(port, -1) << in;
  }
}

// The Host header check against DNS rebinding: loopback names and configured names, with or without a port.
TEST(IsAllowedHost, LoopbackAndConfiguredNamesWithOrWithoutPort) {
  const std::vector<std::string> names = {"kiosk.local", "[fe80::1]", "Agent.Example."};
  for (const char* h : {"localhost", "localhost:8787", "LOCALHOST:1", "localhost.:8787", "127.0.0.1", "127.0.0.1:8787",
                        "127.0.0.2:80", "[::1]", "[::1]:8787", "[0::1]:65535", "kiosk.local", "KIOSK.local:8443",
                        "kiosk.local.:8443", "[fe80::1]:80", "agent.example", "agent.example:1"}) {
    EXPECT_TRUE(IsAllowedHost(h, names)) << h;
  }
}

TEST(IsAllowedHost, EverythingElseIsRefused) {
  const std::vector<std::string> names = {"kiosk.local"};
  for (const char* h : {"",
                        "evil.example",
                        "evil.example:8787",
                        "localhost.evil.example",
                        "127.0.0.1.evil.example:80",
                        "127.example.com",
                        "kiosk.local.evil",
                        "::1",
                        "::1:8787",
                        "[::1",
                        "[::1]x",
                        "[::1]:",
                        "[::1]:99999",
                        "[localhost]",
                        "localhost:",
                        "localhost:80:80",
                        "localhost:8o",
                        "localhost :80",
                        " localhost",
                        "localhost\t",
                        "user@localhost",
                        "localhost/evil",
                        "0.0.0.0",
                        "10.0.0.1:8787"}) {
    EXPECT_FALSE(IsAllowedHost(h, names)) << h;
  }
  EXPECT_FALSE(IsAllowedHost(std::string("localhost\0.evil", 15), names));
  EXPECT_FALSE(IsAllowedHost("kiosk.local", {}));
  EXPECT_FALSE(IsAllowedHost("x", {""}));
}

TEST(NormalizeHostName, ConfiguredNames) {
  EXPECT_EQ(NormalizeHostName("Kiosk.Local."), "kiosk.local");
  EXPECT_EQ(NormalizeHostName("[FE80::1]"), "fe80::1");
  EXPECT_EQ(NormalizeHostName("192.168.1.5"), "192.168.1.5");
  for (const char* bad : {"", ".", "a b", "host:80", "http://host", "*.local", "host/x", "[]", "a@b"}) {
    EXPECT_EQ(NormalizeHostName(bad), "") << bad;
  }
}

}  // namespace
}  // namespace ferry::net
