// The officer's console (docs/CONSOLE.md): a single page served by ferry-collector at /console/, talking only to the
// admin API with the officer's token. Pages are chosen by the URL fragment (#/requests, #/subject?id=..., ...), so the
// collector serves one index.html and the fragment never reaches a server log.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getJson, getToken, setToken, WhoAmI } from "./api";
import { AuditPage } from "./audit";
import { currentLang, Lang, setLang, t } from "./i18n";
import { InsightPage } from "./insight";
import { KeysPage } from "./keys";
import { RequestsPage } from "./requests";
import { SubjectPage } from "./subject";
import { errorText, hasAny } from "./ui";
import { RegistryPage } from "./registry";
import { OutboxPage } from "./outbox";
import { ConsentStatsPage } from "./consent_stats";

interface Route {
  page: string;
  params: URLSearchParams;
}
function parseRoute(): Route {
  const h = location.hash.replace(/^#\/?/, "");
  const [page, q] = h.split("?", 2);
  return { page: page || "", params: new URLSearchParams(q ?? "") };
}

function Login({ onLogin }: { onLogin: (me: WhoAmI) => void }) {
  const [token, setTok] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const me = await getJson<WhoAmI>("/v1/whoami", token.trim());
      setToken(token.trim());
      onLogin(me);
    } catch (err) {
      setError(t("login.bad", { error: errorText(err) }));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="login" aria-labelledby="login-title">
      <h1 id="login-title">{t("login.title")}</h1>
      <p>{t("login.intro")}</p>
      <form onSubmit={submit}>
        <label for="token">{t("login.token")}</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setTok((e.target as HTMLInputElement).value)}
          required
        />
        <button type="submit" id="login-submit" disabled={busy}>
          {t("login.submit")}
        </button>
      </form>
      {error && (
        <p class="error" role="alert" id="login-error">
          {error}
        </p>
      )}
    </section>
  );
}

function LangSwitch({ onChange }: { onChange: (l: Lang) => void }) {
  return (
    <label class="lang">
      <span>{t("lang.label")}</span>
      <select
        id="lang"
        value={currentLang()}
        onChange={(e) => onChange((e.target as HTMLSelectElement).value as Lang)}
      >
        <option value="en" lang="en">
          English
        </option>
        <option value="zh" lang="zh-CN">
          简体中文
        </option>
      </select>
    </label>
  );
}

interface NavItem {
  page: string;
  label: string;
  show: boolean;
}

function App() {
  const [, setLangState] = useState<Lang>(currentLang());
  const [me, setMe] = useState<WhoAmI | null>(null);
  const [checking, setChecking] = useState(getToken() !== "");
  const [route, setRoute] = useState<Route>(parseRoute());

  // The dictionary switches before the re-render the state change asks for.
  const changeLang = (l: Lang) => {
    setLang(l);
    setLangState(l);
  };
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  useEffect(() => {
    // A token kept from earlier in this tab: ask who it is (it may have been revoked meanwhile).
    if (!getToken()) return;
    getJson<WhoAmI>("/v1/whoami")
      .then(setMe)
      .catch(() => setToken(""))
      .finally(() => setChecking(false));
  }, []);

  const header = (
    <header class="top">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        {t("app.skip")}
      </a>
      <span class="brand">{t("app.title")}</span>
      <LangSwitch onChange={changeLang} />
    </header>
  );
  if (checking) return header;
  if (!me) {
    return (
      <div>
        {header}
        <main id="main" tabIndex={-1}>
          <Login onLogin={setMe} />
        </main>
      </div>
    );
  }

  const items: NavItem[] = [
    { page: "requests", label: t("nav.requests"), show: hasAny(me, ["compliance"]) },
    { page: "subject", label: t("nav.subject"), show: hasAny(me, ["compliance", "analyst"]) },
    { page: "audit", label: t("nav.audit"), show: hasAny(me, ["compliance", "operator"]) },
    { page: "insight", label: t("nav.insight"), show: me.insight && hasAny(me, ["analyst"]) },
    { page: "keys", label: t("nav.keys"), show: hasAny(me, ["operator"]) },
    { page: "registry", label: t("nav.registry"), show: hasAny(me, ["compliance", "operator"]) },
    { page: "outbox", label: t("nav.outbox"), show: hasAny(me, ["compliance", "operator"]) },
    { page: "stats", label: t("nav.stats"), show: hasAny(me, ["compliance", "analyst"]) },
  ].filter((i) => i.show);
  const page = items.some((i) => i.page === route.page) ? route.page : items[0]?.page ?? "";
  const signOut = () => {
    setToken("");
    setMe(null);
  };

  return (
    <div>
      {header}
      <nav class="pages" aria-label={t("nav.label")}>
        <ul>
          {items.map((i) => (
            <li>
              <a href={"#/" + i.page} id={"nav-" + i.page} aria-current={i.page === page ? "page" : undefined}>
                {i.label}
              </a>
            </li>
          ))}
        </ul>
        <span class="who" id="who">
          {t("who.signedin", { name: me.name, prefix: me.prefix, roles: me.roles.join(", ") })}
        </span>
        <button type="button" class="link" id="signout" onClick={signOut}>
          {t("nav.signout")}
        </button>
      </nav>
      <main id="main" tabIndex={-1}>
        {page === "requests" && <RequestsPage me={me} />}
        {page === "subject" && <SubjectPage me={me} params={route.params} />}
        {page === "audit" && <AuditPage me={me} />}
        {page === "insight" && <InsightPage me={me} />}
        {page === "keys" && <KeysPage me={me} />}
        {page === "registry" && <RegistryPage me={me} />}
        {page === "outbox" && <OutboxPage me={me} />}
        {page === "stats" && <ConsentStatsPage me={me} />}
      </main>
    </div>
  );
}

setLang(currentLang());
render(<App />, document.getElementById("app")!);
