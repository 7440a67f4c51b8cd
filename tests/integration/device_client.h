// A store test (store_collector.h) with apps: clients of the real SDK (shared library `ferry`) pointed at the test's
// collector with its write key and CA, uploading only when asked, closed at the end.
#ifndef FERRY_TESTS_INTEGRATION_DEVICE_CLIENT_H_
#define FERRY_TESTS_INTEGRATION_DEVICE_CLIENT_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ferry/ferry.h"
#include "tests/integration/store_collector.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {

class DeviceClientTest : public StoreCollectorTest {
 protected:
  void TearDown() override {
    for (auto* c : clients_) ferry_close(c, 0);
    StoreCollectorTest::TearDown();
  }
  // An app with its buffer in `buffer` (a file of the test's directory), analytics granted.
  ferry_client* OpenApp(const std::string& buffer) {
    ferry_options* o = BaseOptions(dir_.File(buffer));
    EXPECT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_write_key(o, key_.c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_ca_file(o, col_->ca_file().c_str()), FERRY_OK);
    ferry_options_set_flush_interval_ms(o, 3600000);  // uploads only when asked
    ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
    ferry_client* c = nullptr;
    EXPECT_EQ(ferry_open(o, &c), FERRY_OK);
    clients_.push_back(c);
    return c;
  }
  // A C string from the SDK as JSON (freed).
  static nlohmann::json Take(char* s) {
    if (s == nullptr) return nlohmann::json();
    nlohmann::json doc = nlohmann::json::parse(s, nullptr, false);
    ferry_free(s);
    return doc;
  }

  TempDir dir_;
  std::vector<ferry_client*> clients_;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_INTEGRATION_DEVICE_CLIENT_H_
