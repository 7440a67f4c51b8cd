// The embedded engine: a derived SQLCipher file of its own (beside the collector's store), written in process and
// scanned in person order to answer. docs/INSIGHT.md, "Engines".
#ifndef FERRY_COLLECTOR_INSIGHT_EMBEDDED_ENGINE_H_
#define FERRY_COLLECTOR_INSIGHT_EMBEDDED_ENGINE_H_

#include <memory>
#include <mutex>
#include <string>

#include "collector/insight/engine.h"
#include "lib/base/secret.h"
#include "lib/base/sqlite.h"

namespace ferry::insight {

class EmbeddedEngine : public Engine {
 public:
  // Opens (creating) the file with a raw 32-byte key. A wrong key gives kCorruption.
  static base::Result<std::unique_ptr<EmbeddedEngine>> Open(const std::string& path, const base::SecretBytes& key);
  ~EmbeddedEngine() override;

  const char* name() const override { return "embedded"; }
  base::Status Write(WriteBatch batch) override;
  base::Status Flush(int64_t timeout_ms) override;
  base::Status Erase(const std::string& project, const std::vector<std::string>& ids) override;
  base::Status SaveRestriction(const std::string& project, const std::vector<std::string>& ids,
                               bool restricted) override;
  base::Result<std::vector<std::pair<std::string, std::string>>> LoadRestrictions() override;
  base::Result<std::set<std::string>> LoadLeaves() override;
  base::Status PurgeThrough(const std::string& project, int32_t last_day) override;
  base::Result<std::vector<std::string>> Projects() override;
  base::Status SaveLeaves(const std::vector<HitLeaf>& leaves) override;
  base::Status Maintain() override { return base::Status::Ok(); }
  std::vector<std::string> EngineExclusions(const std::string&) override { return {}; }
  EngineStats Stats() override;
  base::Status ScanEvents(const std::string& project, const std::set<std::string>& names,
                          const std::set<std::string>& ids, const std::function<bool(const ActivityRow&)>& fn) override;

  base::Result<std::vector<PersonFeatures>> Features(const std::string& project, const FeatureParams& p,
                                                     const PersonFilter& persons, const Exclusion& ex) override;
  base::Result<RfmThresholds> Thresholds(const std::string& project, const FeatureParams& p,
                                         const Exclusion& ex) override;
  base::Result<std::vector<RetentionCountRow>> Retention(const RetentionQuery& q, const std::string& value_event,
                                                         const Exclusion& ex) override;
  base::Result<std::vector<FunnelRow>> Funnel(const FunnelQuery& q, const Exclusion& ex) override;
  base::Result<std::map<std::string, PersonLeafValues>> LeafValues(const std::string& project, int32_t as_of_day,
                                                                   const std::vector<HitLeaf>& leaves,
                                                                   const std::vector<LeafWindow>& windows,
                                                                   const PersonFilter& persons,
                                                                   const Exclusion& ex) override;
  base::Result<std::map<std::string, std::map<std::string, std::string>>> Traits(const std::string& project,
                                                                                 int32_t as_of_day,
                                                                                 const PersonFilter& persons,
                                                                                 const Exclusion& ex) override;
  base::Result<std::vector<KeyEventStat>> KeyEvents(const std::string& project, const std::string& person,
                                                    const std::vector<std::string>& names, int32_t as_of_day,
                                                    const Exclusion& ex) override;

 private:
  EmbeddedEngine() = default;
  base::Status Init();
  // Streams activity rows of a project in (person, ts_ms, message_id) order, day <= as_of (and >= from_day),
  // optionally one person only; rows an exclusion names are skipped. props only for `props_of` events.
  base::Status ScanOrdered(const std::string& project, int32_t from_day, int32_t as_of_day, const std::string& person,
                           const std::string& props_of, const Exclusion& ex,
                           const std::function<void(ActivityRow&&)>& fn);

  std::mutex write_mu_;  // guards writer_ and its statements
  base::Db writer_;
  base::Stmt ins_event_, ins_hit_, ins_trait_;
  std::mutex read_mu_;  // guards reader_
  base::Db reader_;
  std::mutex stats_mu_;
  EngineStats stats_;
};

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_EMBEDDED_ENGINE_H_
