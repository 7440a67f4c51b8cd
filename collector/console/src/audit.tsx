// The audit log (GET /v1/audit, paged by sequence number) and its verification (GET /v1/audit/verify), with the
// head hash: the hash of the last entry, which an officer can note down to check later that nothing before it changed.
import { useEffect, useState } from "preact/hooks";
import { AuditEntry, getJson, query, VerifyResult, WhoAmI } from "./api";
import { fmtDate, t } from "./i18n";
import { AnchorCheck, downloadAnchor } from "./anchor";
import { ErrorLine, Forbidden, hasAny, Table } from "./ui";

const PAGE = 50;

export function AuditPage({ me }: { me: WhoAmI }) {
  const [after, setAfter] = useState(0);
  const [subject, setSubject] = useState("");
  const [subjectInput, setSubjectInput] = useState("");
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [verify, setVerify] = useState<VerifyResult | null>(null);
  const [head, setHead] = useState<AuditEntry | null>(null);
  const [verifying, setVerifying] = useState(false);
  const allowed = hasAny(me, ["compliance", "operator"]);
  useEffect(() => {
    if (!allowed) return;
    setEntries(null);
    getJson<{ entries: AuditEntry[] }>("/v1/audit" + query({ after, limit: PAGE, subject })).then(
      (d) => setEntries(d.entries),
      setError,
    );
  }, [after, subject]);
  if (!allowed) return <Forbidden roles={["compliance", "operator"]} />;

  const runVerify = async () => {
    setVerifying(true);
    setError(null);
    try {
      const v = await getJson<VerifyResult>("/v1/audit/verify");
      setVerify(v);
      // The head: the last entry the verification covered.
      const last = await getJson<{ entries: AuditEntry[] }>("/v1/audit" + query({ after: Math.max(0, v.entries - 1), limit: 1 }));
      setHead(last.entries[0] ?? null);
    } catch (e) {
      setError(e);
    } finally {
      setVerifying(false);
    }
  };

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">{t("audit.title")}</h1>
      <div class="toolbar">
        <button type="button" id="audit-verify" onClick={runVerify} disabled={verifying}>
          {t("audit.verify")}
        </button>
      </div>
      {verify && (
        <div id="verify-result" role="status" class={verify.ok ? "ok" : "error"}>
          <p>{verify.ok ? t("audit.ok", { n: verify.entries }) : t("audit.broken", { seq: verify.firstBrokenSeq ?? "?", reason: verify.reason ?? "" })}</p>
          {head && (
            <p class="mono" id="audit-head">
              {t("audit.head", { seq: head.seq, hash: head.hash })}
            </p>
          )}
          {verify.ok && verify.headHash && (
            <button type="button" id="anchor-download" onClick={() => downloadAnchor(verify)}>
              {t("anchor.download")}
            </button>
          )}
        </div>
      )}
      <AnchorCheck />
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setAfter(0);
          setSubject(subjectInput.trim());
        }}
      >
        <label>
          {t("audit.filter")}
          <input id="audit-subject" value={subjectInput} spellcheck={false} onInput={(e) => setSubjectInput((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">{t("common.show")}</button>
      </form>
      <ErrorLine error={error} />
      {!entries && !error && <p>{t("common.loading")}</p>}
      {entries && (
        <>
          <Table
            id="audit-table"
            caption={t("audit.page", { after })}
            head={[t("audit.seq"), t("audit.time"), t("audit.actor"), t("audit.role"), t("audit.action"), t("audit.subjectHash"), t("audit.result"), t("audit.detail"), t("audit.hash")]}
          >
            {entries.map((e) => (
              <tr>
                <td>{e.seq}</td>
                <td>{fmtDate(e.time)}</td>
                <td>{e.actor}</td>
                <td>{e.role}</td>
                <td>{e.action}</td>
                <td class="mono short" title={e.subjectHash}>
                  {e.subjectHash}
                </td>
                <td>{e.result}</td>
                <td class="mono">{e.detail}</td>
                <td class="mono short" title={e.hash}>
                  {e.hash}
                </td>
              </tr>
            ))}
          </Table>
          <div class="pager">
            <button type="button" id="audit-prev" disabled={after === 0} onClick={() => setAfter(Math.max(0, after - PAGE))}>
              {t("common.prev")}
            </button>
            <button
              type="button"
              id="audit-next"
              disabled={entries.length < PAGE}
              onClick={() => setAfter(entries[entries.length - 1].seq)}
            >
              {t("common.next")}
            </button>
          </div>
        </>
      )}
    </section>
  );
}
