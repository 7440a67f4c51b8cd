// Minors at the collector (issue 12 item 8; collector/store/minors.h): what a subject's minor state is in a project
// and where it came from, for the subject view and the officer's mark (RightsService::MarkMinor, MinorStatesOf).
#ifndef FERRY_COLLECTOR_RIGHTS_MINORS_H_
#define FERRY_COLLECTOR_RIGHTS_MINORS_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/store/minors.h"
#include "collector/store/records.h"

namespace ferry::collector::rights {

// A subject's minor state in one project.
struct MinorState {
  std::string project;
  bool minor = false;                  // an officer's mark or a device's flag is in force
  std::vector<MinorMark> marks;        // the officers' marks in force on the subject's ids
  std::vector<ConsentRecord> devices;  // per installation (anonymousId) of the subject whose latest record carrying
                                       // `minor` says true: that record
};

// {"minor": bool, "sources": [{"source": "officer", "scope": "person", "id", "by", "since"} | {"source": "device",
// "scope": "installation", "anonymousId", "receiptId", "method", "seq", "at"}]}: an officer's mark binds every event
// of the person's ids; a device's word only that installation's events.
nlohmann::json MinorStateJson(const MinorState& state);

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_MINORS_H_
