// Small shared pieces: a loading/error line, a labelled table in a scrolling frame, role gating.
import type { ComponentChildren } from "preact";
import { ApiError, Role, WhoAmI } from "./api";
import { t } from "./i18n";

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.status} ${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {t("common.error", { error: errorText(error) })}
    </p>
  );
}

export function Note({ children, id }: { children: ComponentChildren; id?: string }) {
  return (
    <p class="note" role="status" id={id}>
      {children}
    </p>
  );
}

// A table with a caption (its accessible name), scrolling sideways on narrow screens instead of the page.
export function Table({
  caption,
  head,
  children,
  id,
}: {
  caption: string;
  head: string[];
  children: ComponentChildren;
  id?: string;
}) {
  return (
    <div class="table-frame">
      <table id={id}>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

export const hasAny = (me: WhoAmI, roles: Role[]) => roles.some((r) => me.roles.includes(r));

export function Forbidden({ roles }: { roles: Role[] }) {
  return <p class="note">{t("common.forbidden", { roles: roles.join(" / ") })}</p>;
}

// Any JSON value as text (never as markup).
export const asText = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

// A value kept in this tab's sessionStorage (a page's last project); without sessionStorage, nothing is kept.
export function sessionGet(key: string): string {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}
export function sessionSet(key: string, value: string): void {
  try {
    sessionStorage.setItem(key, value);
  } catch {
    // kept in this page only
  }
}
