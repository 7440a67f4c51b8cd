// The purpose and processing registry of a project (GET/PUT /v1/projects/{project}/registry; read: compliance or
// operator, edit: compliance): the purposes with their legal basis, data categories, retention, recipients, transfers
// and the effect of withdrawing consent; the records of processing rendered from it (.../registry/records, JSON shown
// here, HTML and Markdown downloaded) and the impact-assessment inputs; the project's settings the admin API has:
// each purpose's retention (retentionDays, applied by the retention job) and the restriction mode (compliance).
// The project-wide maximum event age and consent-keep days have no admin API (ferryctl projects set-retention /
// set-consent-keep, offline); the consent statistics (conscol) plug in as their own page next to this one.
import { useEffect, useState } from "preact/hooks";
import { ApiError, fileSafe, getBlob, getJson, putJson, query, saveBlob, seg, WhoAmI } from "./api";
import { fmtDate, t } from "./i18n";
import { useAction } from "./request_actions";
import { ErrorLine, Forbidden, hasAny, Note, sessionGet, sessionSet, Table } from "./ui";

interface Transfer {
  destination: string;
  safeguard?: string;
}
interface Purpose {
  id: string;
  name?: string;
  description: string;
  legalBasis: string;
  dataCategories: string[];
  retentionDays?: number;
  recipients?: string[];
  transfers?: Transfer[];
  withdrawalEffect?: string;
  [other: string]: unknown;
}
interface RegistryDoc {
  project: string;
  updatedAt: string | null;
  registry: { purposes: Purpose[]; [other: string]: unknown };
}
interface Records {
  generatedAt: string;
  activities: {
    purpose: string;
    name: string;
    legalBasis: string;
    dataCategories: string[];
    recipients: string[];
    transfers: Transfer[];
    retentionDays: number | null;
  }[];
}

const LEGAL_BASES = [
  "consent",
  "contract",
  "legal_obligation",
  "vital_interests",
  "public_task",
  "legitimate_interests",
  "hr_management",
  "public_health_emergency",
  "news_reporting",
  "publicly_disclosed",
  "statutory",
];
const PROJECT_KEY = "ferry.console.project";
const list = (s: string) => s.split(",").map((x) => x.trim()).filter((x) => x);
const transfersText = (ts: Transfer[] | undefined) =>
  (ts ?? []).map((x) => (x.safeguard ? `${x.destination} | ${x.safeguard}` : x.destination)).join("\n");
function parseTransfers(s: string): Transfer[] {
  return s
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l)
    .map((l) => {
      const [destination, safeguard] = l.split("|", 2).map((x) => x.trim());
      return safeguard ? { destination, safeguard } : { destination };
    });
}

interface Draft {
  id: string;
  name: string;
  description: string;
  legalBasis: string;
  dataCategories: string;
  retentionDays: string;
  recipients: string;
  transfers: string;
  withdrawalEffect: string;
}
const draftOf = (p: Purpose | null): Draft => ({
  id: p?.id ?? "",
  name: p?.name ?? "",
  description: p?.description ?? "",
  legalBasis: p?.legalBasis ?? "consent",
  dataCategories: (p?.dataCategories ?? []).join(", "),
  retentionDays: p?.retentionDays ? String(p.retentionDays) : "",
  recipients: (p?.recipients ?? []).join(", "),
  transfers: transfersText(p?.transfers),
  withdrawalEffect: p?.withdrawalEffect ?? "",
});

// The purpose as the registry stores it: the fields this form edits replaced, every other field kept.
function purposeOf(d: Draft, before: Purpose | null): Purpose {
  const p: Purpose = { ...(before ?? {}), id: d.id.trim(), description: d.description, legalBasis: d.legalBasis, dataCategories: list(d.dataCategories) };
  if (d.name.trim()) p.name = d.name.trim();
  else delete p.name;
  if (d.retentionDays.trim()) p.retentionDays = Number(d.retentionDays);
  else delete p.retentionDays;
  p.recipients = list(d.recipients);
  p.transfers = parseTransfers(d.transfers);
  if (d.withdrawalEffect.trim()) p.withdrawalEffect = d.withdrawalEffect;
  else delete p.withdrawalEffect;
  return p;
}

