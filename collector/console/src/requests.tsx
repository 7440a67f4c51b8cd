// The requests inbox: the register (GET /v1/requests), due dates with overdue and due-soon marked, filters by kind and
// state, due within 7 days (GET /v1/requests/due), approve / reject with a reason, extend, and the audit rows that name
// each request.
import { useEffect, useState } from "preact/hooks";
import { AuditEntry, getJson, postJson, query, RightsRequest, WhoAmI } from "./api";
import { fmtDate, t } from "./i18n";
import { go } from "./nav";
import { canComplete, canDeliver, canExtend, canLift, CompleteForm, CopyButtons, Deliveries, ExtendForm, hasCopies, LiftForm, RequestFacts, VerifyForm } from "./request_actions";
import { asText, ErrorLine, Forbidden, hasAny, Note, Table } from "./ui";

const DUE_SOON_MS = 3 * 24 * 3600 * 1000;
const isOpen = (r: RightsRequest) => r.state !== "completed" && r.state !== "rejected";

function dueClass(r: RightsRequest, now: number): "overdue" | "due-soon" | "" {
  if (!isOpen(r)) return "";
  if (r.overdue) return "overdue";
  return Date.parse(r.dueAt) - now < DUE_SOON_MS ? "due-soon" : "";
}

// The audit rows whose detail names the request (add, approve, reject, the erasure an approval carried out).
async function auditRowsOf(r: RightsRequest): Promise<AuditEntry[]> {
  const erased = r.subject.startsWith("hash:");
  const { entries } = await getJson<{ entries: AuditEntry[] }>(
    "/v1/audit" + query({ subject: erased ? undefined : r.subject, limit: 10000 }),
  );
  return entries.filter((e) => {
    try {
      const d = JSON.parse(e.detail) as { requestId?: string };
      return d.requestId === r.id;
    } catch {
      return false;
    }
  });
}

function AuditRows({ r }: { r: RightsRequest }) {
  const [rows, setRows] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    auditRowsOf(r).then(setRows, setError);
  }, [r.id, r.state]);
  if (error) return <ErrorLine error={error} />;
  if (!rows) return <p>{t("common.loading")}</p>;
  if (rows.length === 0) return <p>{t("requests.noAudit")}</p>;
  return (
    <ul class="audit-rows" aria-label={t("requests.audit")}>
      {rows.map((e) => (
        <li>
          <span class="mono">#{e.seq}</span> {fmtDate(e.time)} · {e.actor} · {e.action} · {e.result} ·{" "}
          <span class="mono">{e.detail}</span>
        </li>
      ))}
    </ul>
  );
}

