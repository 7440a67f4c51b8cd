// A subject: identities and each link's provenance, the latest consent per purpose, events by type, traits; the JSON
// copy (export), erasure after a preview and a typed confirmation, and confirming a pending identity link. An analyst
// sees the summary only; the actions need the compliance role.
import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  EraseReceipt,
  EventPage,
  getBlob,
  getJson,
  Link,
  postJson,
  query,
  seg,
  Subject,
  SubjectProject,
  WhoAmI,
} from "./api";
import { currentLang, fmtDate, fmtNumber, t } from "./i18n";
import { go } from "./nav";
import { ConsentTimeline, ErasureDryRun, RestrictPanel, SubjectRightsRequests } from "./subject_rights";
import { asText, ErrorLine, Forbidden, hasAny, Note, Table } from "./ui";

function LinksTable({ links, canConfirm, onConfirmed }: { links: Link[]; canConfirm: boolean; onConfirmed: (msg: string) => void }) {
  const [error, setError] = useState<unknown>(null);
  const confirm = async (l: Link) => {
    setError(null);
    try {
      await postJson(`/v1/links/${l.linkId}/confirm`);
      onConfirmed(t("subject.confirmedMsg", { id: l.linkId }));
    } catch (e) {
      setError(e);
    }
  };
  if (links.length === 0) return null;
  return (
    <>
      <ErrorLine error={error} />
      <Table
        caption={t("subject.links")}
        head={[
          "#",
          t("subject.kind"),
          t("subject.from"),
          t("subject.to"),
          t("subject.state"),
          t("subject.followed"),
          t("subject.credential"),
          t("subject.keyId"),
          t("subject.via"),
          t("subject.viaAnon"),
          t("subject.asserted"),
          t("subject.confirmed"),
        ]}
      >
        {links.map((l) => (
          <tr data-link={l.linkId}>
            <td>{l.linkId}</td>
            <td>{l.kind}</td>
            <td class="mono">{l.from}</td>
            <td class="mono">{l.to}</td>
            <td>{l.state}</td>
            <td>{l.followed ? t("common.yes") : t("common.no")}</td>
            <td>{l.credential}</td>
            <td class="mono">{l.keyId}</td>
            <td class="mono">{l.viaMessageId}</td>
            <td class="mono">{l.viaAnonymousId ?? ""}</td>
            <td>{fmtDate(l.assertedAt ?? l.linkedAt)}</td>
            <td>
              {l.confirmedBy ? (
                `${l.confirmedBy} · ${fmtDate(l.confirmedAt)}`
              ) : canConfirm && !l.followed ? (
                <button type="button" class="confirm-link" onClick={() => confirm(l)}>
                  {t("subject.confirm")}
                </button>
              ) : (
                ""
              )}
            </td>
          </tr>
        ))}
      </Table>
    </>
  );
}

