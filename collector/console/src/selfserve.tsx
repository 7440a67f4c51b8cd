// The self-service page for data subjects (docs/CONSOLE.md "The self-service page"): served by ferry-collector at
// /self-service/ when it runs with --public-requests on, talking only to the public intake calls (docs/PROTOCOL.md
// "Public intake"). A person files a request, keeps its reference and secret (in this tab's sessionStorage), types
// the code their app shows, checks the status, and downloads their copy once it is ready. No credential, no cookie;
// everything from the collector is rendered as text.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { SelfLang, currentSelfLang, setSelfLang, st } from "./selfserve_i18n";

const KINDS = ["access", "erasure", "correction", "portability", "restriction", "objection"];
const SAVED = "ferry.selfserve.request";

interface Status {
  reference: string;
  kind: string;
  state: string;
  receivedAt: string;
  dueAt: string;
  identified: boolean;
  codeAttemptsLeft: number;
  refusalReason: string | null;
  copyReady: boolean;
  delivered: boolean;
  secret?: string;
}
interface Saved {
  reference: string;
  secret: string;
}

async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await res.text();
  let doc: any = null;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = null;
  }
  if (!res.ok) {
    const msg = doc && typeof doc.error === "string" ? doc.error : text;
    throw new Error(`${res.status}: ${msg}`);
  }
  return doc as T;
}

function when(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  return d.toLocaleString(currentSelfLang() === "zh" ? "zh-CN" : undefined);
}

function loadSaved(): Saved | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(SAVED) ?? "null");
    return s && typeof s.reference === "string" && typeof s.secret === "string" ? s : null;
  } catch {
    return null;
  }
}

