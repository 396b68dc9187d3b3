// A logged stack names rtmpd's source files and lines, not the minified
// bundle's (rtmpd/bundle.ts writes a source map beside each of its files).
// Node's --enable-source-maps would do it for every trace, but it reads and
// keeps the maps of all the bundle's files as they load: 7-10 MiB more RSS in
// an idle rtmpd (docs/performance.md, "Stack traces by source line"). The
// logger maps the stacks it writes instead, reading a file's map at the first
// stack that names the file. A decoded map is big (main.js's holds about 6 MiB
// of heap and takes 40-430 ms of a blocked loop to decode on a loaded machine),
// so the maps read are kept while stacks come, and dropped a minute after the
// last: a burst or a flood of errors decodes each once, a quiet rtmpd holds
// none, and errors that keep coming cost one decode per file a minute at most.
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath } from 'node:url';

/** rtmpd's built code, dist/ (the bundle is dist/bundle/); run from its sources, its frames name .ts files, which need no map. */
const builtCode = new URL('..', import.meta.url).href;
/** A frame's position: the file's URL, its line and column. */
const POSITION = /(file:\/\/[^\s()]+\.js):(\d+):(\d+)/g;

/** How long the maps read are kept after the last stack that needed one. */
const MAPS_KEPT_MS = 60_000;

/** The source maps of rtmpd's built files, read as stacks name them and dropped once stacks stop coming. */
export class SourceMaps {
  readonly #read: (url: string) => SourceMap | undefined;
  /** Each file's map once read; undefined for a file without a usable one. */
  readonly #maps = new Map<string, SourceMap | undefined>();
  #drop: NodeJS.Timeout | undefined;

  /** `read`: the map at a map file's URL, undefined when there is none to use. */
  constructor(read: (url: string) => SourceMap | undefined = readSourceMap) {
    this.#read = read;
  }

  /** `stack` with each position in rtmpd's built code replaced by the source file, line and column it was built from. */
  mapStack(stack: string): string {
    return stack.replace(POSITION, (position, file: string, line: string, column: string) => {
      if (!file.startsWith(builtCode)) return position;
      const origin = this.#mapOf(file)?.findOrigin(Number(line), Number(column));
      return origin && 'fileName' in origin ? `${origin.fileName}:${origin.lineNumber}:${origin.columnNumber}` : position;
    });
  }

  #mapOf(file: string): SourceMap | undefined {
    if (!this.#maps.has(file)) this.#maps.set(file, this.#read(`${file}.map`));
    if (this.#drop) this.#drop.refresh();
    else
      this.#drop = setTimeout(() => {
        this.#drop = undefined;
        this.#maps.clear();
      }, MAPS_KEPT_MS).unref();
    return this.#maps.get(file);
  }
}

const processMaps = new SourceMaps();

/** `stack` mapped through the maps of rtmpd's built files (SourceMaps#mapStack), as the logger writes it. */
export const sourceMappedStack = (stack: string): string => processMaps.mapStack(stack);

function readSourceMap(url: string): SourceMap | undefined {
  try {
    const payload = JSON.parse(readFileSync(new URL(url), 'utf8')) as SourceMapPayload;
    // A map names the sources relative to itself; the trace names them by path.
    return new SourceMap({ ...payload, sources: payload.sources.map((source) => fileURLToPath(new URL(source, url))) });
  } catch {
    return undefined; // no map beside the file (a build without them) or an unreadable one: its frames stay as they are
  }
}
