// Credentials (role operator): write and server keys, admin tokens; revoke one, set or clear its expiry
// (GET /v1/keys, POST /v1/keys/{write-keys|admin-tokens}/{id}/revoke|expiry). The API never gives a secret back.
import { useEffect, useState } from "preact/hooks";
import { getJson, postJson, WhoAmI } from "./api";
import { fmtDate, t } from "./i18n";
import { ErrorLine, Forbidden, hasAny, Note, Table } from "./ui";

interface Credential {
  id: number;
  prefix: string;
  createdAt: string;
  revokedAt: string | null;
  expiresAt: string | null;
  project?: string;
  kind?: string;
  name?: string;
  roles?: string[];
}
interface KeyList {
  writeKeys: Credential[];
  adminTokens: Credential[];
}
type Kind = "write-keys" | "admin-tokens";

function Row({ c, kind, me, onChanged }: { c: Credential; kind: Kind; me: WhoAmI; onChanged: (msg: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [expiry, setExpiry] = useState("");
  const [error, setError] = useState<unknown>(null);
  const base = `/v1/keys/${kind}/${c.id}`;
  const revoked = c.revokedAt !== null;
  const expired = c.expiresAt !== null && Date.parse(c.expiresAt) <= Date.now();
  const act = async (what: "revoke" | "expiry", body: unknown, msg: string) => {
    setError(null);
    try {
      await postJson(`${base}/${what}`, body);
      onChanged(msg);
    } catch (e) {
      setError(e);
    }
  };
  const label = kind === "write-keys" ? `${c.kind ?? ""} ${c.prefix}` : `${c.name ?? ""} (${c.prefix})`;
  return (
    <tr data-credential={`${kind}-${c.id}`} class={revoked || expired ? "inactive" : ""}>
      <td class="mono">{c.prefix}</td>
      <td>{kind === "write-keys" ? c.project : c.name}</td>
      <td>{kind === "write-keys" ? c.kind : (c.roles ?? []).join(", ")}</td>
      <td>{fmtDate(c.createdAt)}</td>
      <td>{c.expiresAt ? fmtDate(c.expiresAt) : t("keys.never")}</td>
      <td>{revoked ? t("keys.revokedAt", { at: fmtDate(c.revokedAt) }) : expired ? t("keys.expired") : t("keys.active")}</td>
      <td class="actions">
        {!revoked && (
          <>
            {!confirming ? (
              <button type="button" class="reject revoke" onClick={() => setConfirming(true)}>
                {t("keys.revoke")}
              </button>
            ) : (
              <button type="button" class="danger confirm-revoke" onClick={() => act("revoke", {}, t("keys.revoked", { what: label }))}>
                {t("keys.confirmRevoke", { what: c.prefix })}
              </button>
            )}
            {c.prefix === me.prefix && confirming && <div class="error">{t("keys.yourOwn")}</div>}
            <form
              class="inline"
              onSubmit={(e) => {
                e.preventDefault();
                act("expiry", { expiresAt: new Date(expiry).toISOString() }, t("keys.expirySet", { what: label }));
              }}
            >
              <label for={`exp-${kind}-${c.id}`}>{t("keys.expiresAt", { what: c.prefix })}</label>
              <input id={`exp-${kind}-${c.id}`} class="expiry" type="datetime-local" value={expiry} required onInput={(e) => setExpiry((e.target as HTMLInputElement).value)} />
              <button type="submit" class="set-expiry" disabled={!expiry}>
                {t("keys.setExpiry")}
              </button>
              {c.expiresAt && (
                <button type="button" class="clear-expiry" onClick={() => act("expiry", { expiresAt: null }, t("keys.expiryCleared", { what: label }))}>
                  {t("keys.clearExpiry")}
                </button>
              )}
            </form>
          </>
        )}
        <ErrorLine error={error} />
      </td>
    </tr>
  );
}

export function KeysPage({ me }: { me: WhoAmI }) {
  const [list, setList] = useState<KeyList | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState("");
  const [generation, setGeneration] = useState(0);
  const allowed = hasAny(me, ["operator"]);
  useEffect(() => {
    if (allowed) getJson<KeyList>("/v1/keys").then(setList, setError);
  }, [generation]);
  if (!allowed) return <Forbidden roles={["operator"]} />;
  const changed = (msg: string) => {
    setMessage(msg);
    setGeneration(generation + 1);
  };
  const head = (second: string, third: string) => [
    t("keys.prefix"),
    second,
    third,
    t("keys.created"),
    t("keys.expires"),
    t("keys.state"),
    t("requests.actions"),
  ];
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">{t("keys.title")}</h1>
      <p class="muted">{t("keys.intro")}</p>
      {message && <Note id="keys-message">{message}</Note>}
      <ErrorLine error={error} />
      {!list && !error && <p>{t("common.loading")}</p>}
      {list && (
        <>
          <Table id="write-keys" caption={t("keys.writeKeys")} head={head(t("common.project"), t("keys.kind"))}>
            {list.writeKeys.map((c) => (
              <Row key={`w${c.id}${c.revokedAt}${c.expiresAt}`} c={c} kind="write-keys" me={me} onChanged={changed} />
            ))}
          </Table>
          <Table id="admin-tokens" caption={t("keys.adminTokens")} head={head(t("keys.name"), t("keys.roles"))}>
            {list.adminTokens.map((c) => (
              <Row key={`a${c.id}${c.revokedAt}${c.expiresAt}`} c={c} kind="admin-tokens" me={me} onChanged={changed} />
            ))}
          </Table>
        </>
      )}
    </section>
  );
}