function PurposeForm({ before, onSave, onCancel }: { before: Purpose | null; onSave: (p: Purpose) => Promise<void>; onCancel: () => void }) {
  const [d, setD] = useState<Draft>(draftOf(before));
  const { error, busy, run } = useAction();
  const field = (k: keyof Draft, label: string, opts: { area?: boolean; type?: string; required?: boolean } = {}) => {
    const id = "purpose-" + k;
    const onInput = (e: Event) => setD({ ...d, [k]: (e.target as HTMLInputElement).value });
    return (
      <label for={id}>
        {label}
        {opts.area ? (
          <textarea id={id} rows={3} value={d[k]} required={opts.required} onInput={onInput} />
        ) : (
          <input id={id} type={opts.type ?? "text"} value={d[k]} required={opts.required} readOnly={k === "id" && before !== null} spellcheck={false} onInput={onInput} />
        )}
      </label>
    );
  };
  const submit = (e: Event) => {
    e.preventDefault();
    run(() => onSave(purposeOf(d, before)));
  };
  return (
    <form class="purpose-form" id="purpose-form" onSubmit={submit} aria-labelledby="purpose-form-title">
      <h3 id="purpose-form-title">{before ? t("reg.editing", { id: before.id }) : t("reg.adding")}</h3>
      {field("id", t("reg.id"), { required: true })}
      {field("name", t("reg.name"))}
      {field("description", t("reg.description"), { area: true, required: true })}
      <label for="purpose-legalBasis">
        {t("reg.legalBasis")}
        <select id="purpose-legalBasis" value={d.legalBasis} onChange={(e) => setD({ ...d, legalBasis: (e.target as HTMLSelectElement).value })}>
          {LEGAL_BASES.map((b) => (
            <option value={b}>{b}</option>
          ))}
        </select>
      </label>
      {field("dataCategories", t("reg.categories"), { required: true })}
      {field("retentionDays", t("reg.retention"), { type: "number" })}
      {field("recipients", t("reg.recipients"))}
      {field("transfers", t("reg.transfers"), { area: true })}
      {field("withdrawalEffect", t("reg.withdrawal"), { area: true })}
      <div class="toolbar">
        <button type="submit" class="approve" id="purpose-save" disabled={busy}>
          {t("reg.save")}
        </button>
        <button type="button" onClick={onCancel}>
          {t("common.cancel")}
        </button>
      </div>
      <ErrorLine error={error} />
    </form>
  );
}

function RestrictionMode({ project }: { project: string }) {
  const [mode, setMode] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    setMode(null);
    getJson<{ mode: string }>(`/v1/projects/${seg(project)}/restriction-mode`).then((d) => setMode(d.mode), setError);
  }, [project]);
  const set = async (m: string) => {
    setError(null);
    setSaved(false);
    try {
      setMode((await putJson<{ mode: string }>(`/v1/projects/${seg(project)}/restriction-mode`, { mode: m })).mode);
      setSaved(true);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <label>
        {t("reg.restrictionMode")}
        <select id="restriction-mode" value={mode ?? ""} disabled={mode === null} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
          <option value="quarantine">{t("reg.quarantine")}</option>
          <option value="refuse">{t("reg.refuse")}</option>
        </select>
      </label>
      {saved && <Note id="restriction-mode-saved">{t("reg.modeSaved", { mode: mode ?? "" })}</Note>}
      <ErrorLine error={error} />
    </div>
  );
}

