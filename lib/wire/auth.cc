#include "lib/wire/auth.h"

#include <cctype>

namespace ferry::wire {

std::string BearerToken(std::string_view h) {
  if (h.size() < 8) return {};
  for (size_t i = 0; i < 7; ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != "bearer "[i]) return {};
  }
  size_t b = 7;
  while (b < h.size() && h[b] == ' ') ++b;
  size_t e = h.size();
  while (e > b && (h[e - 1] == ' ' || h[e - 1] == '\t')) --e;
  return std::string(h.substr(b, e - b));
}

}  // namespace ferry::wire
