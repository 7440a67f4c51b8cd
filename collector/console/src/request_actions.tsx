// The actions on one request of the inbox that came with issue 13's register: approve with the verification evidence
// (POST /v1/requests/{id}/approve {"verification": {method, reference}}), lift a restriction or objection
// (POST /v1/requests/{id}/lift), the request's outbox deliveries per destination (GET /v1/requests/{id}/deliveries),
// and its copy: delivered once (GET /v1/requests/{id}/copy, JSON; the request then completes), and after that the
// officer's HTML / CSV / JSON copies (GET /v1/subjects/{id}/export?format=, audited as a lookup).
// And the due-date extension of an in_progress request (POST /v1/requests/{id}/extend {"days": 1-62, "reason"}: the
// request becomes extended, its dueAt moved and its extension recorded).
import { useEffect, useState } from "preact/hooks";
import { Delivery, fileSafe, getBlob, getJson, postJson, query, RightsRequest, saveBlob, seg } from "./api";
import { currentLang, fmtDate, t } from "./i18n";
import { ErrorLine, Table } from "./ui";

// One action at a time: busy while it runs, its error kept to show.
export function useAction() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

export const isCopyKind = (r: RightsRequest) => r.kind === "access" || r.kind === "portability";
export const canDeliver = (r: RightsRequest) =>
  isCopyKind(r) && (r.state === "in_progress" || r.state === "extended") && !r.subject.startsWith("hash:");
export const hasCopies = (r: RightsRequest) => isCopyKind(r) && r.state === "completed" && !r.subject.startsWith("hash:");
export const canLift = (r: RightsRequest) =>
  (r.kind === "restriction" || r.kind === "objection") && (r.inForce ?? []).length > 0 && !r.lifted;

const purposesText = (p: RightsRequest["purposes"]) =>
  !p || p === "all" || p.length === 0 ? t("ra.allPurposes") : p.join(", ");

// What the register holds about the request beyond its state: evidence, refusal reason, what is in force, lifted.
export function RequestFacts({ r }: { r: RightsRequest }) {
  return (
    <>
      {r.verification && (r.verification.method || r.verification.reference) && (
        <div class="muted verification">
          {t("ra.verifiedBy", {
            method: r.verification.method,
            reference: r.verification.reference,
            who: r.verification.by ?? "",
          })}
        </div>
      )}
      {r.refusalReason && <div class="muted refusal">{t("ra.refusal", { reason: r.refusalReason })}</div>}
      {(r.kind === "restriction" || r.kind === "objection") && (
        <div class="muted">{t("ra.purposes", { purposes: purposesText(r.purposes) })}</div>
      )}
      {(r.inForce ?? []).length > 0 && !r.lifted && <div class="in-force">{t("ra.inForce")}</div>}
      {r.lifted && (
        <div class="muted lifted">{t("ra.lifted", { at: fmtDate(r.lifted.at), who: r.lifted.by, reason: r.lifted.reason })}</div>
      )}
      {r.extension && (
        <div class="muted extension">
          {t("ra.extended", {
            days: r.extension.days,
            at: fmtDate(r.extension.at),
            who: r.extension.by,
            previous: fmtDate(r.extension.previousDue),
            reason: r.extension.reason,
          })}
        </div>
      )}
      {r.delivered && (
        <div class="muted">{t("ra.delivered", { at: fmtDate(r.delivered.at), n: r.delivered.events })}</div>
      )}
    </>
  );
}

