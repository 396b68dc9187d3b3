// A logged stack names rtmpd's source files and lines, not the minified
// bundle's (rtmpd/bundle.ts writes a source map beside each of its files).
// Node's --enable-source-maps would do it for every trace, but it reads and
// keeps the maps of all the bundle's files as they load: 7-10 MiB more RSS in
// an idle rtmpd (docs/performance.md, "Stack traces by source line"). The
// logger maps the stacks it writes instead, reading a file's map at the first
// stack that names the file. A decoded map is big (main.js's holds about 6 MiB
// of heap and took 0.1-0.25 s to read), so the maps read are kept while stacks
// come, and dropped a minute after the last: a burst of errors reads each
// once, a quiet rtmpd holds none.
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath } from 'node:url';

/** rtmpd's built code, dist/ (the bundle is dist/bundle/); run from its sources, its frames name .ts files, which need no map. */
const builtCode = new URL('..', import.meta.url).href;
/** A frame's position: the file's URL, its line and column. */
const POSITION = /(file:\/\/[^\s()]+\.js):(\d+):(\d+)/g;
/** Each file's map once read; undefined for a file without a readable one. */
const maps = new Map<string, SourceMap | undefined>();
const MAPS_KEPT_MS = 60_000;
let dropMaps: NodeJS.Timeout | undefined;

/** `stack` with each position in rtmpd's built code replaced by the source file, line and column it was built from. */
export function sourceMappedStack(stack: string): string {
  return stack.replace(POSITION, (position, file: string, line: string, column: string) => {
    if (!file.startsWith(builtCode)) return position;
    const origin = sourceMapOf(file)?.findOrigin(Number(line), Number(column));
    return origin && 'fileName' in origin ? `${origin.fileName}:${origin.lineNumber}:${origin.columnNumber}` : position;
  });
}

function sourceMapOf(file: string): SourceMap | undefined {
  if (!maps.has(file)) maps.set(file, readSourceMap(`${file}.map`));
  if (dropMaps) dropMaps.refresh();
  else
    dropMaps = setTimeout(() => {
      dropMaps = undefined;
      maps.clear();
    }, MAPS_KEPT_MS).unref();
  return maps.get(file);
}

function readSourceMap(url: string): SourceMap | undefined {
  try {
    const payload = JSON.parse(readFileSync(new URL(url), 'utf8')) as SourceMapPayload;
    // A map names the sources relative to itself; the trace names them by path.
    return new SourceMap({ ...payload, sources: payload.sources.map((source) => fileURLToPath(new URL(source, url))) });
  } catch {
    return undefined; // no map beside the file (a build without them) or an unreadable one: its frames stay as they are
  }
}
