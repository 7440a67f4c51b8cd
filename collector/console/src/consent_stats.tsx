// Consent statistics (GET /v1/projects/{project}/consent/stats?bucket=day|week&from=&to=; roles compliance and
// analyst): per purpose and notice version, how many subjects opted in and out in each day or week of a date range.
// Drawn as inline SVG bars made here (no chart library; geometry attributes and classes only: the CSP allows no style
// attribute), and the same figures as a table, which is the accessible form of the chart.
import { useState } from "preact/hooks";
import { getJson, query, seg, WhoAmI } from "./api";
import { fmtNumber, t } from "./i18n";
import { ErrorLine, Forbidden, hasAny, sessionGet, sessionSet, Table } from "./ui";

export interface ConsentStatsRow {
  bucket: string;
  purpose: string;
  noticeVersion: string | null;
  subjects: number;
  granted: number;
  denied: number;
  pending: number;
  optInRate: number;
  optOutRate: number;
}
interface ConsentStats {
  project: string;
  bucket: "day" | "week";
  from: string;
  to: string;
  rows: ConsentStatsRow[];
}

// Its own key: the registry page keeps its project under ferry.console.project.
const PROJECT_KEY = "ferry.console.stats.project";
const day = (d: Date) => d.toISOString().slice(0, 10);
const versionText = (v: string | null) => (v === null ? t("stats.noVersion") : v);
const pct = (f: number) => `${(f * 100).toFixed(1)}%`;

// Every bucket of the range in order (the first day of each, as the API names them), empty ones included, so that the
// chart's horizontal axis is time.
function allBuckets(doc: ConsentStats): string[] {
  const DAY = 86400e3;
  const start = Date.parse(doc.from);
  const end = Date.parse(doc.to);
  if (Number.isNaN(start) || Number.isNaN(end)) return [];
  let t0 = Math.floor(start / DAY) * DAY;
  if (doc.bucket === "week") t0 -= ((new Date(t0).getUTCDay() + 6) % 7) * DAY; // back to Monday
  const step = doc.bucket === "week" ? 7 * DAY : DAY;
  const out: string[] = [];
  for (let x = t0; x < end && out.length < 500; x += step) out.push(day(new Date(x)));
  return out;
}

// One chart per purpose and notice version: per bucket, a bar of subjects who opted in and one of those who opted out.
function SeriesChart({ name, buckets, rows, id }: { name: string; buckets: string[]; rows: Map<string, ConsentStatsRow>; id: string }) {
  const W = Math.max(6, Math.min(28, Math.floor(840 / Math.max(1, buckets.length)))); // one bucket: two bars and a gap
  const bar = Math.max(2, Math.floor((W - 2) / 2));
  const H = 120;
  const max = Math.max(1, ...Array.from(rows.values()).map((r) => Math.max(r.granted, r.denied)));
  const h = (n: number) => Math.max(1, Math.round((n / max) * H));
  const width = Math.max(buckets.length * W, 80);
  return (
    <figure class="stats-chart">
      <svg
        viewBox={`0 0 ${width} ${H + 16}`}
        width={width}
        height={H + 16}
        role="img"
        aria-labelledby={id + "-title"}
        preserveAspectRatio="xMinYMin meet"
      >
        <title id={id + "-title"}>{t("stats.chartTitle", { name, max })}</title>
        <line class="axis" x1={0} y1={H} x2={width} y2={H} />
        {buckets.map((b, i) => {
          const r = rows.get(b);
          const x = i * W + 1;
          return (
            <g>
              {r && r.granted > 0 && <rect class="bar-in" x={x} y={H - h(r.granted)} width={bar} height={h(r.granted)} />}
              {r && r.denied > 0 && <rect class="bar-out" x={x + bar} y={H - h(r.denied)} width={bar} height={h(r.denied)} />}
            </g>
          );
        })}
        {buckets.length > 0 && (
          <>
            <text class="tick" x={0} y={H + 12}>
              {buckets[0].slice(5)}
            </text>
            <text class="tick" x={width} y={H + 12} text-anchor="end">
              {buckets[buckets.length - 1].slice(5)}
            </text>
          </>
        )}
      </svg>
      <figcaption>{name}</figcaption>
    </figure>
  );
}

