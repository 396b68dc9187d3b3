import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { Logger } from '../telemetry/logger.ts';
import { ApiError } from './errors.ts';
import { noQuery } from './query.ts';
import type { Router } from './required-modules.ts';
import { routerFor, type RouteGroup } from './routing.ts';

/** Where `make build` (rtmpd/console/build.ts) writes the bundle: rtmpd/dist/console, from src/http or dist/http alike. */
const CONSOLE_DIST = fileURLToPath(new URL('../../dist/console/', import.meta.url));

const port = z.number().int().min(1).max(65_535);

/**
 * What the page cannot learn from the HTTP side it was loaded from. The
 * console builds the addresses to copy from the page's host name and the
 * ports rtmpd listens on (null: that listener is off); optional panels appear
 * when the server says it has what they read.
 */
const consoleSettingsSchema = z.object({
  rtmp_port: port,
  /** --rtmps-bind's port. */
  rtmps_port: port.nullable(),
  http_port: port,
  /** --https-bind's port. */
  https_port: port.nullable(),
  /** The recordings API (GET /api/v1/rtmp/recordings) is mounted. */
  recordings: z.boolean(),
  /** --snapshot-enabled: the grid asks for thumbnails only when it is on. */
  snapshots: z.boolean(),
});
export type ConsoleSettings = z.infer<typeof consoleSettingsSchema>;

export interface ConsoleOptions {
  /** Read at the first request for them, when every listener is bound. */
  settings: () => ConsoleSettings;
  logger: Logger;
  /** The bundle's directory; CONSOLE_DIST unless a test says otherwise. */
  dir?: string;
}

interface Asset {
  type: string;
  body: Buffer;
  /** Only when it saves bytes. */
  gzip?: Buffer;
  etag: string;
  cacheControl: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

// Everything comes from this origin (no CDN); media plays from MediaSource blobs.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSET_PREFIX = '/console/';

/**
 * The web console: `GET /` is its page, `/console/<file>` its bundled
 * scripts and styles (content-hashed names, cached for good) and
 * `/console/settings.json` what the page needs from the server. Any other
 * name passes on untouched, so `/console/<key>.flv` stays a stream of the
 * app `console`. The bundle is read into memory once, when the console is
 * first asked for: a server nobody opens the console of does not hold it.
 */
export const CONSOLE_ROUTES = {
  page: {
    method: 'get',
    paths: ['/'],
    summary: 'The web console',
    access: 'open',
    query: noQuery,
    othersIgnored: true,
    ok: { 200: { description: 'The page', media: ['text/html'] }, 304: { description: 'Not modified (If-None-Match)', empty: true } },
    errors: { 503: ['console_not_built'] },
    internal: 'console',
  },
  // Before the files: settings.json would be one.
  settings: {
    method: 'get',
    paths: [`${ASSET_PREFIX}settings.json`],
    summary: "What the console's page needs from the server: the ports it listens on, the panels it has",
    access: 'open',
    query: noQuery,
    ok: { 200: { description: 'The settings', json: consoleSettingsSchema } },
    internal: 'console',
  },
  file: {
    method: 'get',
    paths: [`${ASSET_PREFIX}:file`],
    summary: "The console's scripts, styles and icon (another name passes on, e.g. to HTTP-FLV)",
    access: 'open',
    query: noQuery,
    othersIgnored: true,
    ok: {
      200: { description: 'The file', media: ['text/javascript', 'text/css', 'image/svg+xml'] },
      304: { description: 'Not modified (If-None-Match)', empty: true },
    },
    errors: { 404: ['not_found'] },
    internal: 'console',
  },
} satisfies RouteGroup;

export function consoleRoutes({ settings, logger, dir = CONSOLE_DIST }: ConsoleOptions): Router {
  let assets: Map<string, Asset> | undefined | null = null; // null: not read yet
  if (!existsSync(join(dir, 'index.html'))) logger.warn({ dir }, 'the web console is not built (run make build); GET / answers 503');
  let settingsBody: string | undefined;
  /** Serves the built file `name`, or passes on when there is none. */
  const file = async (ctx: Context, name: string, next: Next) => {
    if (assets === null) assets = loadAssets(dir);
    if (!assets) {
      if (name !== 'index.html') return next();
      throw new ApiError(503, 'console_not_built', `the web console's bundle is missing from ${dir}; run make build`);
    }
    const asset = assets.get(name);
    if (!asset) return next();
    serve(ctx, asset);
  };
  return routerFor(CONSOLE_ROUTES, {
    page: (ctx, _, next) => file(ctx, 'index.html', next),
    settings: (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.type = TYPES['.json']!;
      ctx.body = settingsBody ??= JSON.stringify(consoleSettingsSchema.parse(settings()));
    },
    file: (ctx, _, next) => file(ctx, ctx.params.file ?? '', next),
  });
}

function serve(ctx: Context, asset: Asset): void {
  ctx.set('Cache-Control', asset.cacheControl);
  ctx.set('ETag', asset.etag);
  ctx.set('X-Content-Type-Options', 'nosniff');
  if (asset.type.startsWith('text/html')) ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  ctx.vary('Accept-Encoding');
  ctx.type = asset.type;
  if (ctx.get('If-None-Match') === asset.etag) {
    ctx.status = 304;
    return;
  }
  if (asset.gzip && ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
    ctx.set('Content-Encoding', 'gzip');
    ctx.body = asset.gzip;
  } else {
    ctx.body = asset.body;
  }
}

/** The built files by name; undefined when there is no bundle. */
function loadAssets(dir: string): Map<string, Asset> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    const gzip = gzipSync(body, { level: 9 });
    // The build names scripts and styles by their content's hash; the page and its icon keep their names.
    const hashed = /-[A-Z0-9]{8}\.(js|css)$/.test(name);
    assets.set(name, {
      type,
      body,
      gzip: gzip.length < body.length ? gzip : undefined,
      etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
      cacheControl: hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  }
  return assets;
}
