// The operations insight (docs/INSIGHT.md; the collector runs with --insight; role analyst): profile, retention,
// funnel, RFM, lifecycle and churn, each drawn from the admin API's JSON as tables (every value as text).
import { useState } from "preact/hooks";
import { getJson, query, WhoAmI } from "./api";
import { MessageKey, t } from "./i18n";
import { asText, ErrorLine, Forbidden, hasAny, Table } from "./ui";

const REPORTS = ["retention", "funnel", "rfm", "lifecycle", "churn", "profile"] as const;
type Report = (typeof REPORTS)[number];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// A JSON answer as a definition list of its plain fields and one table per array of objects (nested ones too).
function JsonView({ doc, name }: { doc: Record<string, unknown>; name: string }) {
  const plain = Object.entries(doc).filter(([, v]) => !Array.isArray(v) && !isRecord(v));
  const nested = Object.entries(doc).filter(([, v]) => isRecord(v)) as [string, Record<string, unknown>][];
  const tables = Object.entries(doc).filter(([, v]) => Array.isArray(v)) as [string, unknown[]][];
  return (
    <div class="json-view">
      {plain.length > 0 && (
        <dl>
          {plain.map(([k, v]) => (
            <>
              <dt>{k}</dt>
              <dd class="mono">{asText(v)}</dd>
            </>
          ))}
        </dl>
      )}
      {nested.map(([k, v]) => (
        <JsonView doc={v} name={`${name} · ${k}`} />
      ))}
      {tables.map(([k, rows]) => {
        if (rows.length === 0) return <p>{`${k}: ${t("insight.empty")}`}</p>;
        if (!rows.every(isRecord)) return <p class="mono">{`${k}: ${asText(rows)}`}</p>;
        const cols = Array.from(new Set(rows.flatMap((r) => Object.keys(r as Record<string, unknown>))));
        return (
          <Table caption={`${name} · ${k}`} head={cols}>
            {rows.map((r) => (
              <tr>
                {cols.map((c) => (
                  <td class="mono">{(r as Record<string, unknown>)[c] === undefined ? "" : asText((r as Record<string, unknown>)[c])}</td>
                ))}
              </tr>
            ))}
          </Table>
        );
      })}
    </div>
  );
}

export function InsightPage({ me }: { me: WhoAmI }) {
  const [report, setReport] = useState<Report>("retention");
  const [project, setProject] = useState("");
  const [person, setPerson] = useState("");
  const [steps, setSteps] = useState("");
  const [doc, setDoc] = useState<Record<string, unknown> | null>(null);
  const [error, setError] = useState<unknown>(null);
  if (!me.insight) return <p class="note">{t("insight.off")}</p>;
  if (!hasAny(me, ["analyst"])) return <Forbidden roles={["analyst"]} />;
  const run = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDoc(null);
    const params: Record<string, string | undefined> = { project };
    if (report === "profile") params.person = person;
    if (report === "funnel") params.steps = steps;
    try {
      setDoc(await getJson<Record<string, unknown>>(`/v1/insight/${report}` + query(params)));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="insight-title">
      <h1 id="insight-title">{t("insight.title")}</h1>
      <form class="filters" onSubmit={run}>
        <label>
          {t("insight.report")}
          <select id="insight-report" value={report} onChange={(e) => setReport((e.target as HTMLSelectElement).value as Report)}>
            {REPORTS.map((r) => (
              <option value={r}>{t(("insight." + r) as MessageKey)}</option>
            ))}
          </select>
        </label>
        <label>
          {t("common.project")}
          <input id="insight-project" value={project} required onInput={(e) => setProject((e.target as HTMLInputElement).value)} />
        </label>
        {report === "profile" && (
          <label>
            {t("insight.person")}
            <input id="insight-person" value={person} required onInput={(e) => setPerson((e.target as HTMLInputElement).value)} />
          </label>
        )}
        {report === "funnel" && (
          <label>
            {t("insight.steps")}
            <input id="insight-steps" value={steps} required onInput={(e) => setSteps((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <button type="submit" id="insight-run">
          {t("insight.run")}
        </button>
      </form>
      <ErrorLine error={error} />
      {doc && (
        <div id="insight-result">
          <JsonView doc={doc} name={t(("insight." + report) as MessageKey)} />
        </div>
      )}
    </section>
  );
}