export function ConsentStatsPage({ me }: { me: WhoAmI }) {
  const [project, setProject] = useState(() => sessionGet(PROJECT_KEY));
  const [bucket, setBucket] = useState<"day" | "week">("day");
  const [from, setFrom] = useState(() => day(new Date(Date.now() - 29 * 86400e3)));
  const [to, setTo] = useState(() => day(new Date()));
  const [doc, setDoc] = useState<ConsentStats | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (!hasAny(me, ["compliance", "analyst"])) return <Forbidden roles={["compliance", "analyst"]} />;

  const show = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const p = project.trim();
      sessionSet(PROJECT_KEY, p);
      setDoc(await getJson<ConsentStats>(`/v1/projects/${seg(p)}/consent/stats` + query({ bucket, from, to })));
    } catch (err) {
      setDoc(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  // The series (purpose · notice version) and every bucket that has a row, in order.
  const series = new Map<string, { purpose: string; version: string | null; rows: Map<string, ConsentStatsRow> }>();
  for (const r of doc?.rows ?? []) {
    const key = JSON.stringify([r.purpose, r.noticeVersion]);
    if (!series.has(key)) series.set(key, { purpose: r.purpose, version: r.noticeVersion, rows: new Map() });
    series.get(key)!.rows.set(r.bucket, r);
  }
  const buckets = doc ? Array.from(new Set([...allBuckets(doc), ...doc.rows.map((r) => r.bucket)])).sort() : [];

  return (
    <section aria-labelledby="stats-title">
      <h1 id="stats-title">{t("stats.title")}</h1>
      <p class="muted">{t("stats.intro")}</p>
      <form class="filters" onSubmit={show}>
        <label>
          {t("common.project")}
          <input id="stats-project" value={project} required onInput={(e) => setProject((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t("stats.bucket")}
          <select id="stats-bucket" value={bucket} onChange={(e) => setBucket((e.target as HTMLSelectElement).value as "day" | "week")}>
            <option value="day">{t("stats.day")}</option>
            <option value="week">{t("stats.week")}</option>
          </select>
        </label>
        <label>
          {t("stats.from")}
          <input id="stats-from" type="date" value={from} required onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t("stats.to")}
          <input id="stats-to" type="date" value={to} required onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" id="stats-show" disabled={busy || !project.trim()}>
          {t("common.show")}
        </button>
      </form>
      <ErrorLine error={error} />
      {doc && doc.rows.length === 0 && <p id="stats-empty">{t("stats.empty")}</p>}
      {doc && doc.rows.length > 0 && (
        <>
          <p class="legend" aria-hidden="true">
            <span class="swatch bar-in" /> {t("stats.optIn")} <span class="swatch bar-out" /> {t("stats.optOut")}
          </p>
          <div class="stats-charts" id="stats-charts">
            {Array.from(series.values()).map((s, i) => (
              <SeriesChart
                id={"stats-chart-" + i}
                name={`${s.purpose} · ${versionText(s.version)}`}
                buckets={buckets}
                rows={s.rows}
              />
            ))}
          </div>
          <Table
            id="stats-table"
            caption={t("stats.caption", { project: doc.project, from: doc.from, to: doc.to, bucket: doc.bucket === "week" ? t("stats.week") : t("stats.day") })}
            head={[
              t("stats.bucketStart"),
              t("stats.purpose"),
              t("stats.version"),
              t("stats.subjects"),
              t("stats.granted"),
              t("stats.denied"),
              t("stats.pending"),
              t("stats.optInRate"),
              t("stats.optOutRate"),
            ]}
          >
            {doc.rows.map((r) => (
              <tr class="stats-row" data-bucket={r.bucket} data-purpose={r.purpose} data-version={r.noticeVersion ?? ""}>
                <td class="mono">{r.bucket}</td>
                <td>{r.purpose}</td>
                <td>{versionText(r.noticeVersion)}</td>
                <td class="num subjects">{fmtNumber(r.subjects)}</td>
                <td class="num granted">{fmtNumber(r.granted)}</td>
                <td class="num denied">{fmtNumber(r.denied)}</td>
                <td class="num pending">{fmtNumber(r.pending)}</td>
                <td class="num opt-in">{pct(r.optInRate)}</td>
                <td class="num opt-out">{pct(r.optOutRate)}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </section>
  );
}
