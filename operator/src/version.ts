// The operator's version, read from its package.json in this one place. The
// default rtmpd image tag follows it: operator and rtmpd are released together.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const version: string = pkg.version;
export const defaultImage = `ghcr.io/fluxiot/rtmpd:${version}`;
/** The same rtmpd with an ffmpeg that transcodes (libx264, AAC): hack/images.sh builds both. */
export const defaultTranscodeImage = `${defaultImage}-transcode`;
