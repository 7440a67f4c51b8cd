// The purpose and processing registry (docs/COMPLIANCE.md "Purpose and processing registry"): per project, what is
// processed for which purpose, on which legal basis, about whom, for how long, shared with whom, sent where, and what
// withdrawing consent does. One JSON document per project, checked on the way in (ValidateRegistry), edited through
// the admin API (PUT /v1/projects/{project}/registry) and `ferryctl registry`, and rendered as the records of
// processing (GDPR art. 30) and the inputs of an impact assessment (GDPR art. 35 DPIA, PIPL art. 55-56 PIA) in HTML,
// Markdown and JSON. A purpose's retention is enforced by the retention job (RetentionStore::PurgeExpired) when it is
// shorter than the project's. The registry also feeds the cover page of a person's copy (art. 15(1)).
#ifndef FERRY_COLLECTOR_RIGHTS_REGISTRY_H_
#define FERRY_COLLECTOR_RIGHTS_REGISTRY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "collector/rights/documents.h"
#include "collector/rights/rights_service.h"
#include "collector/store/interfaces.h"
#include "lib/base/status.h"

namespace ferry::collector::rights {

// Legal bases a purpose may name: GDPR art. 6(1)(a)-(f) and PIPL art. 13(1)-(7) beyond those.
const std::vector<std::string>& LegalBases();

// Checks a registry document (the body of PUT .../registry) and returns its canonical form (only known keys, arrays
// present even when empty). InvalidArgument naming the first problem: an unknown key, a missing or mistyped field, a
// repeated purpose id, an unknown legal basis, a retention out of range, a text too long.
base::Result<Json> ValidateRegistry(const Json& in);

// purpose id -> its own maximum event age in ms (purposes with retentionDays).
std::map<std::string, int64_t> PurposeRetention(const Json& registry);

enum class RegistryView {
  kRecords,  // the records of processing activities (GDPR art. 30(1))
  kImpact,   // the inputs of an impact assessment (GDPR art. 35(7), PIPL art. 56)
};
enum class RenderFormat { kJson, kMarkdown, kHtml };

// "json", "md"/"markdown", "html"; nullopt otherwise.
std::optional<RenderFormat> ParseRenderFormat(const std::string& s);
const char* ContentType(RenderFormat f);

// What the renderings are made of: the registry, its project and the retention that applies to the project's events.
struct RegistryContext {
  std::string project;
  Json registry;                   // canonical (ValidateRegistry)
  int64_t updated_ms = 0;          // when the registry was last written
  int64_t project_max_age_ms = 0;  // the project's event retention (<= 0: kept until erased)
  int64_t generated_ms = 0;
};

// The effective retention of a purpose in days (the shorter of its own and the project's; 0: kept until erased).
int64_t EffectiveRetentionDays(const Json& purpose, int64_t project_max_age_ms);

// The view's JSON document (the JSON rendering).
Json ViewDocument(const RegistryContext& c, RegistryView view);
// The view rendered: JSON text, Markdown, or one self-contained HTML page (inline CSS, no external resource, every
// text escaped).
std::string RenderView(const RegistryContext& c, RegistryView view, RenderFormat format);

// The registry's calls, authorised by the caller (RightsService::Authorize with kRegistryRead or kRegistryEdit)
// and audited: reads after they succeeded, an edit in the transaction that writes it.
class RegistryService {
 public:
  // default_max_age_ms: the retention of projects without their own (the collector's --retention-days).
  RegistryService(RightsService* rights, RightsTransactions* transactions, int64_t default_max_age_ms);

  // The project's registry: {project, updatedAt, registry} (registry: an empty one when none was written).
  // NotFound for an unknown project.
  base::Result<Json> Get(const Actor& actor, const std::string& project);
  // Replaces the project's registry with `body` (validated) and the retention of its purposes. Returns what Get
  // would. NotFound for an unknown project, InvalidArgument for a document ValidateRegistry refuses.
  base::Result<Json> Put(const Actor& actor, const std::string& project, const Json& body);
  // A view of the project's registry, rendered.
  base::Result<std::string> Render(const Actor& actor, const std::string& project, RegistryView view,
                                   RenderFormat format);
  // The registry of every project named (every project when none is; unknown ones are absent), unaudited: for the
  // cover page of a copy whose export is audited itself.
  base::Result<std::map<std::string, RegistryContext>> Contexts(const std::vector<std::string>& projects);

 private:
  base::Result<RegistryContext> Load(StoreTxn& tx, const std::string& project);

  RightsService* rights_;
  RightsTransactions* tx_;
  int64_t default_max_age_ms_;
};

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_REGISTRY_H_
