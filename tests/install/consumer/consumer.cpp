// The installed C++ wrapper (ferry/ferry.hpp) from an out-of-tree project. Usage: consumer_cpp <scratch dir>.
#include <ferry/ferry.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::uint8_t key[32] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3,
                                2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5};
  ferry::Client client;
  ferry::Status s = ferry::Client::Open(ferry::Options()
                                            .SetStoragePath(std::string(argv[1]) + "/consumer_cpp.db")
                                            .SetEncryptionKey(key, sizeof key)
                                            .SetDefaultConsent("analytics", ferry::Consent::kGranted),
                                        &client);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.str());
    return 1;
  }
  std::string exported;
  bool ok = client.Track("installed_cpp", R"({"ip":"203.0.113.9"})").ok() && client.ExportLocal(&exported).ok() &&
            exported.find("[ip]") != std::string::npos && exported.find("203.0.113.9") == std::string::npos;
  std::printf("consumer_cpp %s: %s\n", ferry::Version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
