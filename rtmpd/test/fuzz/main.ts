// `make fuzz`: runs the fuzzer for a while (FUZZ_SECONDS, default 300) from
// the captures and the checked-in inputs, and writes what it finds to
// rtmpd/test/fuzz/testdata/ (check them in: fuzz.test.ts replays them all).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './fuzzer.ts';
import { fuzzSeeds, REGRESSIONS_DIR } from './seeds.ts';
import { feedSession } from './target.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '300' }, seed: { type: 'string', default: String(Date.now() % 2 ** 31) } },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
console.log(`fuzzing the RTMP intake for ${seconds} s (seed ${seed})`);
const result = await fuzz({
  target: feedSession,
  seeds: fuzzSeeds(),
  maxRuns: Number.MAX_SAFE_INTEGER,
  deadline: performance.now() + seconds * 1000,
  seed,
  coverageOf: '/rtmpd/src/',
});
for (const finding of result.findings) {
  const file = join(REGRESSIONS_DIR, `${finding.name}.bin`);
  writeFileSync(file, finding.input);
  console.log(
    `finding: ${file}: ${finding.error instanceof Error ? (finding.error.stack ?? finding.error.message) : String(finding.error)}`,
  );
}
console.log(
  `${result.runs} runs, ${result.corpus} inputs in the corpus, ${result.blocks} blocks covered, ${result.findings.length} findings`,
);
process.exit(result.findings.length > 0 ? 1 : 0);
