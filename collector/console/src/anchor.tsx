// Audit anchors in the browser, as `ferryctl audit anchor` and `audit verify --anchor` do them: after a verification
// the head (seq, hash) is downloaded as a file (format ferry-audit-anchor/1) to keep elsewhere; later a kept anchor
// is checked: the chain verifies, and its entry is still there with the same hash (a chain rewritten from before it
// verifies on its own, not against the anchor).
import { useState } from "preact/hooks";
import { AuditEntry, getJson, query, saveBlob, VerifyResult } from "./api";
import { t } from "./i18n";
import { ErrorLine } from "./ui";

interface Anchor {
  format: string;
  collector: string;
  headSeq: number;
  headHash: string;
  at: string;
}

export function downloadAnchor(v: VerifyResult): void {
  const a: Anchor = {
    format: "ferry-audit-anchor/1",
    collector: location.origin,
    headSeq: v.headSeq ?? 0,
    headHash: v.headHash ?? "",
    at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
  saveBlob(new Blob([JSON.stringify(a, null, 2) + "\n"], { type: "application/json" }), `ferry-audit-anchor-${a.headSeq}.json`);
}

export function AnchorCheck() {
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const check = async (file: File) => {
    setResult(null);
    setError(null);
    try {
      let kept: Anchor;
      try {
        kept = JSON.parse(await file.text()) as Anchor;
      } catch {
        kept = {} as Anchor;
      }
      if (typeof kept.headSeq !== "number" || typeof kept.headHash !== "string") {
        setResult({ ok: false, text: t("anchor.notAnchor") });
        return;
      }
      const v = await getJson<VerifyResult>("/v1/audit/verify");
      if (!v.ok) {
        setResult({ ok: false, text: t("audit.broken", { seq: v.firstBrokenSeq ?? "?", reason: v.reason ?? "" }) });
        return;
      }
      const { entries } = await getJson<{ entries: AuditEntry[] }>("/v1/audit" + query({ after: kept.headSeq - 1, limit: 1 }));
      const e = entries[0];
      if (!e || e.seq !== kept.headSeq) setResult({ ok: false, text: t("anchor.gone", { seq: kept.headSeq }) });
      else if (e.hash !== kept.headHash) setResult({ ok: false, text: t("anchor.rewritten", { seq: kept.headSeq }) });
      else setResult({ ok: true, text: t("anchor.holds", { seq: kept.headSeq, hash: kept.headHash }) });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="anchor-check">
      <label for="anchor-file">{t("anchor.check")}</label>
      <input
        id="anchor-file"
        type="file"
        accept="application/json,.json"
        onChange={(e) => {
          const f = (e.target as HTMLInputElement).files?.[0];
          if (f) check(f);
        }}
      />
      {result && (
        <p id="anchor-result" role="status" class={result.ok ? "ok" : "error"}>
          {result.text}
        </p>
      )}
      <ErrorLine error={error} />
    </div>
  );
}
