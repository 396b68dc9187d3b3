// The Secrets an RtmpServer names, read and checked the way rtmpd reads them
// (with rtmpd's own parsers): a missing key or a value rtmpd cannot use makes
// the pods fail at start, and an empty key store or secret file makes them
// refuse every client, neither of which the pods' status says. A Secret's
// data is read only while a reconcile checks it, and only when its version
// changed; the watch that reconciles the RtmpServers naming a Secret caches
// its name and version only, and what stays of a check is its verdict.
import { ApiException, type CoreV1Api } from '@kubernetes/client-node';
import { X509Certificate } from 'node:crypto';
import { parseTokens } from '@flux-rtmpd/rtmpd/auth-api-tokens';
import { parseJwtKey } from '@flux-rtmpd/rtmpd/auth-jwt';
import { parseKeys } from '@flux-rtmpd/rtmpd/auth-key-store';
import { lines } from '@flux-rtmpd/rtmpd/secrets-mounted';
import { checkCertificatePair } from '@flux-rtmpd/rtmpd/tls-pair';
import { parseSigningKeys } from '@flux-rtmpd/rtmpd/webhook-signature';
import type { SecretFormat, SecretReference } from './rtmpd-config.ts';

/** A Secret's data, decoded: each key's text, as the kubelet writes it to a file of the mounted volume. */
export type SecretData = ReadonlyMap<string, string>;
/** A Secret's data and the resourceVersion it was read at, or undefined when it does not exist. */
export type ReadSecret = (namespace: string, name: string) => Promise<{ resourceVersion: string; data: SecretData } | undefined>;

export const secretReader =
  (core: CoreV1Api): ReadSecret =>
  async (namespace, name) => {
    try {
      const secret = await core.readNamespacedSecret({ namespace, name });
      const data = new Map(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
      return { resourceVersion: secret.metadata?.resourceVersion ?? '', data };
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  };

/** What rtmpd reads for a reference: one key's file under '', or the files of the mounted directory (hidden ones skipped, as rtmpd does). */
function entriesOf(ref: SecretReference, data: SecretData): Map<string, string> {
  const [only] = ref.keys;
  if (only !== undefined && ref.keys.length === 1) return new Map([['', data.get(only) ?? '']]);
  const wanted = (key: string) => (ref.keys.length ? ref.keys.includes(key) : !key.startsWith('.'));
  return new Map([...data].filter(([key]) => wanted(key)));
}

const firstLine = (entries: ReadonlyMap<string, string>): string => lines(entries.get('') ?? '')[0] ?? '';
const isHttpUrl = (text: string): boolean => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol);

/** The Secret's keys the messages of rtmpd's certificate check name, where rtmpd names its flags. */
const tlsKeys = { cert: 'tls.crt', key: 'tls.key' };

/** A certificate pair checked by rtmpd's own check at start, where a bad one stops rtmpd (a crash loop). */
const checkTlsPair = (entries: ReadonlyMap<string, string>) =>
  checkCertificatePair({ cert: entries.get(tlsKeys.cert) ?? '', key: entries.get(tlsKeys.key) ?? '' }, tlsKeys);

const pemCertificates = (text: string): string[] => text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];

/**
 * A CA bundle for forwards over RTMPS. Node skips what it cannot parse in one
 * without a word, so a bad bundle shows only later, as every forward's
 * destination "not trusted".
 */
function caBundleProblem(entries: ReadonlyMap<string, string>): string | undefined {
  const certificates = pemCertificates(entries.get('') ?? '');
  if (certificates.length === 0) return 'holds no PEM certificate: forwards over RTMPS trust only the default roots';
  const bad = certificates.findIndex((pem) => !parsesAsCertificate(pem));
  return bad === -1 ? undefined : `holds a certificate that does not parse (number ${bad + 1} of ${certificates.length})`;
}

function parsesAsCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/**
 * What is wrong with a value rtmpd can parse but that serves nobody, in words
 * that follow the Secret's name; a value rtmpd refuses throws. A TLS pair's
 * check gives what it parsed that a verdict keeps: the certificate's expiry.
 */
