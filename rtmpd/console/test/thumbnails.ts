// A thumbnail is a snapshot decode: on a loaded machine (CI builds images beside
// the tests) one took more than rtmpd's default 10 s and the page logged its 503.
// The decode gets 30 s, and a thumbnail is waited for past that.
const SNAPSHOT_TIMEOUT_SECONDS = 30;

/** The flags that give the browser tests' rtmpd that time. */
export const snapshotTimeoutFlags = ['--snapshot-timeout-seconds', String(SNAPSHOT_TIMEOUT_SECONDS)];

/** How long a test waits for a thumbnail to load. */
export const THUMBNAIL_WAIT_MS = (SNAPSHOT_TIMEOUT_SECONDS + 5) * 1000;