// Approve with the evidence of the person's identity: how it was checked and where the evidence is kept.
export function VerifyForm({ r, onDone }: { r: RightsRequest; onDone: (msg: string) => void }) {
  const [method, setMethod] = useState("");
  const [reference, setReference] = useState("");
  const { error, busy, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const done = await postJson<RightsRequest>(`/v1/requests/${seg(r.id)}/approve`, {
        verification: { method: method.trim(), reference: reference.trim() },
      });
      onDone(t("requests.approved", { id: done.id, state: done.state }));
    });
  };
  return (
    <form class="inline verify-form" onSubmit={submit}>
      <label for={"vm-" + r.id}>{t("ra.method")}</label>
      <input id={"vm-" + r.id} class="verify-method" list="verify-methods" maxLength={200} value={method} required onInput={(e) => setMethod((e.target as HTMLInputElement).value)} />
      <datalist id="verify-methods">
        <option value="account_login" />
        <option value="email_code" />
        <option value="id_document" />
        <option value="device_code" />
      </datalist>
      <label for={"vr-" + r.id}>{t("ra.reference")}</label>
      <input id={"vr-" + r.id} class="verify-reference" maxLength={1000} value={reference} required onInput={(e) => setReference((e.target as HTMLInputElement).value)} />
      <button type="submit" class="approve verify-approve" disabled={busy || !method.trim() || !reference.trim()}>
        {t("ra.verifyApprove")}
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

// A move of the request that takes one text: lift (its reason) or complete by hand (its note).
function TextMoveForm({ r, onDone, op }: { r: RightsRequest; onDone: (msg: string) => void; op: "lift" | "complete" }) {
  const [text, setText] = useState("");
  const { error, busy, run } = useAction();
  const lift = op === "lift";
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const done = await postJson<RightsRequest>(`/v1/requests/${seg(r.id)}/${op}`, lift ? { reason: text.trim() } : { note: text.trim() });
      onDone(lift ? t("ra.liftedMsg", { id: done.id }) : t("requests.approved", { id: done.id, state: done.state }));
    });
  };
  return (
    <form class={`inline ${op}-form`} onSubmit={submit}>
      <label for={`${op}-${r.id}`}>{lift ? t("ra.liftReason", { id: r.id }) : t("ra.completeNote", { id: r.id })}</label>
      <input id={`${op}-${r.id}`} class={lift ? "lift-reason" : "complete-note"} maxLength={1000} value={text} required onInput={(e) => setText((e.target as HTMLInputElement).value)} />
      <button type="submit" class={lift ? "danger lift-submit" : "approve complete-submit"} disabled={busy || !text.trim()}>
        {lift ? t("ra.liftNow") : t("ra.completeNow")}
      </button>
      <ErrorLine error={error} />
    </form>
  );
}
export const LiftForm = (p: { r: RightsRequest; onDone: (msg: string) => void }) => <TextMoveForm {...p} op="lift" />;
// Extend the due date of an in_progress request by 1-62 days, with the reason (once: an extended request is not
// in_progress any more).
export const canExtend = (r: RightsRequest) => r.state === "in_progress";
export function ExtendForm({ r, onDone }: { r: RightsRequest; onDone: (msg: string) => void }) {
  const [days, setDays] = useState("");
  const [reason, setReason] = useState("");
  const { error, busy, run } = useAction();
  const n = Number(days);
  const valid = Number.isInteger(n) && n >= 1 && n <= 62 && reason.trim() !== "";
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const done = await postJson<RightsRequest>(`/v1/requests/${seg(r.id)}/extend`, { days: n, reason: reason.trim() });
      onDone(t("ra.extendedMsg", { id: done.id, due: fmtDate(done.dueAt) }));
    });
  };
  return (
    <form class="inline extend-form" onSubmit={submit}>
      <label for={"xd-" + r.id}>{t("ra.extendDays")}</label>
      <input id={"xd-" + r.id} class="extend-days" type="number" min={1} max={62} step={1} value={days} required onInput={(e) => setDays((e.target as HTMLInputElement).value)} />
      <label for={"xr-" + r.id}>{t("ra.extendReason", { id: r.id })}</label>
      <input id={"xr-" + r.id} class="extend-reason" maxLength={1000} value={reason} required onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      <button type="submit" class="approve extend-submit" disabled={busy || !valid}>
        {t("ra.extendNow")}
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

// An approved request of a kind that is not carried out by the collector itself (a correction made by hand, ...).
export const CompleteForm = (p: { r: RightsRequest; onDone: (msg: string) => void }) => <TextMoveForm {...p} op="complete" />;
export const canComplete = (r: RightsRequest) => !isCopyKind(r) && (r.state === "in_progress" || r.state === "extended");

// The request's deliveries to the downstream destinations (webhooks) of the outbox.
export function Deliveries({ r }: { r: RightsRequest }) {
  const [list, setList] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    getJson<{ deliveries: Delivery[] }>(`/v1/requests/${seg(r.id)}/deliveries`).then((d) => setList(d.deliveries), setError);
  }, [r.id, r.state]);
  if (error) return <ErrorLine error={error} />;
  if (!list) return <p>{t("common.loading")}</p>;
  if (list.length === 0) return <p class="deliveries-none">{t("ra.noDeliveries")}</p>;
  return (
    <Table
      caption={t("ra.deliveries")}
      head={[t("ra.destination"), t("requests.state"), t("ra.attempts"), t("ra.lastStatus"), t("ra.next"), t("ra.deliveredAt")]}
    >
      {list.map((d) => (
        <tr class="delivery">
          <td class="mono">{d.destination}</td>
          <td>{d.state}</td>
          <td>{d.attempts}</td>
          <td class="mono">{d.lastStatus ?? ""} {d.lastError ?? ""}</td>
          <td>{d.nextAttemptAt ? fmtDate(d.nextAttemptAt) : ""}</td>
          <td>{d.deliveredAt ? fmtDate(d.deliveredAt) : ""}</td>
        </tr>
      ))}
    </Table>
  );
}

// Delivering the copy of an approved access request (it completes when written out in full), and the copies of a
// completed one in the three forms.
export function CopyButtons({ r, onDone }: { r: RightsRequest; onDone: (msg: string) => void }) {
  const action = useAction();
  const { error, busy } = action;
  const run = (f: () => Promise<string>) => action.run(async () => onDone(await f()));
  const deliver = () =>
    run(async () => {
      const { blob } = await getBlob(`/v1/requests/${seg(r.id)}/copy`);
      saveBlob(blob, `ferry-copy-${fileSafe(r.id)}.json`);
      return t("ra.copyDelivered", { id: r.id });
    });
  const copy = (format: "html" | "csv" | "json") =>
    run(async () => {
      const lang = currentLang() === "zh" ? "zh-CN" : "en";
      const { blob } = await getBlob(`/v1/subjects/${seg(r.subject)}/export` + query({ project: r.project, format, lang }));
      saveBlob(blob, `ferry-copy-${fileSafe(r.id)}.${format}`);
      return t("ra.copySaved", { format: format.toUpperCase() });
    });
  return (
    <>
      {canDeliver(r) && (
        <button type="button" class="deliver-copy" disabled={busy} onClick={deliver}>
          {t("ra.deliver")}
        </button>
      )}
      {hasCopies(r) &&
        (["html", "csv", "json"] as const).map((f) => (
          <button type="button" class={"copy-" + f} disabled={busy} onClick={() => copy(f)} aria-label={t("ra.copyOf", { format: f.toUpperCase(), id: r.id })}>
            {f.toUpperCase()}
          </button>
        ))}
      <ErrorLine error={error} />
    </>
  );
}
