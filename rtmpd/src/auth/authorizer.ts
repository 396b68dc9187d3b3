// Authorization of every publish and play, RTMP or HTTP: the rules of
// rules.ts, each with its method (key store, signed URL, JWT, callback),
// plus the revocations the API makes. It answers before the client is told
// it may start, counts refusals by reason and logs them without secrets.
import { splitHostPort, type Config } from '../config.ts';
import type { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import type { AdmissionCheck, AdmissionLease } from '../rtmp/server/admission.ts';
import { lines, watchPath, type WatchedPath, type WatchedPathOptions } from '../secrets/mounted.ts';
import { FaultLog } from '../telemetry/fault-log.ts';
import type { Logger } from '../telemetry/logger.ts';
import { CallbackClient } from './callback.ts';
import { readCredentials } from './credentials.ts';
import { Grants } from './grants.ts';
import { JWT_PARAM, parseJwtKey, remoteJwtKey, verifyJwt, type JwtKey } from './jwt.ts';
import { keyAccepts, parseKeys, SECRET_PARAM, type Keys } from './key-store.ts';
import { Revocations, type Revocation } from './revocations.ts';
import { compileRule, type AuthAction, type AuthMethodName, type AuthRule, type CompiledRule } from './rules.ts';
import { verifySigned } from './signed-url.ts';

/** Why a publish or play was refused: the `reason` label of rtmpd_auth_refusals_total. */
export type RefusalReason =
  | 'no_matching_rule'
  | 'missing_credentials'
  | 'bad_secret'
  | 'bad_signature'
  | 'expired'
  | 'address_mismatch'
  | 'bad_token'
  | 'not_permitted'
  | 'key_unavailable'
  | 'callback_denied'
  | 'callback_failed'
  | 'callback_busy'
  | 'revoked';

export interface AuthRequest {
  action: AuthAction;
  /** The protocol family: RTMPS is `rtmp` with `tls`, as the callback is told. */
  protocol: 'rtmp' | 'http-flv' | 'hls';
  /** The client came over TLS (RTMPS, HTTPS). */
  tls: boolean;
  app: string;
  key: string;
  /** Credentials from the query strings (the stream name's over the tcUrl's, or the HTTP request's). */
  params: URLSearchParams;
  /** A bearer token (HTTP `Authorization`), which a jwt rule accepts as well as `?jwt=`. */
  bearer?: string | undefined;
  /** The client's IP address (IPv4-mapped IPv6 written as IPv4). */
  clientIp: string;
  signal: AbortSignal;
}

export type AuthDecision =
  | { allow: true; lease?: AdmissionLease }
  | {
      allow: false;
      reason: RefusalReason;
      /** HTTP status: 401 when no credential was offered, 403 when the one offered was not good enough. */
      status: 401 | 403;
      /** Safe to show the client: never a secret. */
      message: string;
    };

type Verdict = { ok: true; lease?: AdmissionLease } | { ok: false; reason: RefusalReason; detail?: string };

interface Method {
  check(request: AuthRequest): Verdict | Promise<Verdict>;
  close(): void;
}

/** What the metrics read. */
export interface AuthStats {
  /** By `${action} ${reason}`. */
  refusals: Record<string, number>;
  /** Sessions the server ended: kicked through the API, or revoked (a withdrawn key, a revocation). */
  ended: { kicked: number; revoked: number };
}

export interface AuthorizerOptions {
  config: Pick<Config, 'authRules'>;
  hub: StreamHub;
  logger: Logger;
  /** How often key stores and secret files are re-read. */
  reloadIntervalMs?: number;
  /** The renditions transcodes make (transcode/transcodes.ts), played under their sources' rules. */
  renditions?: Renditions;
}

interface Renditions {
  /** The key whose play rules decide playing app/key (a rendition is played as its source), if not its own. */
  playedAs(app: string, key: string): string | undefined;
}

interface Built {
  rules: readonly AuthRule[];
  compiled: CompiledRule[];
  methods: Method[];
}

export class Authorizer {
  readonly stats: AuthStats = { refusals: Object.create(null) as Record<string, number>, ended: { kicked: 0, revoked: 0 } };
  private readonly options: AuthorizerOptions;
  private readonly logger: Logger;
  /**
   * Refusals are a client's doing: a player (RTMP, or HLS asking a segment at a time) may be refused
   * as fast as it asks, with no rate limit like a publisher's, so their lines are limited.
   */
  private readonly refusals: FaultLog;
  private readonly revocations = new Revocations();
  private built: Built;

  private constructor(options: AuthorizerOptions, built: Built) {
    this.options = options;
    this.logger = options.logger;
    this.refusals = new FaultLog(options.logger);
    this.built = built;
  }

  /** Reads every key store and secret the rules name; a missing or unusable one fails the start. */
  static async start(options: AuthorizerOptions): Promise<Authorizer> {
    const logger = options.logger.child({ component: 'auth' });
    const holder: { authorizer?: Authorizer } = {};
    const built = await build(options.config.authRules, { ...options, logger }, (n) => holder.authorizer?.countEnded('revoked', n));
    holder.authorizer = new Authorizer({ ...options, logger }, built);
    return holder.authorizer;
  }

  /** No rules: anyone may publish and play anything. */
  get open(): boolean {
    return this.options.config.authRules.length === 0;
  }

  async authorize(request: AuthRequest): Promise<AuthDecision> {
    const playedAs = request.action === 'play' ? this.options.renditions?.playedAs(request.app, request.key) : undefined;
    const decision = await this.decide(playedAs === undefined ? request : { ...request, key: playedAs });
    if (!decision.allow) this.refused(request, decision.reason, decision.rule, decision.detail);
    return decision.allow ? decision : { allow: false, reason: decision.reason, status: decision.status, message: decision.message };
  }

  /** The RTMP admission check: a refusal is NetStream.Publish/Play.Unauthorized, then the connection is closed. */
  readonly rtmpCheck: AdmissionCheck = async (request) => {
    const params = new URLSearchParams(request.tcUrl?.includes('?') ? request.tcUrl.slice(request.tcUrl.indexOf('?') + 1) : '');
    for (const [name, value] of new URLSearchParams(request.query)) params.set(name, value);
    const decision = await this.authorize({
      action: request.action,
      protocol: 'rtmp',
      tls: request.protocol === 'rtmps',
      app: request.app,
      key: request.key,
      params,
      clientIp: hostOf(request.remoteAddress),
      signal: request.signal,
    });
    if (decision.allow) return decision;
    const verb = request.action === 'publish' ? 'Publish' : 'Play';
    return { allow: false, code: `NetStream.${verb}.Unauthorized`, description: decision.message, close: true };
  };

  /** Ends the stream's publisher; with `banSeconds`, its key is revoked for that long too. */
  kick(stream: Stream, banSeconds?: number): void {
    if (banSeconds !== undefined) this.revocations.add(stream.app, stream.key, banSeconds);
    this.logger.info({ stream: stream.id, banSeconds }, 'auth: publisher kicked');
    this.countEnded('kicked', 1);
    stream.publisher.close('kicked');
  }

  /** Refuses publishing app/key (for `seconds`, or until restart) and ends its live publisher. Undefined when full. */
  revoke(app: string, key: string, seconds?: number): Revocation | undefined {
    const revocation = this.revocations.add(app, key, seconds);
    if (!revocation) return undefined;
    this.logger.info({ app, key, seconds }, 'auth: key revoked');
    const live = this.options.hub.get(app, key);
    if (live) {
      this.countEnded('revoked', 1);
      live.publisher.close('revoked');
    }
    return revocation;
  }

  unrevoke(app: string, key: string): boolean {
    return this.revocations.remove(app, key);
  }

  listRevocations(): Revocation[] {
    return this.revocations.list();
  }

  close(): void {
    for (const method of this.built.methods) method.close();
  }

  private async decide(
    request: AuthRequest,
  ): Promise<
    | { allow: true; lease?: AdmissionLease }
    | { allow: false; reason: RefusalReason; status: 401 | 403; message: string; rule?: number; detail?: string }
  > {
    const { action, app, key } = request;
    const what = `${action === 'publish' ? 'publishing' : 'playing'} ${app}/${key}`;
    if (action === 'publish' && this.revocations.has(app, key)) {
      return { allow: false, reason: 'revoked', status: 403, message: `${what} is revoked` };
    }
    const built = await this.current();
    const index = built.compiled.findIndex((c) => c.matches(action, app, key));
    const rule = built.compiled[index];
    const method = built.methods[index];
    if (!rule || !method) {
      if (built.compiled.length === 0) return { allow: true };
      return { allow: false, reason: 'no_matching_rule', status: 403, message: `${what} is not allowed by any rule` };
    }
    const verdict = await method.check(request);
    if (verdict.ok) return verdict.lease ? { allow: true, lease: verdict.lease } : { allow: true };
    const status = verdict.reason === 'missing_credentials' ? 401 : 403;
    return {
      allow: false,
      reason: verdict.reason,
      status,
      message: `${what} needs ${NEEDS[rule.rule.method]} (${verdict.reason.replace(/_/g, ' ')})`,
      rule: rule.index,
      ...(verdict.detail ? { detail: verdict.detail } : {}),
    };
  }

  /** The methods for the rules in force; rebuilt when a config reload replaced the rules. */
  private async current(): Promise<Built> {
    const rules = this.options.config.authRules;
    if (rules === this.built.rules) return this.built;
    try {
      const next = await build(rules, this.options, (n) => this.countEnded('revoked', n));
      if (this.options.config.authRules !== rules) next.methods.forEach((m) => m.close());
      else {
        this.built.methods.forEach((m) => m.close());
        this.built = next;
        this.logger.info({ rules: rules.length }, 'auth: rules reloaded');
      }
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'auth: new rules not applied; the previous ones stay');
      this.built = { ...this.built, rules };
    }
    return this.built;
  }

  /** Counts a refusal under rtmpd_auth_refusals_total{action, reason}; the API's refusals come here too (action `api`). */
  countRefusal(action: AuthAction | 'api', reason: string): void {
    const label = `${action} ${reason}`;
    this.stats.refusals[label] = (this.stats.refusals[label] ?? 0) + 1;
  }

  private refused(request: AuthRequest, reason: RefusalReason, rule: number | undefined, detail: string | undefined): void {
    this.countRefusal(request.action, reason);
    // Never the query, the token or the secret: only what names the request and why it failed.
    this.refusals.log(
      'info',
      {
        action: request.action,
        protocol: request.protocol,
        tls: request.tls,
        app: request.app,
        key: request.key,
        client: request.clientIp,
        rule,
        reason,
        detail,
      },
      `auth: ${request.action} refused`,
    );
  }

  private countEnded(why: 'kicked' | 'revoked', n: number): void {
    this.stats.ended[why] += n;
  }
}

