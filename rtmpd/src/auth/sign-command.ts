// `rtmpd sign`: mints a signed URL for the `signed` method, with the secret
// read from a file (never a flag, which `ps` would show).
//   npx rtmpd sign --secret-file hmac.key --app live --key cam1 --expires-in 2h
//   → cam1?exp=1767225600&sig=...   (OBS: Stream Key; FFmpeg: append to rtmp://host/live/)
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { invalidStreamName } from '../hub/names.ts';
import { lines } from '../secrets/mounted.ts';
import { ACTIONS, type AuthAction } from './rules.ts';
import { signedQuery } from './signed-url.ts';

const SIGN_USAGE = `Usage: rtmpd sign --secret-file <file> --app <app> --key <key> [options]

Prints a signed stream name (key?exp=...&sig=...) for a rule with method "signed":
OBS takes it as the Stream Key, FFmpeg and players append it to rtmp://<host>/<app>/.

  --secret-file <file>   the rule's secretFile (its first line signs)
  --app <app>            the app, e.g. live
  --key <key>            the stream key, e.g. cam1
  --action <action>      publish (default) or play
  --expires-in <time>    how long the URL admits: 90s, 30m, 12h, 7d (default 1h)
  --ip <address>         admit only this client address
  --url <base>           print a whole URL on this base: rtmp://example.com:1935, or
                         http://example.com:8082 for HTTP-FLV (<app>/<key>.flv)
`;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `30m`, `12h`, `7d`, or plain seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNITS[match[2] || 's'] ?? 1);
}

class SignError extends Error {
  override name = 'SignError';
}

export interface SignArgs {
  argv: readonly string[];
  nowSeconds?: number;
}

/** The signed stream name or URL for argv; throws SignError with a message for the user. */
export function sign({ argv, nowSeconds = Math.floor(Date.now() / 1000) }: SignArgs): string {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'secret-file': { type: 'string' },
        app: { type: 'string' },
        key: { type: 'string' },
        action: { type: 'string', default: 'publish' },
        'expires-in': { type: 'string', default: '1h' },
        ip: { type: 'string' },
        url: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new SignError((err as Error).message);
  }
  const { app, key, action, ip, url } = values;
  const secretFile = values['secret-file'];
  if (!secretFile || !app || !key) throw new SignError('--secret-file, --app and --key are required');
  const invalid = invalidStreamName(app, key);
  if (invalid) throw new SignError(invalid);
  if (!(ACTIONS as readonly string[]).includes(action)) throw new SignError('--action must be publish or play');
  const seconds = parseDuration(values['expires-in']);
  if (seconds === undefined || seconds < 1) throw new SignError('--expires-in must be like 90s, 30m, 12h or 7d');
  let secret: string | undefined;
  try {
    secret = lines(readFileSync(secretFile, 'utf8'))[0];
  } catch (err) {
    throw new SignError(`cannot read ${secretFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!secret) throw new SignError(`${secretFile} holds no secret`);
  const query = signedQuery(secret, { action: action as AuthAction, app, key, expires: nowSeconds + seconds, ...(ip ? { ip } : {}) });
  if (!url) return `${key}?${query}`;
  // An HTTP base is for HTTP-FLV players, whose path ends in .flv.
  const path = /^https?:/i.test(url) ? `${key}.flv` : key;
  return `${url.replace(/\/+$/, '')}/${app}/${path}?${query}`;
}

/** The subcommand: prints the result, or the error and the usage; returns the exit code. */
export function signCommand(argv: readonly string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SIGN_USAGE);
    return 0;
  }
  try {
    process.stdout.write(`${sign({ argv })}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof SignError)) throw err;
    process.stderr.write(`rtmpd sign: ${err.message}\n\n${SIGN_USAGE}`);
    return 2;
  }
}
