// A subject's rights beyond access and erasure, on the subject page (compliance): file a restriction or an objection
// (per purpose or every purpose; POST /v1/requests), its requests with what is in force, approving one (it is then in
// force) and lifting it (POST /v1/requests/{id}/lift); the consent timeline per purpose with receipts and notice
// versions (the export's consentHistory: an audited lookup); the erasure's dry run (POST .../erase {"dryRun": true}).
import { useEffect, useState } from "preact/hooks";
import { ConsentRecord, DryRunReceipt, ExportDoc, getJson, postJson, query, RightsRequest, seg } from "./api";
import { fmtDate, fmtNumber, t } from "./i18n";
import { canLift, LiftForm, RequestFacts, useAction } from "./request_actions";
import { ErrorLine, Note, Table } from "./ui";

const RIGHTS_KINDS = ["restriction", "objection"];

export function RestrictPanel({
  subject,
  project,
  purposes,
  onFiled,
}: {
  subject: string;
  project: string;
  purposes: string[];
  onFiled: (msg: string) => void;
}) {
  const [kind, setKind] = useState("restriction");
  const [all, setAll] = useState(true);
  const [chosen, setChosen] = useState<string[]>([]);
  const [extra, setExtra] = useState("");
  const [proj, setProj] = useState(project);
  const { error, busy, run } = useAction();
  const named = Array.from(new Set([...chosen, ...extra.split(",").map((s) => s.trim()).filter((s) => s)]));
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const body: Record<string, unknown> = { kind, subject, purposes: all ? [] : named };
      if (proj.trim()) body.project = proj.trim();
      const r = await postJson<RightsRequest>("/v1/requests", body);
      onFiled(t("sr.filed", { kind: r.kind, id: r.id, state: r.state }));
    });
  };
  const toggle = (p: string, on: boolean) => setChosen(on ? [...chosen, p] : chosen.filter((x) => x !== p));
  return (
    <section class="panel" id="restrict-panel" aria-labelledby="restrict-title">
      <h2 id="restrict-title">{t("sr.title")}</h2>
      <p class="muted">{t("sr.intro")}</p>
      <form class="filters" onSubmit={submit}>
        <label>
          {t("requests.kind")}
          <select id="restrict-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            <option value="restriction">{t("sr.restriction")}</option>
            <option value="objection">{t("sr.objection")}</option>
          </select>
        </label>
        <label>
          {t("common.project")}
          <input id="restrict-project" value={proj} spellcheck={false} onInput={(e) => setProj((e.target as HTMLInputElement).value)} />
        </label>
        <fieldset class="purposes">
          <legend>{t("subject.purpose")}</legend>
          <label class="check">
            <input type="checkbox" id="restrict-all" checked={all} onChange={(e) => setAll((e.target as HTMLInputElement).checked)} />
            {t("ra.allPurposes")}
          </label>
          {!all &&
            purposes.map((p) => (
              <label class="check">
                <input type="checkbox" class="restrict-purpose" value={p} checked={chosen.includes(p)} onChange={(e) => toggle(p, (e.target as HTMLInputElement).checked)} />
                {p}
              </label>
            ))}
          {!all && (
            <label>
              {t("sr.otherPurposes")}
              <input id="restrict-other" value={extra} spellcheck={false} onInput={(e) => setExtra((e.target as HTMLInputElement).value)} />
            </label>
          )}
        </fieldset>
        <button type="submit" id="restrict-file" disabled={busy || (!all && named.length === 0)}>
          {t("sr.file")}
        </button>
      </form>
      <ErrorLine error={error} />
    </section>
  );
}