function FileForm({ onFiled }: { onFiled: (s: Status) => void }) {
  const params = new URLSearchParams(location.search);
  const [kind, setKind] = useState("access");
  const [project, setProject] = useState(params.get("project") ?? "");
  const [contact, setContact] = useState("");
  const [identifier, setIdentifier] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const lang = currentSelfLang() === "zh" ? "zh-CN" : "en";
      onFiled(await post<Status>("/v1/public/requests", { kind, project, contact, identifier, lang }));
    } catch (err) {
      setError(st("error", { error: String((err as Error).message) }));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} aria-labelledby="file-title">
      <h2 id="file-title">{st("file.title")}</h2>
      <p>{st("file.intro")}</p>
      <label>
        {st("file.kind")}
        <select id="kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
          {KINDS.map((k) => (
            <option value={k} key={k}>
              {st(`kind.${k}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {st("file.project")}
        <input id="project" required value={project} onInput={(e) => setProject((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        {st("file.contact")}
        <input id="contact" required value={contact} onInput={(e) => setContact((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        {st("file.identifier")}
        <input id="identifier" value={identifier} onInput={(e) => setIdentifier((e.target as HTMLInputElement).value)} />
      </label>
      <button id="file" type="submit" disabled={busy}>
        {st("file.submit")}
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function StatusView({ saved, fresh }: { saved: Saved; fresh: boolean }) {
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState("");
  const [code, setCode] = useState("");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const refresh = async () => {
    setError("");
    try {
      setStatus(await post<Status>(`/v1/public/requests/${encodeURIComponent(saved.reference)}/status`, { secret: saved.secret }));
    } catch (err) {
      setError(st("error", { error: String((err as Error).message) }));
    }
  };
  useEffect(() => {
    void refresh();
  }, [saved.reference, saved.secret]);
  const verify = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      setStatus(
        await post<Status>(`/v1/public/requests/${encodeURIComponent(saved.reference)}/verify`, {
          secret: saved.secret,
          code,
        }),
      );
      setCode("");
      setNote(st("verify.done"));
    } catch (err) {
      setError(st("error", { error: String((err as Error).message) }));
    } finally {
      setBusy(false);
    }
  };
  const download = async () => {
    setBusy(true);
    setError("");
    try {
      const link = await post<{ url: string }>(`/v1/public/requests/${encodeURIComponent(saved.reference)}/copy-link`, {
        secret: saved.secret,
      });
      const res = await fetch(link.url, { credentials: "omit", cache: "no-store" });
      if (!res.ok) throw new Error(String(res.status));
      const blob = await res.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `${saved.reference}.json`;
      a.textContent = st("copy.save");
      a.id = "saved-copy";
      const holder = document.getElementById("copy-holder");
      if (holder) {
        holder.replaceChildren(a);
        a.click();
      }
      setNote(st("copy.done"));
      await refresh();
    } catch (err) {
      setError(st("error", { error: String((err as Error).message) }));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="status-title">
      <h2 id="status-title">{st("status.title")}</h2>
      {fresh && (
        <div class="keep" role="status">
          <p>{st("status.keep")}</p>
          <dl>
            <dt>{st("status.reference")}</dt>
            <dd id="new-reference">{saved.reference}</dd>
            <dt>{st("status.secret")}</dt>
            <dd id="new-secret">{saved.secret}</dd>
          </dl>
        </div>
      )}
      {status && (
        <dl id="status">
          <dt>{st("status.reference")}</dt>
          <dd id="reference">{status.reference}</dd>
          <dt>{st("status.kind")}</dt>
          <dd>{st(`kind.${status.kind}`)}</dd>
          <dt>{st("status.state")}</dt>
          <dd id="state" data-state={status.state}>
            {st(`state.${status.state}`)}
          </dd>
          <dt>{st("status.received")}</dt>
          <dd>{when(status.receivedAt)}</dd>
          <dt>{st("status.due")}</dt>
          <dd>{when(status.dueAt)}</dd>
          {status.refusalReason && (
            <>
              <dt>{st("status.reason")}</dt>
              <dd id="reason">{status.refusalReason}</dd>
            </>
          )}
        </dl>
      )}
      <button id="refresh" type="button" onClick={() => void refresh()}>
        {st("status.refresh")}
      </button>
      {status && status.state === "received" && !status.identified && (
        <form onSubmit={verify} aria-labelledby="verify-title">
          <h3 id="verify-title">{st("verify.title")}</h3>
          <p>{st("verify.intro", { left: String(status.codeAttemptsLeft) })}</p>
          <label>
            {st("verify.code")}
            <input
              id="code"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              value={code}
              onInput={(e) => setCode((e.target as HTMLInputElement).value)}
            />
          </label>
          <button id="verify" type="submit" disabled={busy}>
            {st("verify.submit")}
          </button>
        </form>
      )}
      {status && status.copyReady && (
        <p>
          <button id="download" type="button" disabled={busy} onClick={() => void download()}>
            {st("copy.download")}
          </button>
        </p>
      )}
      <div id="copy-holder" />
      {note && (
        <p class="ok" role="status">
          {note}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function LookupForm({ onLookup }: { onLookup: (s: Saved) => void }) {
  const [reference, setReference] = useState("");
  const [secret, setSecret] = useState("");
  const submit = (e: Event) => {
    e.preventDefault();
    onLookup({ reference: reference.trim(), secret: secret.trim() });
  };
  return (
    <form onSubmit={submit} aria-labelledby="lookup-title">
      <h2 id="lookup-title">{st("lookup.title")}</h2>
      <label>
        {st("status.reference")}
        <input id="lookup-reference" required value={reference} onInput={(e) => setReference((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        {st("status.secret")}
        <input id="lookup-secret" required value={secret} onInput={(e) => setSecret((e.target as HTMLInputElement).value)} />
      </label>
      <button id="lookup" type="submit">
        {st("lookup.submit")}
      </button>
    </form>
  );
}

function App() {
  const [lang, setLangState] = useState<SelfLang>(currentSelfLang());
  const [saved, setSaved] = useState<Saved | null>(loadSaved());
  const [fresh, setFresh] = useState(false);
  const keep = (s: Saved, isNew: boolean) => {
    sessionStorage.setItem(SAVED, JSON.stringify(s));
    setSaved(s);
    setFresh(isNew);
  };
  const switchLang = (l: SelfLang) => {
    setSelfLang(l);
    setLangState(l);
  };
  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = st("app.title");
  }, [lang]);
  return (
    <>
      <header class="top">
        <span class="brand">{st("app.title")}</span>
        <span class="lang">
          <button id="lang-en" type="button" aria-pressed={lang === "en"} onClick={() => switchLang("en")}>
            English
          </button>
          <button id="lang-zh" type="button" aria-pressed={lang === "zh"} onClick={() => switchLang("zh")}>
            中文
          </button>
        </span>
      </header>
      <main id="main" class="selfserve">
        <h1>{st("app.title")}</h1>
        <p>{st("app.intro")}</p>
        {saved && <StatusView saved={saved} fresh={fresh} />}
        {saved && (
          <p>
            <button
              id="forget-request"
              type="button"
              onClick={() => {
                sessionStorage.removeItem(SAVED);
                setSaved(null);
                setFresh(false);
              }}
            >
              {st("status.another")}
            </button>
          </p>
        )}
        {!saved && (
          <>
            <FileForm onFiled={(s) => keep({ reference: s.reference, secret: s.secret ?? "" }, true)} />
            <LookupForm onLookup={(s) => keep(s, false)} />
          </>
        )}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
