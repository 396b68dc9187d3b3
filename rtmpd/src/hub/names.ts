/** App and key become file names and URL segments, so they are held to a safe alphabet. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** `api`, `health` and `metrics` are HTTP routes, so no app may take their names. */
export const RESERVED_APPS: ReadonlySet<string> = new Set(['api', 'health', 'metrics']);

/** Returns why an app/key pair cannot name a stream, or undefined when it can. */
export function invalidStreamName(app: string, key: string): string | undefined {
  if (!NAME.test(app)) return `app "${app}" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`;
  if (!NAME.test(key)) return `stream key "${key}" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`;
  if (RESERVED_APPS.has(app)) return `app "${app}" is reserved for the HTTP API`;
  return undefined;
}

/** The API's stream id, as the original flux-rtmpd named streams. */
export const streamId = (app: string, key: string): string => `rtmp/${app}/${key}`;
