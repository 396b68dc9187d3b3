/** App and key become file names and URL segments, so they are held to a safe alphabet. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** `api`, `health` and `metrics` are HTTP routes, so no app may take their names. */
export const RESERVED_APPS: ReadonlySet<string> = new Set(['api', 'health', 'metrics']);

/** The longest name that can be valid. */
const MAX_NAME_LENGTH = 128;

/**
 * `name` as errors and logs show it: whole when it is no longer than a valid
 * name, else its start and its length. A client may send a name of 64 KB in
 * every RTMP publish or play, and each refusal is logged.
 */
export function shownName(name: string): string {
  return name.length <= MAX_NAME_LENGTH ? name : `${name.slice(0, MAX_NAME_LENGTH)}... (${name.length} characters)`;
}

/** Returns why an app/key pair cannot name a stream, or undefined when it can. */
export function invalidStreamName(app: string, key: string): string | undefined {
  if (!NAME.test(app)) return `app "${shownName(app)}" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`;
  if (!NAME.test(key))
    return `stream key "${shownName(key)}" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`;
  if (RESERVED_APPS.has(app)) return `app "${app}" is reserved for the HTTP API`;
  return undefined;
}

/** The API's stream id, as the original flux-rtmpd named streams. */
export const streamId = (app: string, key: string): string => `rtmp/${app}/${key}`;
