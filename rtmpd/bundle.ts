// Bundles rtmpd (`make build`): rtmpd/src → rtmpd/dist/bundle, which bin/rtmpd.js
// (so `make run`, `make bench` and the image) runs; the tests run the sources.
// One minified bundle holds less than the modules it replaces: V8 keeps every
// module's source text for lazy compilation, and zod's alone is 0.85 MB.
//   node rtmpd/bundle.ts
import { readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const src = (path: string) => fileURLToPath(new URL(`src/${path}`, import.meta.url));
const outdir = fileURLToPath(new URL('dist/bundle/', import.meta.url));

/**
 * Packages loaded from node_modules at run time rather than bundled: those
 * rtmpd loads only when a feature is on (the fleet's Kubernetes client,
 * tracing, snapshots' ffmpeg wrapper, JWT, YAML config files, pretty logs).
 */
const EXTERNAL = ['@kubernetes/client-node', '@opentelemetry/*', 'fluent-ffmpeg', 'jose', 'yaml', 'pino-pretty'];

/**
 * Node built-ins that an idle rtmpd never calls but its code and Koa import at
 * start: each loads on its first use instead (node:crypto at the first RTMP
 * handshake, node:assert at the first HTTP response, node:zlib when the console
 * is first opened), which keeps 1.0 MiB out of an idle rtmpd. An import gets
 * stand-ins that load the module when called or constructed (importing
 * anything but a function fails the build), a require an object whose
 * properties load it when read.
 */
const LAZY_BUILTINS = ['crypto', 'assert', 'zlib'];
const builtin = (name: string) => process.getBuiltinModule(`node:${name}`) as Record<string, unknown>;

const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter }, ({ path, kind }) => ({
      path: path.replace(/^node:/, ''),
      namespace: kind === 'require-call' ? 'lazy-require' : 'lazy-import',
    }));
    const load = (name: string) => `let loaded; const load = () => (loaded ??= process.getBuiltinModule('node:${name}'));\n`;
    build.onLoad({ filter: /./, namespace: 'lazy-import' }, ({ path }) => {
      const functions = Object.entries(builtin(path)).filter(([, value]) => typeof value === 'function');
      const standIns = functions.map(
        ([key]) =>
          `export function ${key}(...args) { return new.target ? Reflect.construct(load().${key}, args) : load().${key}(...args); }`,
      );
      return { contents: load(path) + standIns.join('\n'), loader: 'js' };
    });
    build.onLoad({ filter: /./, namespace: 'lazy-require' }, ({ path }) => {
      const module = builtin(path);
      const target = typeof module === 'function' ? 'function (...args) { return load()(...args); }' : '{}';
      const keys = JSON.stringify(Object.keys(module));
      return {
        contents: `${load(path)}module.exports = ${target};
for (const key of ${keys}) Object.defineProperty(module.exports, key, { get: () => load()[key], enumerable: true });`,
        loader: 'js',
      };
    });
  },
};

/**
 * mime-db cut to what Koa looks up for rtmpd: the charset it appends to a
 * full media type (`application/json` gets `; charset=utf-8`), which only the
 * entries that name one decide, and the short names Koa sets itself (json,
 * html, text, bin). All 2,500 entries held 0.6 MiB of an idle rtmpd.
 */
const mimeSubset: Plugin = {
  name: 'mime-subset',
  setup(build) {
    build.onResolve({ filter: /^mime-db$/ }, () => ({ path: 'mime-db', namespace: 'mime-subset' }));
    build.onLoad({ filter: /./, namespace: 'mime-subset' }, () => ({
      contents: `module.exports = ${JSON.stringify(mimeTypesKoaUses())};`,
      loader: 'js',
    }));
  },
};

interface MimeEntry {
  charset?: string;
  extensions?: string[];
}

const KOA_SHORT_NAMES = ['json', 'html', 'text', 'bin'];

