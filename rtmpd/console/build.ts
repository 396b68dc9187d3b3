// Bundles the web console (`make build`): rtmpd/console/src → rtmpd/dist/console,
// where rtmpd serves it from (src/http/console.ts). Scripts and styles get
// content-hashed names; the player libraries are split into chunks of their
// own, loaded only when a stream is watched (mpegts.js) or played over HLS (hls.js).
//   node rtmpd/console/build.ts
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = fileURLToPath(new URL('.', import.meta.url));
// Where rtmpd looks for it (src/http/console.ts).
const outdir = fileURLToPath(new URL('../dist/console/', import.meta.url));

interface BuiltFile {
  name: string;
  bytes: number;
  gzipBytes: number;
}

/** Writes the bundle and returns its files with their sizes. */
export async function buildConsole(): Promise<BuiltFile[]> {
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { app: join(here, 'src/main.ts') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    target: ['chrome110', 'firefox110', 'safari16'],
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.entries(result.metafile.outputs);
  // The entry script imports the styles, so esbuild writes them as its CSS bundle.
  const [script, app] = outputs.find(([, output]) => output.entryPoint !== undefined) ?? [];
  if (!script || !app?.cssBundle) throw new Error('the console build produced no entry script with styles');
  const template = await readFile(join(here, 'index.html'), 'utf8');
  const page = template.replace('{{app.js}}', basename(script)).replace('{{app.css}}', basename(app.cssBundle));
  await writeFile(join(outdir, 'index.html'), page);
  await copyFile(join(here, 'favicon.svg'), join(outdir, 'favicon.svg'));
  const files: BuiltFile[] = [];
  for (const name of [...outputs.map(([path]) => basename(path)), 'index.html', 'favicon.svg']) {
    const body = await readFile(join(outdir, name));
    files.push({ name, bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length });
  }
  return files;
}

if (import.meta.main) {
  const files = await buildConsole();
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  for (const { name, bytes, gzipBytes } of files)
    console.log(`  ${name.padEnd(28)} ${kib(bytes).padStart(10)} ${kib(gzipBytes).padStart(10)} gzip`);
  console.log(`console: ${files.length} files in ${relative(process.cwd(), outdir)}`);
}