const checks: Record<SecretFormat, (entries: ReadonlyMap<string, string>) => string | SecretVerdict | undefined> = {
  keyStore: (entries) => (parseKeys(entries).size === 0 ? 'holds no stream key: every client of the rule is refused' : undefined),
  hmacSecrets: (entries) => (firstLine(entries) === '' ? 'holds no secret: every signed URL is refused' : undefined),
  jwtKey: (entries) => void parseJwtKey(entries),
  callbackUrl: (entries) => (isHttpUrl(firstLine(entries)) ? undefined : 'does not start with an http(s) URL rtmpd can call'),
  apiTokens: (entries) => void parseTokens(entries),
  webhookKeys: (entries) => void parseSigningKeys(entries),
  tlsPair: (entries) => ({ notAfter: new Date(checkTlsPair(entries).leaf.validTo) }),
  caBundle: caBundleProblem,
  // Forward URLs, read as they are: rtmpd says what is wrong with one when it uses it.
  file: () => undefined,
};

/** JSON.parse's message quotes the start of the text it refused, which here is a key: only its verdict goes into a status. */
const withoutQuotedValue = (message: string): string => message.replace(/(is not valid JSON):.*$/s, '$1');

const maxKeysNamed = 10;
function keysOf(data: SecretData): string {
  if (data.size === 0) return 'it has none';
  const keys = [...data.keys()].sort();
  const more = keys.length > maxKeysNamed ? ` and ${keys.length - maxKeysNamed} more` : '';
  return `it has ${keys.slice(0, maxKeysNamed).join(', ')}${more}`;
}

/** What a check of a Secret for one reference found: what is wrong, and for a TLS pair when its certificate expires. */
export interface SecretVerdict {
  problem?: string;
  notAfter?: Date;
}

/**
 * What is wrong with a Secret for one reference, as rtmpd would read it (never
 * a value), and the notAfter of a usable TLS pair's certificate (the first in
 * tls.crt, which rtmpd serves).
 */
export function checkSecret(ref: SecretReference, data: SecretData): SecretVerdict {
  const absent = ref.keys.filter((key) => !data.has(key));
  if (absent.length) return { problem: `has no key ${absent.map((key) => `"${key}"`).join(' nor ')} (${keysOf(data)})` };
  try {
    const found = checks[ref.format](entriesOf(ref, data));
    return typeof found === 'string' ? { problem: found } : (found ?? {});
  } catch (err) {
    return { problem: `is refused by rtmpd: ${withoutQuotedValue((err as Error).message)}` };
  }
}

/** What is wrong with a Secret for one reference, or undefined. */
export const secretProblem = (ref: SecretReference, data: SecretData): string | undefined => checkSecret(ref, data).problem;

/** One verdict per way a Secret is read: the same Secret can be a key store for one rule and hold a URL for another. */
const readAs = (ref: SecretReference): string => `${ref.format}:${ref.keys.join(',')}`;

/** Whether a cached RtmpServer of the namespace names the Secret now. */
export type IsNamed = (namespace: string, secret: string) => boolean;

/**
 * The verdicts on the Secrets the cached RtmpServers name, per Secret and its
 * resourceVersion: a Secret is read and parsed again only when it changed, not
 * at every reconcile of every server naming it. No data is kept, only
 * verdicts: one entry per Secret some server names, dropped when the Secret is
 * deleted or no server names it any more, and per entry one verdict per
 * reference the specs make to it. A reconcile can end after its server was
 * deleted (or stopped naming the Secret), when that forget has already run:
 * a verdict on a Secret no server names is therefore not kept.
 */
export class SecretVerdicts {
  readonly #bySecret = new Map<string, { resourceVersion: string; verdicts: Map<string, SecretVerdict> }>();
  readonly #isNamed: IsNamed;

  constructor(isNamed: IsNamed) {
    this.#isNamed = isNamed;
  }

  get(namespace: string, resourceVersion: string, ref: SecretReference): SecretVerdict | undefined {
    const entry = this.#bySecret.get(`${namespace}/${ref.name}`);
    return entry?.resourceVersion === resourceVersion ? entry.verdicts.get(readAs(ref)) : undefined;
  }

  set(namespace: string, resourceVersion: string, ref: SecretReference, verdict: SecretVerdict): void {
    if (!this.#isNamed(namespace, ref.name)) return;
    const key = `${namespace}/${ref.name}`;
    let entry = this.#bySecret.get(key);
    if (entry?.resourceVersion !== resourceVersion) this.#bySecret.set(key, (entry = { resourceVersion, verdicts: new Map() }));
    entry.verdicts.set(readAs(ref), verdict);
  }

  forget(namespace: string, name: string): void {
    this.#bySecret.delete(`${namespace}/${name}`);
  }

  get size(): number {
    return this.#bySecret.size;
  }
}
