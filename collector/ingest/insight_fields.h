// What the operations insight reads from an event body (docs/INSIGHT.md, "Events, persons, days"), taken from the
// document ingest has already parsed, so the insight's feed does not read the stored body a second time (issue 15).
#ifndef FERRY_COLLECTOR_INGEST_INSIGHT_FIELDS_H_
#define FERRY_COLLECTOR_INGEST_INSIGHT_FIELDS_H_

#include "collector/store/records.h"
#include "lib/wire/event.h"

namespace ferry::collector {

// Fills se->insight from a validated track or screen event: the top-level string, number and boolean properties whose
// keys hold neither '"' nor '\' as canonical JSON (sorted keys, no spaces, invalid UTF-8 replaced), and the context's
// sessionId, channel, app.name, campaign.source and campaign.name when they are strings. A properties, context, app or
// campaign value that is not an object reads as an empty object. Exactly what the insight's normalisation reads from
// the body (collector/insight/normalize.h: FlatProps, Canonical); other event types are left alone.
void ReadInsightFields(const wire::Json& ev, StoredEvent* se);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_INSIGHT_FIELDS_H_
