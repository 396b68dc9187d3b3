// Wiring: kubeconfig, controller, leader election, the health and metrics
// endpoints, and an orderly stop.
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { AuthenticationV1Api, AuthorizationV1Api, CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { openAPISchema } from './api/crd.ts';
import { group, kind, plural, version as apiVersion } from './api/rtmpserver.ts';
import { staleCrd } from './api/served-schema.ts';
import { Controller, controllerName } from './controller/controller.ts';
import { CrdGate } from './controller/crd-gate.ts';
import { ApiEventRecorder } from './controller/events.ts';
import { fieldManager } from './controller/manifest.ts';
import { LeaderElector } from './controller/leader.ts';
import { createMetrics } from './controller/metrics.ts';
import { splitBind, type Flags } from './flags.ts';
import { loadKubeConfig } from './kube-client.ts';
import { MetricsAuth } from './metrics-auth.ts';
import { selfSignedTlsPair, watchTlsPair } from './metrics-tls.ts';
import { version } from './version.ts';

export interface Operator {
  /** Addresses actually bound (useful with port 0). */
  metricsAddress: string;
  /** https with --metrics-auth=kubernetes, so the scraper's token is never sent in clear. */
  metricsScheme: 'http' | 'https';
  healthAddress: string;
  stop(): Promise<void>;
}

const serviceAccountNamespace = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
/** How often --metrics-cert-dir is read again (two small files), as rtmpd reads its certificate. */
const METRICS_CERT_POLL_MS = 2000;

function leaseNamespace(flags: Flags, kc: KubeConfig): string {
  if (flags.leaderElectionNamespace) return flags.leaderElectionNamespace;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(serviceAccountNamespace, 'utf8').trim();
  } catch {
    return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  }
}

/** A port the operator cannot listen on (or serve TLS on); the message names the flag that set it. */
export class ListenError extends Error {
  override name = 'ListenError';
}

function listen(server: Server, bind: string, flag: string): Promise<string> {
  const { host, port } = splitBind(bind);
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new ListenError(`cannot listen on ${bind} (--${flag}): the address is already in use`) : err),
    );
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

