// The downstream outbox (compliance, operator): the feed of erasures, rectifications and restrictions that systems
// downstream read (GET /v1/outbox, paged by seq) or receive by webhook, what each consumer acknowledged, and the
// Ed25519 key the deliveries are signed with (GET /v1/outbox/public-key). Acknowledging is the consumer's call, not
// the officer's: this page only reads.
import { useEffect, useState } from "preact/hooks";
import { getJson, query, WhoAmI } from "./api";
import { fmtDate, t } from "./i18n";
import { asText, ErrorLine, Forbidden, hasAny, Table } from "./ui";

interface OutboxEntry {
  seq: number;
  kind: string;
  project: string;
  requestId: string;
  ids: string[];
  change?: unknown;
  createdAt: string;
}
interface OutboxPage {
  entries: OutboxEntry[];
  next: number;
  more: boolean;
  acknowledged: Record<string, number>;
}
const PAGE = 50;

export function OutboxPage({ me }: { me: WhoAmI }) {
  const [after, setAfter] = useState(0);
  const [trail, setTrail] = useState<number[]>([]);
  const [page, setPage] = useState<OutboxPage | null>(null);
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const allowed = hasAny(me, ["compliance", "operator"]);
  useEffect(() => {
    if (allowed) getJson<{ publicKey: string }>("/v1/outbox/public-key").then((k) => setKey(k.publicKey), setError);
  }, []);
  useEffect(() => {
    if (!allowed) return;
    setPage(null);
    getJson<OutboxPage>("/v1/outbox" + query({ after, limit: PAGE })).then(setPage, setError);
  }, [after]);
  if (!allowed) return <Forbidden roles={["compliance", "operator"]} />;
  const acks = Object.entries(page?.acknowledged ?? {});
  return (
    <section aria-labelledby="outbox-title">
      <h1 id="outbox-title">{t("outbox.title")}</h1>
      <p class="muted">{t("outbox.intro")}</p>
      {key && <p class="mono" id="outbox-key">{t("outbox.key", { key })}</p>}
      <ErrorLine error={error} />
      {!page && !error && <p>{t("common.loading")}</p>}
      {page && (
        <>
          <p id="outbox-acks">{t("outbox.acked", { list: acks.length ? acks.map(([c, s]) => `${c} #${s}`).join(", ") : t("common.none") })}</p>
          <Table
            id="outbox-table"
            caption={t("outbox.caption", { after })}
            head={[t("outbox.seq"), t("outbox.kind"), t("common.project"), t("outbox.request"), t("outbox.ids"), t("outbox.created")]}
          >
            {page.entries.map((e) => (
              <tr data-seq={e.seq}>
                <td>{e.seq}</td>
                <td>{e.kind}</td>
                <td>{e.project}</td>
                <td class="mono">{e.requestId}</td>
                <td class="mono">{asText(e.ids)}</td>
                <td>{fmtDate(e.createdAt)}</td>
              </tr>
            ))}
          </Table>
          <div class="pager">
            <button
              type="button"
              id="outbox-prev"
              disabled={trail.length === 0}
              onClick={() => {
                setAfter(trail[trail.length - 1] ?? 0);
                setTrail(trail.slice(0, -1));
              }}
            >
              {t("common.prev")}
            </button>
            <button
              type="button"
              id="outbox-next"
              disabled={!page.more}
              onClick={() => {
                setTrail([...trail, after]);
                setAfter(page.next);
              }}
            >
              {t("common.next")}
            </button>
          </div>
        </>
      )}
    </section>
  );
}
