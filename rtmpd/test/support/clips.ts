// The test pattern every media test uses (ffmpeg's testsrc2 picture at 25 fps
// and a 440 Hz tone), and short clips of it encoded once per machine.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** ffmpeg inputs for the pattern at `size` (WIDTHxHEIGHT), with the tone unless `audio` is false. */
export function testPatternInputs(size: string, { audio = true } = {}): string[] {
  const video = ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`];
  return audio ? [...video, '-f', 'lavfi', '-i', 'sine=frequency=440'] : video;
}

/**
 * Runs ffmpeg with `args` (inputs, codecs, format; no output) into a file
 * named `name` in a shared temp folder, unless an earlier run left it there;
 * returns its path. Written under a temporary name first, so a half-written
 * clip is never reused.
 */
export async function encodeOnce(name: string, args: string[]): Promise<string> {
  const dir = join(tmpdir(), 'rtmpd-test-clips');
  const path = join(dir, name);
  if (existsSync(path)) return path;
  await mkdir(dir, { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, temp]);
  await rename(temp, path);
  return path;
}
