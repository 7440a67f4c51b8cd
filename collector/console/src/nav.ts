// Moves to a page of the console (the URL fragment: nothing of it reaches the server).
export function go(page: string, params: Record<string, string> = {}): void {
  const q = new URLSearchParams(params).toString();
  location.hash = "#/" + page + (q ? "?" + q : "");
}
