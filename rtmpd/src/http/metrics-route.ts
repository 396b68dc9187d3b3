// GET /metrics: Prometheus scrapes it (telemetry/metrics.ts renders it).
import { noQuery } from './query.ts';
import type { Router } from './required-modules.ts';
import { routerFor, type RouteGroup } from './routing.ts';

export const METRICS_ROUTES = {
  scrape: {
    method: 'get',
    paths: ['/metrics'],
    summary: 'Prometheus metrics',
    access: 'metrics',
    query: noQuery,
    ok: { 200: { description: 'Metrics in the Prometheus text format', media: ['text/plain'] } },
  },
} satisfies RouteGroup;

/** What /metrics answers: the metrics in their text format. */
export interface MetricsSource {
  contentType: string;
  scrape(): Promise<Buffer>;
}

export const metricsRoute = (metrics: MetricsSource): Router =>
  routerFor(METRICS_ROUTES, {
    scrape: async (ctx) => {
      ctx.type = metrics.contentType;
      ctx.body = await metrics.scrape();
    },
  });
