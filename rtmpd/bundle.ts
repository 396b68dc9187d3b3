// Bundles rtmpd (`make build`): rtmpd/src → rtmpd/dist/bundle, which bin/rtmpd.js
// (so `make run`, `make bench` and the image) runs; the tests run the sources.
// One minified bundle holds less than the modules it replaces: V8 keeps every
// module's source text for lazy compilation, and zod's alone is 0.85 MB.
//   node rtmpd/bundle.ts
import { rm } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const src = (path: string) => fileURLToPath(new URL(`src/${path}`, import.meta.url));
const outdir = fileURLToPath(new URL('dist/bundle/', import.meta.url));

/**
 * Packages loaded from node_modules at run time rather than bundled: those
 * rtmpd loads only when a feature is on (the fleet's Kubernetes client,
 * tracing, snapshots' ffmpeg wrapper, JWT, YAML config files, pretty logs),
 * and mime-db, whose table parsed from JSON leaves no source text behind.
 */
const EXTERNAL = ['@kubernetes/client-node', '@opentelemetry/*', 'fluent-ffmpeg', 'jose', 'yaml', 'pino-pretty', 'mime-db'];

/** zod's messages in English only: its other 40-odd locales are never used and would be a third of its code. */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /\/locales\/index\.js$/ }, ({ path, resolveDir }) =>
      resolveDir.includes('/zod/') ? { path: `${resolveDir}/${path.replace('index.js', 'en.js')}`, namespace: 'zod-locales' } : undefined,
    );
    build.onLoad({ filter: /./, namespace: 'zod-locales' }, ({ path }) => ({
      contents: `export { default as en } from ${JSON.stringify(path)};`,
      resolveDir: '/',
    }));
  },
};

/** Writes the bundle: the entry points bin/rtmpd.js imports, lazily loaded parts as chunks of their own. */
export async function buildRtmpd(): Promise<Record<string, number>> {
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: {
      main: src('main.ts'),
      'require-node': src('require-node.ts'),
      'node-flags': src('memory/node-flags.ts'),
      'start-up-tiers': src('memory/start-up-tiers.ts'),
    },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    minify: true,
    // Stack traces point into the bundle; RTMPD_NODE_FLAGS=--enable-source-maps maps them to the
    // sources (off by default: it holds 11 MiB more at idle).
    sourcemap: 'linked',
    external: EXTERNAL,
    // The CommonJS packages bundled (Koa, pino) require Node's built-ins; an ES module has no require of its own.
    banner: {
      js: "import { createRequire as __rtmpdCreateRequire } from 'node:module'; const require = __rtmpdCreateRequire(import.meta.url);",
    },
    plugins: [zodEnglishOnly],
    metafile: true,
    logLevel: 'warning',
  });
  return Object.fromEntries(Object.entries(result.metafile.outputs).map(([path, { bytes }]) => [path, bytes]));
}

if (import.meta.main) {
  const outputs = await buildRtmpd();
  const scripts = Object.entries(outputs).filter(([path]) => path.endsWith('.js'));
  const bytes = scripts.reduce((sum, [, size]) => sum + size, 0);
  console.log(`rtmpd: ${scripts.length} scripts, ${(bytes / 1024).toFixed(0)} KiB in ${relative(process.cwd(), outdir)}`);
}