export async function startOperator(flags: Flags, opts: { log?: Logger; onFatal?: (why: string) => void } = {}): Promise<Operator> {
  const log = opts.log ?? pino({ level: flags.logLevel, base: { component: 'rtmpd-operator' } });
  const kc = loadKubeConfig(flags.kubeconfig);
  const identity = `${hostname()}_${randomBytes(6).toString('hex')}`;
  const metrics = createMetrics(controllerName);
  const controller = new Controller({
    kubeConfig: kc,
    namespaces: flags.namespaces,
    log,
    metrics,
    identity,
    defaults: { image: flags.rtmpdImage, transcodeImage: flags.rtmpdTranscodeImage },
    workers: flags.workers,
  });

  const crdName = `${plural}.${group}`;
  const events = new ApiEventRecorder({ core: kc.makeApiClient(CoreV1Api), component: fieldManager, instance: identity, log });
  const { POD_NAME, POD_NAMESPACE } = process.env;
  const crdGate = new CrdGate({
    check: () => staleCrd(kc, { group, version: apiVersion, kind }, openAPISchema(), crdName),
    log,
    // The Event is about this operator's pod, where `kubectl describe` shows it.
    onStale: (why) => {
      if (POD_NAME && POD_NAMESPACE)
        void events.event(
          { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD_NAME, namespace: POD_NAMESPACE } },
          'Warning',
          'CRDOutdated',
          why,
        );
    },
  });

  const metricsAuth =
    flags.metricsAuth === 'kubernetes'
      ? new MetricsAuth({ authn: kc.makeApiClient(AuthenticationV1Api), authz: kc.makeApiClient(AuthorizationV1Api) })
      : undefined;

  interface Answer {
    code: number;
    type: string;
    body: string;
    headers?: Record<string, string>;
  }
  const handler = async (path: string, authorization: string | undefined): Promise<Answer> => {
    if (path === '/metrics' && metricsAuth) {
      const { code, message, challenge } = await metricsAuth.check(authorization, path);
      if (code !== 200)
        return {
          code,
          type: 'application/json',
          body: JSON.stringify({ error: message, code }),
          ...(challenge ? { headers: { 'www-authenticate': challenge } } : {}),
        };
    }
    if (path === '/healthz') return { code: 200, type: 'text/plain', body: 'ok' };
    if (path === '/readyz' && crdGate.problem) return { code: 503, type: 'text/plain', body: crdGate.problem };
    if (path === '/readyz')
      return controller.synced
        ? { code: 200, type: 'text/plain', body: 'ok' }
        : { code: 503, type: 'text/plain', body: 'informers not synced' };
    if (path === '/metrics') return { code: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
    return { code: 404, type: 'text/plain', body: 'not found' };
  };
  // With token authentication the metrics port speaks TLS (also for /healthz and /readyz when they share it).
  // A renewed Secret is served from the next connection on, without a restart.
  const secureServers: HttpsServer[] = [];
  const certificate =
    metricsAuth && flags.metricsCertDir
      ? await watchTlsPair({ dir: flags.metricsCertDir, servers: secureServers, log, intervalMs: METRICS_CERT_POLL_MS }).catch(
          (err: unknown) => {
            throw new ListenError(`cannot serve /metrics over HTTPS: ${err instanceof Error ? err.message : String(err)}`);
          },
        )
      : undefined;
  const tls = metricsAuth ? (certificate?.value ?? selfSignedTlsPair(['localhost', '127.0.0.1', '::1', hostname()])) : undefined;
  const makeServer = (paths: string[], secure: boolean) => {
    const serve: RequestListener = (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (!paths.includes(path)) {
        res.writeHead(404).end('not found');
        return;
      }
      handler(path, req.headers.authorization).then(
        (r) => res.writeHead(r.code, { ...r.headers, 'content-type': r.type }).end(r.body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    };
    if (!secure || !tls) return createServer(serve);
    const server = createHttpsServer(tls, serve);
    secureServers.push(server);
    return server;
  };
  const metricsScheme = tls ? 'https' : 'http';
  const servers: Server[] = [];
  let metricsAddress: string;
  let healthAddress: string;
  if (flags.metricsBind === flags.healthBind) {
    const s = makeServer(['/metrics', '/healthz', '/readyz'], true);
    servers.push(s);
    metricsAddress = healthAddress = await listen(s, flags.metricsBind, 'metrics-bind');
  } else {
    const m = makeServer(['/metrics'], true);
    const h = makeServer(['/healthz', '/readyz'], false);
    servers.push(m, h);
    metricsAddress = await listen(m, flags.metricsBind, 'metrics-bind');
    healthAddress = await listen(h, flags.healthBind, 'health-bind');
  }
  log.info(
    { version, identity, namespaces: flags.namespaces.length ? flags.namespaces : 'all', metricsAddress, metricsScheme, healthAddress },
    'rtmpd-operator starting',
  );

  controller.startInformers();
  let stopping = false;
  let elector: LeaderElector | undefined;
  const fatal =
    opts.onFatal ??
    ((why: string) => {
      log.fatal(why);
      process.exit(1);
    });
  const startWorkers = async () => {
    if (!(await crdGate.wait())) return;
    await controller.startWorkers().catch((err: unknown) => fatal(`starting the controller failed: ${String(err)}`));
  };
  if (flags.leaderElect) {
    const namespace = leaseNamespace(flags, kc);
    const name = flags.leaderElectionId;
    metrics.leader.set({ name }, 0);
    elector = new LeaderElector({
      api: kc.makeApiClient(CoordinationV1Api),
      namespace,
      name,
      identity,
      log,
      onStartedLeading: () => {
        metrics.leader.set({ name }, 1);
        void startWorkers();
      },
      onStoppedLeading: () => {
        metrics.leader.set({ name }, 0);
        // Like controller-runtime: a replica that lost its lease exits and starts over.
        if (!stopping) fatal('leader election lost');
      },
      onNewLeader: (holder) => log.info({ leader: holder }, 'leader observed'),
    });
    log.info({ lease: `${namespace}/${name}` }, 'waiting for leadership');
    elector.start();
  } else {
    void startWorkers();
  }

  return {
    metricsAddress,
    metricsScheme,
    healthAddress,
    async stop() {
      if (stopping) return;
      stopping = true;
      crdGate.stop();
      log.info('stopping: finishing running reconciles');
      await controller.stop();
      await elector?.stop();
      certificate?.close();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      log.info('stopped');
    },
  };
}
