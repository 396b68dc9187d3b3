// Wiring: kubeconfig, controller, leader election, the health and metrics
// endpoints (endpoints.ts), and an orderly stop.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { openAPISchema } from './api/crd.ts';
import { group, kind, plural, version as apiVersion } from './api/rtmpserver.ts';
import { staleCrd } from './api/served-schema.ts';
import { Controller, controllerName } from './controller/controller.ts';
import { CrdGate } from './controller/crd-gate.ts';
import { ApiEventRecorder } from './controller/events.ts';
import { fieldManager } from './controller/manifest.ts';
import { LeaderElector } from './controller/leader.ts';
import { createMetrics, type Metrics } from './controller/metrics.ts';
import { serveEndpoints, type Endpoints } from './endpoints.ts';
import type { Flags } from './flags.ts';
import { loadKubeConfig } from './kube-client.ts';
import { version } from './version.ts';

/** The running operator: where its endpoints listen, and its orderly stop. */
export interface Operator extends Pick<Endpoints, 'metricsAddress' | 'metricsScheme' | 'healthAddress'> {
  stop(): Promise<void>;
}

const serviceAccountNamespace = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function leaseNamespace(flags: Flags, kc: KubeConfig): string {
  if (flags.leaderElectionNamespace) return flags.leaderElectionNamespace;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(serviceAccountNamespace, 'utf8').trim();
  } catch {
    return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  }
}

export async function startOperator(
  flags: Flags,
  opts: { log?: Logger; onFatal?: (why: string, err?: unknown) => void } = {},
): Promise<Operator> {
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
    requeueAfterMs: flags.requeueSeconds * 1000,
  });
  const crdGate = staleCrdGate(kc, identity, log);
  const endpoints = await serveEndpoints({
    flags,
    kubeConfig: kc,
    registry: metrics.registry,
    notReady: () => crdGate.problem || (controller.synced ? undefined : 'informers not synced'),
    log,
  });
  const { metricsAddress, metricsScheme, healthAddress } = endpoints;
  log.info(
    { version, identity, namespaces: flags.namespaces.length ? flags.namespaces : 'all', metricsAddress, metricsScheme, healthAddress },
    'rtmpd-operator starting',
  );

  controller.startInformers();
  let stopping = false;
  const fatal = opts.onFatal ?? exitFatally(log);
  const startWorkers = async () => {
    if (!(await crdGate.wait())) return;
    await controller.startWorkers().catch((err: unknown) => fatal('starting the controller failed', err));
  };
  // Like controller-runtime: a replica that lost its lease exits and starts over.
  const lost = () => {
    if (!stopping) fatal('leader election lost');
  };
  const elector = flags.leaderElect ? electLeader(flags, kc, { identity, log, metrics, startWorkers, lost }) : undefined;
  if (!elector) void startWorkers();

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
      await endpoints.close();
      log.info('stopped');
    },
  };
}

/** Holds the workers back while the cluster's CRD is older than this operator's schema, and says so in an Event on the operator's pod. */
function staleCrdGate(kc: KubeConfig, identity: string, log: Logger): CrdGate {
  const events = new ApiEventRecorder({ core: kc.makeApiClient(CoreV1Api), component: fieldManager, instance: identity, log });
  const { POD_NAME, POD_NAMESPACE } = process.env;
  return new CrdGate({
    check: () => staleCrd(kc, { group, version: apiVersion, kind }, openAPISchema(), `${plural}.${group}`),
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
}

function exitFatally(log: Logger): (why: string, err?: unknown) => void {
  return (why, err) => {
    log.fatal({ err }, why);
    process.exit(1);
  };
}

interface Candidate {
  identity: string;
  log: Logger;
  metrics: Metrics;
  /** Called on winning the lease. */
  startWorkers: () => Promise<void>;
  /** Called on losing it. */
  lost: () => void;
}

/** Runs for the lease: the workers start once it is held, leader_election_master_status tells whether it is. */
function electLeader(flags: Flags, kc: KubeConfig, { identity, log, metrics, startWorkers, lost }: Candidate): LeaderElector {
  const namespace = leaseNamespace(flags, kc);
  const name = flags.leaderElectionId;
  metrics.leader.set({ name }, 0);
  const elector = new LeaderElector({
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
      lost();
    },
    onNewLeader: (holder) => log.info({ leader: holder }, 'leader observed'),
  });
  log.info({ lease: `${namespace}/${name}` }, 'waiting for leadership');
  elector.start();
  return elector;
}
