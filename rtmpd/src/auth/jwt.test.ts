import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseJwtKey, PERMISSIONS_CLAIM, remoteJwtKey, verifyJwt, type JwtKey, type JwtRequest } from './jwt.ts';

type JwtRequestBase = Omit<JwtRequest, 'token'>;

const file = (text: string) => new Map([['', text]]);
const publishCam1: JwtRequestBase = { action: 'publish', app: 'live', key: 'cam1' };

async function token(
  key: CryptoKey | Uint8Array,
  alg: string,
  claims: Record<string, unknown>,
  expires: string | number = '5m',
  kid = 'k1',
) {
  return new SignJWT(claims).setProtectedHeader({ alg, kid }).setIssuedAt().setExpirationTime(expires).sign(key);
}

/** A JWKS endpoint served by a real HTTP server in the test process. */
async function jwksServer(jwks: unknown): Promise<string> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
}

describe('JWT', () => {
  it('checks the signature against a JWKS URL, the expiry and the permissions claim', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const stranger = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    const key = remoteJwtKey(await jwksServer({ keys: [jwk] }));
    const allowed = { [PERMISSIONS_CLAIM]: [{ action: 'publish', app: 'live', key: 'cam*' }, { action: 'play' }] };
    const verify = (t: string | undefined, request: Partial<JwtRequestBase> = {}, options = {}) =>
      verifyJwt(key, options, { ...publishCam1, ...request, token: t });

    expect(await verify(await token(privateKey, 'RS256', allowed))).toBe('ok');
    expect(await verify(await token(privateKey, 'RS256', allowed), { action: 'play', app: 'other', key: 'x' })).toBe('ok');
    expect(await verify(await token(privateKey, 'RS256', allowed), { key: 'mic1' })).toBe('not_permitted');
    expect(await verify(await token(privateKey, 'RS256', {}))).toBe('not_permitted');
    expect(await verify(await token(stranger.privateKey, 'RS256', allowed))).toBe('bad_token');
    expect(await verify(await token(privateKey, 'RS256', allowed, Math.floor(Date.now() / 1000) - 10))).toBe('expired');
    const noExp = await new SignJWT(allowed).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
    expect(await verify(noExp)).toBe('bad_token');
    expect(await verify('not.a.jwt')).toBe('bad_token');
    expect(await verify(undefined)).toBe('missing_credentials');
    const withIssuer = await new SignJWT(allowed)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('idp')
      .setExpirationTime('1m')
      .sign(privateKey);
    expect(await verify(withIssuer, {}, { issuer: 'idp' })).toBe('ok');
    expect(await verify(withIssuer, {}, { issuer: 'other' })).toBe('bad_token');
  });

  it('says the keys are unavailable when the JWKS URL is down', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const key = remoteJwtKey('http://127.0.0.1:1/jwks.json');
    const t = await token(privateKey, 'ES256', { [PERMISSIONS_CLAIM]: [{ action: 'publish' }] });
    expect(await verifyJwt(key, {}, { ...publishCam1, token: t })).toBe('key_unavailable');
  });

  it('takes a static key: a JWKS or JWK, a PEM public key, or an HMAC secret, and no algorithm confusion', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const claims = { [PERMISSIONS_CLAIM]: [{ action: 'publish' }] };
    const check = (key: JwtKey, t: string) => verifyJwt(key, {}, { ...publishCam1, token: t });
    const es = await token(privateKey, 'ES256', claims);
    const jwk = await exportJWK(publicKey);
    expect(await check(parseJwtKey(file(JSON.stringify({ keys: [{ ...jwk, kid: 'k1' }] }))), es)).toBe('ok');
    expect(await check(parseJwtKey(file(JSON.stringify(jwk))), es)).toBe('ok');
    const pem = await exportSPKI(publicKey);
    expect(await check(parseJwtKey(file(pem)), es)).toBe('ok');
    // An HS256 token whose "secret" is the public key text must not pass as signed by it.
    const confused = await token(new TextEncoder().encode(pem.trim()), 'HS256', claims);
    expect(await check(parseJwtKey(file(pem)), confused)).toBe('bad_token');
    const hmac = parseJwtKey(file('a shared secret of some length\n'));
    expect(await check(hmac, await token(new TextEncoder().encode('a shared secret of some length'), 'HS256', claims))).toBe('ok');
    expect(await check(hmac, es)).toBe('bad_token');
    expect(() => parseJwtKey(file('{nope'))).toThrow(/not valid JSON/);
    expect(() => parseJwtKey(file(' \n'))).toThrow(/empty/);
  });
});