export function RegistryPage({ me }: { me: WhoAmI }) {
  const [projectInput, setProjectInput] = useState(() => sessionGet(PROJECT_KEY));
  const [project, setProject] = useState(projectInput);
  const [doc, setDoc] = useState<RegistryDoc | null>(null);
  const [records, setRecords] = useState<Records | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<Purpose | null | "new">(null);
  const [message, setMessage] = useState("");
  const [generation, setGeneration] = useState(0);
  const allowed = hasAny(me, ["compliance", "operator"]);
  const canEdit = hasAny(me, ["compliance"]);
  useEffect(() => {
    setDoc(null);
    setRecords(null);
    setError(null);
    if (!allowed || !project) return;
    getJson<RegistryDoc>(`/v1/projects/${seg(project)}/registry`).then(setDoc, setError);
    getJson<Records>(`/v1/projects/${seg(project)}/registry/records`).then(setRecords, setError);
  }, [project, generation]);
  if (!allowed) return <Forbidden roles={["compliance", "operator"]} />;

  const save = async (p: Purpose) => {
    if (!doc) return;
    const before = editing === "new" ? null : editing;
    const now = doc.registry.purposes ?? [];
    const purposes = before ? now.map((x) => (x.id === before.id ? p : x)) : [...now, p];
    await putJson<RegistryDoc>(`/v1/projects/${seg(project)}/registry`, { ...doc.registry, purposes });
    setEditing(null);
    setMessage(t("reg.saved", { id: p.id }));
    setGeneration(generation + 1);
  };
  const download = async (view: "records" | "impact", format: "html" | "md") => {
    setError(null);
    try {
      const { blob } = await getBlob(`/v1/projects/${seg(project)}/registry/${view}` + query({ format }));
      saveBlob(blob, `ferry-${view}-${fileSafe(project)}.${format}`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="registry-title">
      <h1 id="registry-title">{t("reg.title")}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const p = projectInput.trim();
          sessionSet(PROJECT_KEY, p);
          setMessage("");
          setEditing(null);
          setProject(p);
        }}
      >
        <label>
          {t("common.project")}
          <input id="registry-project" value={projectInput} required spellcheck={false} onInput={(e) => setProjectInput((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" id="registry-show">
          {t("common.show")}
        </button>
      </form>
      {message && <Note id="registry-message">{message}</Note>}
      {error instanceof ApiError && error.status === 404 ? <p>{t("reg.noProject")}</p> : <ErrorLine error={error} />}
      {doc && (
        <>
          <p class="muted">{doc.updatedAt ? t("reg.updated", { at: fmtDate(doc.updatedAt) }) : t("reg.never")}</p>
          <Table
            id="purposes-table"
            caption={t("reg.purposes", { project: doc.project })}
            head={[t("reg.id"), t("reg.legalBasis"), t("reg.categoriesCol"), t("reg.retention"), t("reg.recipientsCol"), t("reg.transfersCol"), t("reg.withdrawal"), t("requests.actions")]}
          >
            {(doc.registry.purposes ?? []).map((p) => (
              <tr data-purpose={p.id}>
                <td>
                  <span class="mono">{p.id}</span>
                  {p.name && <div>{p.name}</div>}
                  <div class="muted">{p.description}</div>
                </td>
                <td>{p.legalBasis}</td>
                <td>{p.dataCategories.join(", ")}</td>
                <td>{p.retentionDays ? t("reg.days", { n: p.retentionDays }) : t("reg.noLimit")}</td>
                <td>{(p.recipients ?? []).join(", ")}</td>
                <td>{transfersText(p.transfers)}</td>
                <td>{p.withdrawalEffect ?? ""}</td>
                <td class="actions">
                  {canEdit && (
                    <button type="button" class="edit-purpose" onClick={() => setEditing(p)}>
                      {t("reg.edit")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
          {canEdit && editing === null && (
            <button type="button" id="purpose-add" onClick={() => setEditing("new")}>
              {t("reg.add")}
            </button>
          )}
          {canEdit && editing !== null && (
            <PurposeForm key={editing === "new" ? "new" : editing.id} before={editing === "new" ? null : editing} onSave={save} onCancel={() => setEditing(null)} />
          )}
          <h2>{t("reg.records")}</h2>
          <div class="toolbar">
            <button type="button" id="records-html" onClick={() => download("records", "html")}>
              {t("reg.recordsHtml")}
            </button>
            <button type="button" id="records-md" onClick={() => download("records", "md")}>
              {t("reg.recordsMd")}
            </button>
            <button type="button" id="impact-html" onClick={() => download("impact", "html")}>
              {t("reg.impactHtml")}
            </button>
          </div>
          {records && (
            <Table
              id="records-table"
              caption={t("reg.recordsAt", { at: fmtDate(records.generatedAt) })}
              head={[t("reg.id"), t("reg.legalBasis"), t("reg.categoriesCol"), t("reg.recipientsCol"), t("reg.transfersCol"), t("reg.retention")]}
            >
              {records.activities.map((a) => (
                <tr>
                  <td>
                    <span class="mono">{a.purpose}</span> {a.name}
                  </td>
                  <td>{a.legalBasis}</td>
                  <td>{a.dataCategories.join(", ")}</td>
                  <td>{a.recipients.join(", ")}</td>
                  <td>{transfersText(a.transfers)}</td>
                  <td>{a.retentionDays ? t("reg.days", { n: a.retentionDays }) : t("reg.noLimit")}</td>
                </tr>
              ))}
            </Table>
          )}
          <h2>{t("reg.settings")}</h2>
          <p class="muted">{t("reg.settingsNote")}</p>
          {canEdit && <RestrictionMode project={project} />}
        </>
      )}
    </section>
  );
}
