import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { selfSignedTlsPair } from '../metrics-tls.ts';
import type { SecretFormat, SecretReference } from './rtmpd-config.ts';
import { recordServerEvent, ServerReferences } from './references.ts';
import { checkSecret, secretProblem, SecretVerdicts } from './secrets.ts';

const ref = (format: SecretFormat, keys: string[] = ['k']): SecretReference => ({ name: 's', field: 'spec.x', keys, format });
const data = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('secretProblem', () => {
  it('names a missing key and the keys there are, never a value', () => {
    expect(secretProblem(ref('hmacSecrets', ['hmac']), data({ other: 'value-1', more: 'value-2' }))).toBe(
      'has no key "hmac" (it has more, other)',
    );
    expect(secretProblem(ref('file', ['tls.crt', 'tls.key']), data({}))).toBe('has no key "tls.crt" nor "tls.key" (it has none)');
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v']));
    expect(secretProblem(ref('file', ['x']), data(many))).toBe(
      'has no key "x" (it has k00, k01, k02, k03, k04, k05, k06, k07, k08, k09 and 2 more)',
    );
  });

  it('finds a key store with no stream key (every client refused), and one rtmpd refuses', () => {
    expect(secretProblem(ref('keyStore', []), data({ cam1: 's3cr3t' }))).toBeUndefined();
    // hidden entries are the kubelet's in a mounted volume: rtmpd skips them
    expect(secretProblem(ref('keyStore', []), data({ '.hidden': 's3cr3t' }))).toBe(
      'holds no stream key: every client of the rule is refused',
    );
    expect(secretProblem(ref('keyStore', []), data({ cam1: 'x'.repeat(1025) }))).toBe(
      'is refused by rtmpd: key cam1: a secret is longer than 1024 characters',
    );
  });

  it('finds an empty HMAC secret, API tokens too short, a webhook key file without a key, a callback URL that is none', () => {
    expect(secretProblem(ref('hmacSecrets'), data({ k: '# only a comment\n\n' }))).toBe('holds no secret: every signed URL is refused');
    expect(secretProblem(ref('hmacSecrets'), data({ k: 'hmac-secret' }))).toBeUndefined();
    expect(secretProblem(ref('apiTokens'), data({ k: 'short' }))).toBe('is refused by rtmpd: API tokens must be at least 16 characters');
    expect(secretProblem(ref('apiTokens'), data({ k: 'a-token-of-enough-length' }))).toBeUndefined();
    expect(secretProblem(ref('webhookKeys'), data({ k: '' }))).toBe('is refused by rtmpd: it holds no usable key');
    expect(secretProblem(ref('callbackUrl'), data({ k: 'auth.example.com/decide' }))).toBe(
      'does not start with an http(s) URL rtmpd can call',
    );
    expect(secretProblem(ref('callbackUrl'), data({ k: 'https://auth.example.com/decide?token=x\n' }))).toBeUndefined();
  });

  it('says a JWT key is not JSON without quoting it', () => {
    const problem = secretProblem(ref('jwtKey'), data({ k: '{"kty": "oct", secret-material' }));
    expect(problem).toBe('is refused by rtmpd: the JWT key file is not valid JSON');
    expect(secretProblem(ref('jwtKey'), data({ k: '' }))).toBe('is refused by rtmpd: the JWT key file is empty');
    expect(secretProblem(ref('jwtKey'), data({ k: 'an-hmac-secret' }))).toBeUndefined();
  });
});

