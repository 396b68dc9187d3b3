// A coverage-guided mutational fuzzer (Jazzer.js needs native builds from
// GitHub, which this machine cannot reach): inputs start from real
// captures, are changed as mutations.ts does or spliced together, and an
// input that runs code no earlier input ran joins the corpus. Coverage is
// V8's own block coverage, read through the inspector after each run.
import { createHash } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { prng, randomInt } from '../support/random.ts';
import { mutate, randomEdits } from '../support/mutations.ts';
import { expectedError } from './target.ts';

interface Finding {
  input: Buffer;
  error: unknown;
  /** A name for the input, from its hash. */
  name: string;
}

interface FuzzOptions {
  target: (input: Buffer) => void;
  seeds: readonly Buffer[];
  /** Stop after this many runs, or at this time (performance.now()), whichever comes first. */
  maxRuns: number;
  deadline?: number;
  seed?: number;
  /** Only code whose URL contains this counts as coverage. */
  coverageOf: string;
}

interface FuzzResult {
  runs: number;
  corpus: number;
  /** Distinct blocks of `coverageOf` that ran. */
  blocks: number;
  findings: Finding[];
}

export async function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const random = prng(options.seed ?? 1);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const seen = new Set<string>();
  const corpus = [...options.seeds];
  const findings = new Map<string, Finding>();
  /** Runs `input`; true when it ran a block no input ran before. */
  const run = async (input: Buffer): Promise<boolean> => {
    try {
      options.target(input);
    } catch (error) {
      if (!expectedError(error)) {
        const name = createHash('sha256').update(input).digest('hex').slice(0, 16);
        findings.set(name, { input, error, name });
      }
    }
    const { result } = await session.post('Profiler.takePreciseCoverage');
    let grew = false;
    for (const script of result) {
      if (!script.url.includes(options.coverageOf)) continue;
      for (const fn of script.functions) {
        for (const range of fn.ranges) {
          if (range.count === 0) continue;
          const block = `${script.url}:${range.startOffset}:${range.endOffset}`;
          if (!seen.has(block)) {
            seen.add(block);
            grew = true;
          }
        }
      }
    }
    return grew;
  };
  try {
    for (const seed of options.seeds) await run(seed);
    let runs = options.seeds.length;
    for (; runs < options.maxRuns && (options.deadline === undefined || performance.now() < options.deadline); runs++) {
      const base = corpus[randomInt(random, corpus.length)]!;
      let input = mutate(base, randomEdits(random, 1 + randomInt(random, 8)));
      if (random() < 0.1) {
        // Splice: the head of one input, the tail of another.
        const other = corpus[randomInt(random, corpus.length)]!;
        input = Buffer.concat([
          input.subarray(0, randomInt(random, input.length + 1)),
          other.subarray(randomInt(random, other.length + 1)),
        ]);
      }
      if (await run(input)) corpus.push(input);
    }
    return { runs, corpus: corpus.length, blocks: seen.size, findings: [...findings.values()] };
  } finally {
    await session.post('Profiler.stopPreciseCoverage');
    session.disconnect();
  }
}
