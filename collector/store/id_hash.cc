#include "collector/store/id_hash.h"

#include "lib/base/digest.h"

namespace ferry::collector {

std::string IdHasher::operator()(std::string_view id) const {
  return base::Blake2b256Hex(id, std::string_view(reinterpret_cast<const char*>(key_.data()), key_.size()));
}

}  // namespace ferry::collector