/** What a refused client is told it lacks, by method. */
const NEEDS: Record<AuthMethodName, string> = {
  open: 'nothing',
  keys: `the stream key's ?${SECRET_PARAM}=`,
  signed: 'a valid signed URL (?exp=&sig=, from rtmpd sign)',
  jwt: `a valid JWT (?${JWT_PARAM}= or Authorization: Bearer)`,
  callback: "the authorization service's approval",
};

/** `::ffff:10.1.2.3:5000` → `10.1.2.3`; `[::1]:5000` or `::1:5000` → `::1`. */
export function hostOf(address: string): string {
  return normalizeIp(splitHostPort(address).host);
}

export const normalizeIp = (ip: string): string => ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');

async function build(rules: readonly AuthRule[], options: AuthorizerOptions, onRevoked: (n: number) => void): Promise<Built> {
  const methods: Method[] = [];
  try {
    for (const [i, rule] of rules.entries()) methods.push(await buildMethod(rule, i, options, onRevoked));
  } catch (err) {
    methods.forEach((m) => m.close());
    throw err;
  }
  return { rules, compiled: rules.map(compileRule), methods };
}

async function buildMethod(rule: AuthRule, index: number, options: AuthorizerOptions, onRevoked: (n: number) => void): Promise<Method> {
  const watch = <T>(path: string, parse: WatchedPathOptions<T>['parse'], onChange?: (value: T) => void) =>
    watchPath({
      path,
      option: `--auth-rules [${index}] (${rule.method})`,
      label: 'auth: secrets',
      parse,
      logger: options.logger,
      intervalMs: options.reloadIntervalMs ?? 1000,
      ...(onChange ? { onChange } : {}),
    });
  switch (rule.method) {
    case 'open':
      return { check: () => ({ ok: true }), close: () => {} };
    case 'keys': {
      const grants = new Grants();
      const store: WatchedPath<Keys> = await watch(rule.keys, parseKeys, (keys) => {
        const revoked = grants.revokeWhere((g) => keyAccepts(keys, g.key, g.secret));
        if (revoked > 0) options.logger.info({ path: rule.keys, sessions: revoked }, 'auth: sessions of withdrawn keys ended');
        onRevoked(revoked);
      });
      return {
        check: (request) => {
          const read = readCredentials(request.params, SECRET_PARAM);
          if (!read.ok) return { ok: false, reason: 'bad_secret', detail: 'malformed secret' };
          const { secret } = read.credentials;
          if (!secret) return { ok: false, reason: 'missing_credentials' };
          if (!keyAccepts(store.value, request.key, secret)) return { ok: false, reason: 'bad_secret' };
          return { ok: true, lease: grants.issue(request.key, secret) };
        },
        close: () => store.close(),
      };
    }
    case 'signed': {
      const secrets = await watch(rule.secretFile, (entries) => [...entries.values()].flatMap(lines));
      return {
        check: (request) => {
          const verdict = verifySigned(secrets.value, { ...request, nowSeconds: Math.floor(Date.now() / 1000) });
          return verdict === 'ok' ? { ok: true } : { ok: false, reason: verdict };
        },
        close: () => secrets.close(),
      };
    }
    case 'jwt': {
      const file = rule.keyFile === undefined ? undefined : await watch(rule.keyFile, parseJwtKey);
      const remote: JwtKey | undefined = rule.jwksUrl === undefined ? undefined : remoteJwtKey(rule.jwksUrl);
      return {
        check: async (request) => {
          const read = readCredentials(request.params, JWT_PARAM);
          if (!read.ok) return { ok: false, reason: 'bad_token', detail: 'malformed jwt' };
          const token = read.credentials.jwt ?? request.bearer;
          const verdict = await verifyJwt((file?.value ?? remote) as JwtKey, rule, { ...request, token: token ?? undefined });
          return verdict === 'ok' ? { ok: true } : { ok: false, reason: verdict };
        },
        close: () => file?.close(),
      };
    }
    case 'callback': {
      const url =
        rule.urlFile === undefined ? undefined : await watch(rule.urlFile, (entries) => lines([...entries.values()][0] ?? '')[0] ?? '');
      const client = new CallbackClient(() => url?.value ?? rule.url ?? '', rule);
      return {
        check: async (request) => {
          const { verdict, detail } = await client.ask({ ...request, query: request.params.toString() });
          if (verdict === 'ok' || (verdict === 'callback_failed' && rule.failOpen)) return { ok: true };
          return { ok: false, reason: verdict, ...(detail ? { detail } : {}) };
        },
        close: () => url?.close(),
      };
    }
  }
}