describe('secretProblem with certificates', () => {
  const pair = selfSignedTlsPair(['rtmp.example.com']);
  const other = selfSignedTlsPair(['other.example.com']);
  const tls = ref('tlsPair', ['tls.crt', 'tls.key']);
  const body = (pem: string) => pem.split('\n')[1] ?? '';

  it('parses a TLS pair as rtmpd does at start, never quoting it', () => {
    expect(secretProblem(tls, data({ 'tls.crt': pair.cert, 'tls.key': pair.key }))).toBeUndefined();
    expect(secretProblem(tls, data({ 'tls.crt': 'pem', 'tls.key': pair.key }))).toBe(
      'is refused by rtmpd: tls.crt does not hold a PEM certificate',
    );
    const truncated = pair.key.slice(0, 120);
    const problem = secretProblem(tls, data({ 'tls.crt': pair.cert, 'tls.key': truncated }));
    expect(problem).toBe('is refused by rtmpd: tls.key does not hold a PEM private key');
    expect(problem).not.toContain(body(truncated));
    expect(secretProblem(tls, data({ 'tls.crt': pair.cert, 'tls.key': other.key }))).toBe(
      'is refused by rtmpd: tls.key is not the key of the first certificate in tls.crt',
    );
  });

  it('finds a CA bundle without a certificate, or with one that does not parse', () => {
    const ca = ref('caBundle', ['ca.crt']);
    expect(secretProblem(ca, data({ 'ca.crt': `${pair.cert}${other.cert}` }))).toBeUndefined();
    expect(secretProblem(ca, data({ 'ca.crt': pair.key }))).toBe(
      'holds no PEM certificate: forwards over RTMPS trust only the default roots',
    );
    const broken = other.cert.replace(body(other.cert), 'AAAA');
    expect(secretProblem(ca, data({ 'ca.crt': `${pair.cert}${broken}` }))).toBe('holds a certificate that does not parse (number 2 of 2)');
  });
});

describe('checkSecret and SecretVerdicts', () => {
  const pair = selfSignedTlsPair(['rtmp.example.com']);
  const tls = ref('tlsPair', ['tls.crt', 'tls.key']);

  it("gives a usable TLS pair's notAfter, and none for a refused one", () => {
    const { notAfter, problem } = checkSecret(tls, data({ 'tls.crt': pair.cert, 'tls.key': pair.key }));
    expect(problem).toBeUndefined();
    expect(notAfter?.toISOString()).toBe(new Date(new X509Certificate(pair.cert).validTo).toISOString());
    expect(checkSecret(tls, data({ 'tls.crt': pair.cert }))).toEqual({ problem: 'has no key "tls.key" (it has tls.crt)' });
  });

  it('keeps a verdict per way of reading a Secret for its resourceVersion only, until forgotten', () => {
    const verdicts = new SecretVerdicts(() => true);
    const asKeys = ref('keyStore', []);
    const asUrl = ref('callbackUrl', ['url']);
    verdicts.set('a', '7', asKeys, { problem: 'p' });
    verdicts.set('a', '7', asUrl, {});
    expect(verdicts.get('a', '7', asKeys)).toEqual({ problem: 'p' });
    expect(verdicts.get('a', '7', asUrl)).toEqual({});
    expect(verdicts.get('b', '7', asKeys)).toBeUndefined();
    expect(verdicts.get('a', '8', asKeys)).toBeUndefined();
    // A new version replaces the Secret's verdicts: one entry per Secret, whatever its history.
    verdicts.set('a', '8', asKeys, {});
    expect(verdicts.get('a', '8', asUrl)).toBeUndefined();
    expect(verdicts.size).toBe(1);
    verdicts.forget('a', 's');
    expect(verdicts.size).toBe(0);
  });

  it('keeps no verdict a reconcile sets after its server was deleted, or stopped naming the Secret', () => {
    // Wired as the controller wires them.
    const references = new ServerReferences();
    const verdicts = new SecretVerdicts((namespace, secret) => references.namesSecret(namespace, secret));
    const watched = (server: { metadata: { namespace: string; name: string }; spec?: unknown }, event: 'update' | 'delete') =>
      recordServerEvent(references, verdicts, event, server);
    const edge = { metadata: { namespace: 'a', name: 'edge' }, spec: { auth: { rules: [{ method: 'keys', keysSecret: { name: 's' } }] } } };
    const keys = ref('keyStore', []);
    watched(edge, 'update');
    verdicts.set('a', '7', keys, {});
    expect(verdicts.size).toBe(1);

    // The server is deleted while a reconcile of it reads the Secret; that reconcile's verdict comes after the forget.
    watched(edge, 'delete');
    verdicts.set('a', '8', keys, {});
    expect(verdicts.size).toBe(0);

    watched(edge, 'update');
    watched({ ...edge, spec: {} }, 'update');
    verdicts.set('a', '8', keys, {});
    expect(verdicts.size).toBe(0);
  });
});