function ProjectView({ p, canAct, onChanged }: { p: SubjectProject; canAct: boolean; onChanged: (msg: string) => void }) {
  const traits = Object.entries(p.traits ?? {});
  const types = Object.entries(p.eventsByType ?? {});
  return (
    <section class="project" aria-label={t("subject.projectHead", { project: p.project })}>
      <h2>{t("subject.projectHead", { project: p.project })}</h2>
      <p>
        {t("subject.userId")}: <span class="mono">{p.userId ?? t("common.none")}</span>
      </p>
      <Table caption={t("subject.identities")} head={[t("subject.kind"), t("subject.idCol"), t("subject.source"), t("subject.linkedTo"), t("subject.linkedAt")]}>
        {p.identities.map((i) => (
          <tr>
            <td>{i.kind}</td>
            <td class="mono">{i.id}</td>
            <td>{i.source}</td>
            <td class="mono">{i.linkedTo ?? ""}</td>
            <td>{i.linkedAt ? fmtDate(i.linkedAt) : ""}</td>
          </tr>
        ))}
      </Table>
      <LinksTable links={p.links ?? []} canConfirm={canAct} onConfirmed={onChanged} />
      <Table caption={t("subject.consent")} head={[t("subject.purpose"), t("subject.state"), t("subject.at")]}>
        {p.consent.map((c) => (
          <tr>
            <td>{c.purpose}</td>
            <td>{c.state}</td>
            <td>{fmtDate(c.at)}</td>
          </tr>
        ))}
      </Table>
      <h3>{t("subject.events")}</h3>
      <p>
        {t("subject.eventsSummary", { n: fmtNumber(p.eventCount), first: fmtDate(p.firstSeen), last: fmtDate(p.lastSeen) })}
      </p>
      <Table caption={t("subject.events")} head={[t("subject.eventType"), t("subject.count")]}>
        {types.map(([k, n]) => (
          <tr>
            <td>{k}</td>
            <td>{fmtNumber(n)}</td>
          </tr>
        ))}
      </Table>
      <Table caption={t("subject.traits")} head={[t("subject.trait"), t("subject.value")]}>
        {traits.map(([k, v]) => (
          <tr>
            <td class="mono">{k}</td>
            <td class="mono">{asText(v)}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

const EVENTS_PAGE = 20;

// The subject's events, a page at a time (GET /v1/subjects/{id}/events; compliance).
function EventsPaged({ id, project }: { id: string; project: string }) {
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<EventPage | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setPage(null);
    getJson<EventPage>(`/v1/subjects/${seg(id)}/events` + query({ project, offset, limit: EVENTS_PAGE })).then(setPage, setError);
  }, [id, project, offset]);
  if (error) return <ErrorLine error={error} />;
  if (!page) return <p>{t("common.loading")}</p>;
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">{t("subject.eventList")}</h2>
      <Table
        id="events-table"
        caption={t("subject.eventPage", { from: offset + 1, to: offset + page.events.length })}
        head={[t("subject.at"), t("common.project"), t("subject.eventType"), t("subject.eventName"), t("subject.purpose"), "userId", "anonymousId", t("subject.properties")]}
      >
        {page.events.map((e) => (
          <tr>
            <td>{fmtDate(e.timestamp)}</td>
            <td>{e.project}</td>
            <td>{e.type}</td>
            <td class="mono">{e.name ?? ""}</td>
            <td>{e.purpose}</td>
            <td class="mono">{e.userId ?? ""}</td>
            <td class="mono">{e.anonymousId ?? ""}</td>
            <td class="mono">{asText(e.event["properties"] ?? e.event["traits"] ?? "")}</td>
          </tr>
        ))}
      </Table>
      <div class="pager">
        <button type="button" id="events-prev" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - EVENTS_PAGE))}>
          {t("common.prev")}
        </button>
        <button type="button" id="events-next" disabled={!page.more} onClick={() => setOffset(offset + EVENTS_PAGE)}>
          {t("common.next")}
        </button>
      </div>
    </section>
  );
}

function safeFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64) || "subject";
}

function ErasePanel({ subject, project, onErased }: { subject: Subject; project: string; onErased: (r: EraseReceipt) => void }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = new Set<string>();
  for (const p of subject.projects) for (const i of p.identities) ids.add(i.id);
  const erase = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onErased(await postJson<EraseReceipt>(`/v1/subjects/${seg(subject.subject)}/erase` + query({ project })));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="erase" id="erase-panel" aria-labelledby="erase-title">
      <h2 id="erase-title">{t("subject.erasePreview")}</h2>
      <p>{t("subject.erasePreviewNote")}</p>
      <ErasureDryRun id={subject.subject} project={project} />
      <ul id="erase-preview">
        {subject.projects.map((p) => (
          <li>
            {t("subject.previewProject", {
              project: p.project,
              events: fmtNumber(p.eventCount),
              ids: p.identities.length,
              links: (p.links ?? []).length,
              consent: p.consent.length,
              traits: Object.keys(p.traits ?? {}).length,
            })}
          </li>
        ))}
      </ul>
      <ul class="ids">
        {Array.from(ids).map((i) => (
          <li class="mono">{i}</li>
        ))}
      </ul>
      <form onSubmit={erase}>
        <label for="erase-confirm">{t("subject.typeToConfirm", { id: subject.subject })}</label>
        <input id="erase-confirm" autocomplete="off" spellcheck={false} value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} />
        <button type="submit" class="danger" id="erase-submit" disabled={busy || typed !== subject.subject}>
          {t("subject.eraseNow")}
        </button>
      </form>
      <ErrorLine error={error} />
    </section>
  );
}