// The subject's restriction and objection requests (from the register), approve (in force) and lift.
export function SubjectRightsRequests({ subject, generation, onChanged }: { subject: string; generation: number; onChanged: (msg: string) => void }) {
  const [list, setList] = useState<RightsRequest[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [lifting, setLifting] = useState("");
  useEffect(() => {
    getJson<{ requests: RightsRequest[] }>("/v1/requests").then(
      (d) => setList(d.requests.filter((r) => r.subject === subject && RIGHTS_KINDS.includes(r.kind))),
      setError,
    );
  }, [subject, generation]);
  const approve = async (r: RightsRequest) => {
    setError(null);
    try {
      const done = await postJson<RightsRequest>(`/v1/requests/${seg(r.id)}/approve`, {});
      onChanged(t("requests.approved", { id: done.id, state: done.state }));
    } catch (e) {
      setError(e);
    }
  };
  if (error) return <ErrorLine error={error} />;
  if (!list) return <p>{t("common.loading")}</p>;
  if (list.length === 0) return <p id="subject-rights-none">{t("sr.none")}</p>;
  return (
    <Table id="subject-rights" caption={t("sr.requests")} head={[t("requests.id"), t("requests.kind"), t("common.project"), t("requests.state"), t("requests.actions")]}>
      {list.map((r) => (
        <tr data-request={r.id}>
          <td class="mono">{r.id}</td>
          <td>{r.kind}</td>
          <td>{r.project}</td>
          <td>
            {r.state}
            <RequestFacts r={r} />
          </td>
          <td class="actions">
            {r.state === "awaiting_verification" && (
              <button type="button" class="approve approve-rights" onClick={() => approve(r)}>
                {t("sr.putInForce")}
              </button>
            )}
            {canLift(r) && (
              <button type="button" class="reject lift" aria-expanded={lifting === r.id} onClick={() => setLifting(lifting === r.id ? "" : r.id)}>
                {t("ra.lift")}
              </button>
            )}
            {lifting === r.id && <LiftForm r={r} onDone={onChanged} />}
          </td>
        </tr>
      ))}
    </Table>
  );
}

// Every consent record of the subject, per project and purpose, oldest first.
export function ConsentTimeline({ id, project }: { id: string; project: string }) {
  const [doc, setDoc] = useState<ExportDoc | null>(null);
  const { error, busy, run } = useAction();
  const load = () => run(async () => setDoc(await getJson<ExportDoc>(`/v1/subjects/${seg(id)}/export` + query({ project }))));
  return (
    <section aria-labelledby="timeline-title" id="consent-timeline">
      <h2 id="timeline-title">{t("sr.timeline")}</h2>
      {!doc && (
        <>
          <p class="muted">{t("sr.timelineNote")}</p>
          <button type="button" id="timeline-load" disabled={busy} onClick={load}>
            {t("sr.timelineLoad")}
          </button>
        </>
      )}
      <ErrorLine error={error} />
      {doc &&
        doc.projects.map((p) => {
          const by = new Map<string, ConsentRecord[]>();
          for (const c of p.consentHistory ?? []) by.set(c.purpose, [...(by.get(c.purpose) ?? []), c]);
          if (by.size === 0) return <p>{t("sr.timelineEmpty", { project: p.project })}</p>;
          return Array.from(by.entries()).map(([purpose, records]) => (
            <Table
              caption={t("sr.timelineOf", { project: p.project, purpose })}
              head={[t("subject.at"), t("subject.state"), t("sr.previous"), t("sr.method"), t("sr.notice"), t("sr.language"), t("sr.receipt"), t("sr.message")]}
            >
              {records
                .slice()
                .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
                .map((c) => (
                  <tr class="consent-record">
                    <td>{fmtDate(c.at)}</td>
                    <td>{c.state}</td>
                    <td>{c.previous ?? ""}</td>
                    <td>{c.method ?? ""}</td>
                    <td class="mono">{c.noticeId ? `${c.noticeId} v${c.noticeVersion ?? "?"}` : c.noticeVersion ?? ""}</td>
                    <td>{c.language ?? ""}</td>
                    <td class="mono">{c.receiptId ?? ""}</td>
                    <td class="mono">{c.messageId}</td>
                  </tr>
                ))}
            </Table>
          ));
        })}
    </section>
  );
}

// What an erasure would remove, asked of the collector (nothing changes; audited as a dry run).
export function ErasureDryRun({ id, project }: { id: string; project: string }) {
  const [receipt, setReceipt] = useState<DryRunReceipt | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    postJson<DryRunReceipt>(`/v1/subjects/${seg(id)}/erase` + query({ project }), { dryRun: true }).then(setReceipt, setError);
  }, [id, project]);
  if (error) return <ErrorLine error={error} />;
  if (!receipt) return <p>{t("common.loading")}</p>;
  return (
    <div id="erase-dryrun">
      <Note>{t("sr.dryRun", { projects: receipt.projects.join(", "), n: receipt.idsSuppressed })}</Note>
      <ul>
        {Object.entries(receipt.erased).map(([k, n]) => (
          <li>
            {k}: {fmtNumber(n)}
          </li>
        ))}
      </ul>
    </div>
  );
}
