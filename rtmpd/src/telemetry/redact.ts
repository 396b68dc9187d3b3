/** An http(s) URL as logs show it: no credentials or query, which may carry secrets. */
export function redactHttpUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}