export function SubjectPage({ me, params }: { me: WhoAmI; params: URLSearchParams }) {
  const id = params.get("id") ?? "";
  const project = params.get("project") ?? "";
  const [idInput, setIdInput] = useState(id);
  const [projectInput, setProjectInput] = useState(project);
  const [subject, setSubject] = useState<Subject | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState("");
  const [erasing, setErasing] = useState(false);
  const [restricting, setRestricting] = useState(false);
  const [receipt, setReceipt] = useState<EraseReceipt | null>(null);
  const [generation, setGeneration] = useState(0);
  const allowed = hasAny(me, ["compliance", "analyst"]);
  const canAct = hasAny(me, ["compliance"]);

  useEffect(() => {
    // Another subject: what was said about the last one goes.
    setMessage("");
    setReceipt(null);
  }, [id, project]);
  useEffect(() => {
    setIdInput(id);
    setProjectInput(project);
    setSubject(null);
    setError(null);
    setErasing(false);
    if (!id || !allowed) return;
    getJson<Subject>(`/v1/subjects/${seg(id)}` + query({ project })).then(setSubject, setError);
  }, [id, project, generation]);
  if (!allowed) return <Forbidden roles={["compliance", "analyst"]} />;

  const exportJson = async (format = "json") => {
    setError(null);
    try {
      const lang = currentLang() === "zh" ? "zh-CN" : "en";
      const { blob } = await getBlob(
        `/v1/subjects/${seg(id)}/export` + query(format === "json" ? { project } : { project, format, lang }),
      );
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `ferry-export-${safeFileName(id)}.${format}`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      setMessage(t("subject.exported"));
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section aria-labelledby="subject-title">
      <h1 id="subject-title">{t("subject.title")}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setMessage("");
          setReceipt(null);
          go("subject", projectInput ? { id: idInput, project: projectInput } : { id: idInput });
        }}
      >
        <label>
          {t("subject.id")}
          <input id="subject-id" value={idInput} required spellcheck={false} onInput={(e) => setIdInput((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t("common.projectAny")}
          <input id="subject-project" value={projectInput} spellcheck={false} onInput={(e) => setProjectInput((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" id="subject-find">
          {t("subject.find")}
        </button>
      </form>
      {message && <Note id="subject-message">{message}</Note>}
      {receipt && (
        <div class="receipt" id="erase-receipt" role="status">
          <p>{t("subject.erased", { id: receipt.requestId })}</p>
          <ul>
            {Object.entries(receipt.erased).map(([k, n]) => (
              <li>
                {k}: {fmtNumber(n)}
              </li>
            ))}
            <li>{t("subject.suppressed", { n: receipt.idsSuppressed })}</li>
          </ul>
        </div>
      )}
      {error instanceof ApiError && error.status === 404 ? <p id="subject-notfound">{t("subject.notFound")}</p> : <ErrorLine error={error} />}
      {id && !subject && !error && !receipt && <p>{t("common.loading")}</p>}
      {subject && (
        <>
          {canAct && (
            <div class="toolbar">
              <button type="button" id="export-json" onClick={() => exportJson()}>
                {t("subject.export")}
              </button>
              <button type="button" id="export-html" onClick={() => exportJson("html")}>
                {t("sr.exportHtml")}
              </button>
              <button type="button" id="export-csv" onClick={() => exportJson("csv")}>
                {t("sr.exportCsv")}
              </button>
              <button type="button" id="restrict-open" aria-expanded={restricting} onClick={() => setRestricting(!restricting)}>
                {restricting ? t("common.cancel") : t("sr.open")}
              </button>
              <button type="button" id="erase-open" class="danger" aria-expanded={erasing} onClick={() => setErasing(!erasing)}>
                {erasing ? t("common.cancel") : t("subject.erase")}
              </button>
            </div>
          )}
          {canAct && restricting && (
            <RestrictPanel
              subject={subject.subject}
              project={project || (subject.projects.length === 1 ? subject.projects[0].project : "")}
              purposes={Array.from(new Set(subject.projects.flatMap((p) => p.consent.map((c) => c.purpose))))}
              onFiled={(msg) => {
                setRestricting(false);
                setMessage(msg);
                setGeneration(generation + 1);
              }}
            />
          )}
          {canAct && erasing && (
            <ErasePanel
              subject={subject}
              project={project}
              onErased={(r) => {
                setReceipt(r);
                setErasing(false);
                setSubject(null);
                setError(null);
              }}
            />
          )}
          {subject.projects.map((p) => (
            <ProjectView
              p={p}
              canAct={canAct}
              onChanged={(msg) => {
                setMessage(msg);
                setGeneration(generation + 1);
              }}
            />
          ))}
          {canAct && (
            <section aria-labelledby="subject-rights-title">
              <h2 id="subject-rights-title">{t("sr.requests")}</h2>
              <SubjectRightsRequests
                subject={subject.subject}
                generation={generation}
                onChanged={(msg) => {
                  setMessage(msg);
                  setGeneration(generation + 1);
                }}
              />
            </section>
          )}
          {canAct && <ConsentTimeline key={id + project} id={id} project={project} />}
          {canAct && <EventsPaged id={id} project={project} />}
        </>
      )}
    </section>
  );
}
