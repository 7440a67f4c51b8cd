// A synthetic event stream for the insight's tests and benchmarks: users with lifecycles — acquired through a UTM
// source and campaign, signing up (activation), browsing, buying with values, inviting others, in sessions on
// several channels (app, web through ferry-agent, mini-program, offline stores), pausing (dormancy), declining and
// churning, sometimes won back by a campaign — plus the consent records their devices send. Deterministic for a seed:
// each user is generated from (seed, user index) alone, so any range of users can be generated on its own.
//
// Ground truth per user comes with it (acquisition, signup, the planned churn and win-back days, consent choices), and
// because the stream can run past the day the tests ask "as of", whether a person was really active afterwards is
// known: that is how the churn model's AUC is measured.
#ifndef FERRY_TOOLS_INSIGHT_GEN_GENERATOR_H_
#define FERRY_TOOLS_INSIGHT_GEN_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <string>

#include "collector/insight/types.h"

namespace ferry::insightgen {

struct Options {
  uint64_t seed = 1;
  int64_t users = 1000;
  int64_t first_user = 0;         // generate users [first_user, first_user + users)
  int32_t start_day = 20454;      // 2026-01-01 (days since 1970-01-01)
  int32_t days = 120;             // users arrive over these days; activity is generated up to start_day + days - 1
  double activity = 1.0;          // scales sessions per day (about 10 events per user at 1.0 over 120 days)
  double duplicate_rate = 0.005;  // share of events delivered twice (same messageId)
  std::string project = "demo";
};

struct UserTruth {
  int64_t index = 0;
  std::string user_id;       // "" for a visitor who never signed up
  std::string anonymous_id;  // the device's id
  std::string source, campaign, primary_channel;
  int32_t first_day = 0;
  int32_t signup_day = -1;
  int32_t churn_day = -1;   // the first day without activity for good (-1: stays within the horizon)
  int32_t return_day = -1;  // won back on this day (-1: not)
  bool personalization = false, marketing = false;
  int64_t events = 0;  // events emitted (duplicates included)
};

class Generator {
 public:
  explicit Generator(Options o) : o_(std::move(o)) {}
  // Emits every user's events (in time order within a user; a duplicate follows its original) and then the user's
  // truth. seq numbers count up from 1 across the run.
  void Run(const std::function<void(const insight::InsightEvent&)>& on_event,
           const std::function<void(const UserTruth&)>& on_user);
  // The configuration the generated stream is meant for (channel mapping, events' names): a JSON object text for
  // InsightConfig::FromJson, without tags.
  static std::string ConfigJson();

 private:
  Options o_;
  int64_t seq_ = 0;
};

}  // namespace ferry::insightgen

#endif  // FERRY_TOOLS_INSIGHT_GEN_GENERATOR_H_
