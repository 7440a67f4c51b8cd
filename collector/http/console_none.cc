// A collector built without the console (-DFERRY_CONSOLE=OFF): no assets; /console/ answers 404 and says why.
#include "collector/http/console_assets.h"

namespace ferry::collector::console {

const Asset kAssets[] = {{"", "", nullptr, 0, false}};
const size_t kAssetCount = 0;
const Asset kSelfServeAssets[] = {{"", "", nullptr, 0, false}};
const size_t kSelfServeAssetCount = 0;

}  // namespace ferry::collector::console
