// Shapes an event's properties and context can take, for the tests that compare the ways the insight reads them: the
// parsed parts, the stored body read in one pass (insight_unit_test) and the fields ingest reads from its own parse
// (tests/unit/collector/insight_fields_test). Repeated keys, nesting, values of every JSON type, keys and strings that
// need escaping, and values that are not objects at all.
#ifndef FERRY_TESTS_UNIT_INSIGHT_BODY_SHAPES_H_
#define FERRY_TESTS_UNIT_INSIGHT_BODY_SHAPES_H_

#include <string>
#include <vector>

namespace ferry::insight::testing {

inline std::vector<std::string> PropertyShapes() {
  return {
      R"({"revenue": 12.5, "nested": {"a": 1, "b": [1, {"c": 2}]}, "list": [1], "bad\"key": 1, "ok": true})",
      R"({"none": null, "big": 18446744073709551615, "neg": -9223372036854775808, "f": 1e300, "s": "\u00e9\ud83d\ude00"})",
      R"({"a": 1, "a": [1]})",  // a repeated key: the last value counts (here: not a scalar, so gone)
      R"({"a": [1], "a": "x", "z": {"properties": {"q": 1}}, "y": 0})",
      R"({"back\\slash": 1, "": "empty key", "sessionId": "not the context's"})",
      R"({})",
      R"([1, 2])",
      R"("text")",
      R"(null)"};
}

inline std::vector<std::string> ContextShapes() {
  return {
      R"({"app": {"name": "ferry-agent", "version": "1"}, "sessionId": "s9", "campaign": {"source": "wechat", "name": "spring"}})",
      R"({"app": {"name": "shop"}, "channel": "miniprogram", "library": {"name": "ferry", "channel": "x"}})",
      R"({"app": {"name": 5}, "sessionId": 7, "channel": null, "campaign": "flat"})",
      R"({"app": "shop", "campaign": {"source": ["a"], "name": {"x": 1}}, "os": {"name": "Linux"}})",
      R"({"sessionId": "a", "sessionId": "b", "app": {"name": "x"}, "app": {"version": "2"}})",
      R"({"campaign": {"source": "s", "name": "n"}, "campaign": 1, "channel": "c", "channel": [1]})",
      R"({"nested": {"sessionId": "deep", "app": {"name": "deep"}}})",
      R"({})",
      R"([])",
      R"(7)"};
}

}  // namespace ferry::insight::testing

#endif  // FERRY_TESTS_UNIT_INSIGHT_BODY_SHAPES_H_