function RequestRow({ r, now, onChanged }: { r: RightsRequest; now: number; onChanged: (msg: string) => void }) {
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState("");
  const [showAudit, setShowAudit] = useState(false);
  const [verifying, setVerifying] = useState(false);
  const [lifting, setLifting] = useState(false);
  const [completing, setCompleting] = useState(false);
  const [extending, setExtending] = useState(false);
  const [showDeliveries, setShowDeliveries] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const cls = dueClass(r, now);
  const act = async (approve: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const path = `/v1/requests/${encodeURIComponent(r.id)}/${approve ? "approve" : "reject"}`;
      const done = await postJson<RightsRequest>(path, approve ? {} : { reason });
      setRejecting(false);
      onChanged(approve ? t("requests.approved", { id: done.id, state: done.state }) : t("requests.rejected", { id: done.id }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const waiting = r.state === "awaiting_verification";
  return (
    <>
      <tr class={cls} data-request={r.id}>
        <td class="mono">{r.id}</td>
        <td>{r.kind}</td>
        <td>
          {r.subject.startsWith("hash:") ? (
            <span class="mono">{r.subject}</span>
          ) : (
            <a href="#" onClick={(e) => (e.preventDefault(), go("subject", { id: r.subject, project: r.project }))}>
              {r.subject}
            </a>
          )}
        </td>
        <td>{r.project}</td>
        <td>
          {r.state}
          {r.actedBy && <div class="muted">{t("requests.actedBy", { who: r.actedBy })}</div>}
          <RequestFacts r={r} />
        </td>
        <td>{fmtDate(r.receivedAt)}</td>
        <td>
          {fmtDate(r.dueAt)}{" "}
          {cls && <span class={"badge " + cls}>{cls === "overdue" ? t("requests.overdue") : t("requests.dueSoon")}</span>}
        </td>
        <td class="actions">
          {waiting && (
            <button type="button" class="approve" disabled={busy} onClick={() => act(true)}>
              {t("requests.approve")}
            </button>
          )}
          {waiting && (
            <button type="button" class="verify" disabled={busy} onClick={() => setVerifying(!verifying)} aria-expanded={verifying}>
              {t("ra.verify")}
            </button>
          )}
          {waiting && (
            <button type="button" class="reject" disabled={busy} onClick={() => setRejecting(!rejecting)} aria-expanded={rejecting}>
              {t("requests.reject")}
            </button>
          )}
          {canLift(r) && (
            <button type="button" class="reject lift" onClick={() => setLifting(!lifting)} aria-expanded={lifting}>
              {t("ra.lift")}
            </button>
          )}
          {canComplete(r) && (
            <button type="button" class="complete" onClick={() => setCompleting(!completing)} aria-expanded={completing}>
              {t("ra.complete")}
            </button>
          )}
          {canExtend(r) && (
            <button type="button" class="extend" onClick={() => setExtending(!extending)} aria-expanded={extending}>
              {t("ra.extend")}
            </button>
          )}
          {(canDeliver(r) || hasCopies(r)) && <CopyButtons r={r} onDone={onChanged} />}
          <button type="button" class="show-deliveries" onClick={() => setShowDeliveries(!showDeliveries)} aria-expanded={showDeliveries}>
            {showDeliveries ? t("ra.hideDeliveries") : t("ra.deliveries")}
          </button>
          <button type="button" class="show-audit" onClick={() => setShowAudit(!showAudit)} aria-expanded={showAudit}>
            {showAudit ? t("requests.hideAudit") : t("requests.audit")}
          </button>
        </td>
      </tr>
      {(rejecting || showAudit || error || verifying || lifting || completing || extending || showDeliveries) && (
        <tr class="detail-row">
          <td colSpan={8}>
            <ErrorLine error={error} />
            {rejecting && (
              <form class="inline" onSubmit={(e) => (e.preventDefault(), act(false))}>
                <label for={"reason-" + r.id}>{t("requests.reason", { id: r.id })}</label>
                <input id={"reason-" + r.id} class="reason" value={reason} required onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
                <button type="submit" disabled={busy || !reason.trim()}>
                  {t("requests.confirmReject")}
                </button>
              </form>
            )}
            {verifying && <VerifyForm r={r} onDone={onChanged} />}
            {lifting && <LiftForm r={r} onDone={onChanged} />}
            {completing && <CompleteForm r={r} onDone={onChanged} />}
            {extending && <ExtendForm r={r} onDone={onChanged} />}
            {showDeliveries && <Deliveries r={r} />}
            {showAudit && <AuditRows r={r} />}
          </td>
        </tr>
      )}
    </>
  );
}

export function RequestsPage({ me }: { me: WhoAmI }) {
  const [list, setList] = useState<RightsRequest[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [kind, setKind] = useState("");
  const [state, setState] = useState("");
  const [overdueOnly, setOverdueOnly] = useState(false);
  const [dueWithin, setDueWithin] = useState(false);
  const [message, setMessage] = useState("");
  const [generation, setGeneration] = useState(0);
  const allowed = hasAny(me, ["compliance"]);
  useEffect(() => {
    if (!allowed) return;
    // Due within 7 days: the collector's own answer (open requests due before then, overdue ones included).
    getJson<{ requests: RightsRequest[] }>(dueWithin ? "/v1/requests/due?within=7d" : "/v1/requests").then((d) => setList(d.requests), setError);
  }, [generation, dueWithin]);
  if (!allowed) return <Forbidden roles={["compliance"]} />;
  const now = Date.now();
  const kinds = Array.from(new Set(["access", "erasure", "correction", "portability", "restriction", "objection", ...(list ?? []).map((r) => r.kind)])).sort();
  const states = Array.from(
    new Set(["received", "awaiting_verification", "in_progress", "extended", "completed", "rejected", ...(list ?? []).map((r) => r.state)]),
  ).sort();
  const shown = (list ?? [])
    .filter((r) => (!kind || r.kind === kind) && (!state || r.state === state) && (!overdueOnly || r.overdue))
    .sort((a, b) => Number(isOpen(b)) - Number(isOpen(a)) || Date.parse(a.dueAt) - Date.parse(b.dueAt));
  return (
    <section aria-labelledby="requests-title">
      <h1 id="requests-title">{t("requests.title")}</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          {t("requests.kind")}
          <select id="filter-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            <option value="">{t("common.all")}</option>
            {kinds.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          {t("requests.state")}
          <select id="filter-state" value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            <option value="">{t("common.all")}</option>
            {states.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label class="check">
          <input id="filter-overdue" type="checkbox" checked={overdueOnly} onChange={(e) => setOverdueOnly((e.target as HTMLInputElement).checked)} />
          {t("requests.overdueOnly")}
        </label>
        <label class="check">
          <input id="filter-due" type="checkbox" checked={dueWithin} onChange={(e) => setDueWithin((e.target as HTMLInputElement).checked)} />
          {t("requests.dueWithin")}
        </label>
        <button type="button" onClick={() => setGeneration(generation + 1)}>
          {t("common.refresh")}
        </button>
      </form>
      {message && <Note id="requests-message">{message}</Note>}
      <ErrorLine error={error} />
      {!list && !error && <p>{t("common.loading")}</p>}
      {list && (
        <>
          <p class="muted">{t("requests.count", { n: shown.length, total: list.length })}</p>
          <Table
            id="requests-table"
            caption={t("requests.title")}
            head={[
              t("requests.id"),
              t("requests.kind"),
              t("requests.subject"),
              t("common.project"),
              t("requests.state"),
              t("requests.received"),
              t("requests.due"),
              t("requests.actions"),
            ]}
          >
            {shown.map((r) => (
              <RequestRow
                key={r.id + r.state}
                r={r}
                now={now}
                onChanged={(msg) => {
                  setMessage(msg);
                  setGeneration(generation + 1);
                }}
              />
            ))}
          </Table>
        </>
      )}
      {list && list.length === 0 && <p>{asText(t("common.none"))}</p>}
    </section>
  );
}