function mimeTypesKoaUses(): Record<string, MimeEntry> {
  const db = createRequire(import.meta.url)('mime-db') as Record<string, MimeEntry>;
  return Object.fromEntries(
    Object.entries(db).filter(([, entry]) => entry.charset || entry.extensions?.some((ext) => KOA_SHORT_NAMES.includes(ext))),
  );
}

/**
 * Koa asks of a JSON or stream body whether it is a fetch Response
 * (`instanceof Response`), and reading Node's global Response loads undici,
 * fetch's implementation, with zlib: 15 MiB more RSS from the first JSON
 * answer or HTTP-FLV player on. Koa's two files ask a Response's
 * toStringTag instead, which needs nothing loaded; a change in Koa that
 * leaves nothing to rewrite fails the build.
 */
const koaWithoutUndici: Plugin = {
  name: 'koa-without-undici',
  setup(build) {
    build.onLoad({ filter: /\/koa\/lib\/(application|response)\.js$/ }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      const contents = source.replaceAll(/(\w+) instanceof Response\b/g, "$1?.[Symbol.toStringTag] === 'Response'");
      if (contents === source) throw new Error(`${path} no longer tests \`instanceof Response\`: see koaWithoutUndici`);
      return { contents, loader: 'js' };
    });
  },
};

/**
 * rtmpd's sources require some packages through `createRequire` (node:http
 * and @koa/router, so that no ES import reads node:http's getters that load
 * undici; prom-client's parts), which esbuild cannot follow: @koa/router and
 * prom-client were loaded from node_modules beside the bundle, each file's
 * source text kept by V8, with second copies of what Koa bundles
 * (http-errors, koa-compose, debug): 0.3-0.4 MiB of an idle rtmpd. Without
 * that line a source's `require` is esbuild's, which bundles what it names
 * and still requires Node's built-ins and the external packages at run time.
 */
const bundledRequires: Plugin = {
  name: 'bundled-requires',
  setup(build) {
    const ownRequire = 'const require = createRequire(import.meta.url);';
    build.onLoad({ filter: /\/rtmpd\/src\/.*\.ts$/ }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      return source.includes(ownRequire) ? { contents: source.replace(ownRequire, ''), loader: 'ts' } : undefined;
    });
  },
};

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
async function buildRtmpd(): Promise<Record<string, number>> {
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
    // A map beside each file, naming the sources' files, lines and columns but not holding their text:
    // the stacks rtmpd logs are mapped through them (src/telemetry/source-mapped-stack.ts).
    sourcemap: 'linked',
    sourcesContent: false,
    external: EXTERNAL,
    // The CommonJS packages bundled (Koa, pino) require Node's built-ins; an ES module has no require of its own.
    banner: {
      js: "import { createRequire as __rtmpdCreateRequire } from 'node:module'; const require = __rtmpdCreateRequire(import.meta.url);",
    },
    plugins: [zodEnglishOnly, lazyBuiltins, mimeSubset, koaWithoutUndici, bundledRequires],
    metafile: true,
    logLevel: 'warning',
  });
  const worker = await buildLivenessWorker();
  return Object.fromEntries(
    Object.entries({ ...result.metafile.outputs, ...worker.metafile.outputs }).map(([path, { bytes }]) => [path, bytes]),
  );
}

/**
 * The liveness thread's script (http/liveness.ts loads it beside the chunk
 * that starts it), as CommonJS: a worker that loads an ES module starts
 * Node's ES module loader in its thread, 16 MiB of RSS against 8 MiB.
 */
function buildLivenessWorker() {
  return build({
    entryPoints: [src('http/liveness-worker.ts')],
    outfile: `${outdir}liveness-worker.cjs`,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node24',
    minify: true,
    metafile: true,
    logLevel: 'warning',
  });
}

if (import.meta.main) {
  const outputs = await buildRtmpd();
  const scripts = Object.entries(outputs).filter(([path]) => /\.c?js$/.test(path));
  const bytes = scripts.reduce((sum, [, size]) => sum + size, 0);
  console.log(`rtmpd: ${scripts.length} scripts, ${(bytes / 1024).toFixed(0)} KiB in ${relative(process.cwd(), outdir)}`);
}
