#!/usr/bin/env -S node --max-semi-space-size=8 --expose-gc --no-opt --no-maglev --no-sparkplug
// rtmpd's V8 flags live here, in the shebang; the image's ENTRYPOINT repeats
// them (it runs node directly). `node <flags> bin/rtmpd.js` runs with other
// flags instead; NODE_OPTIONS adds flags but cannot undo these.
// --max-semi-space-size=8 caps the young generation at 8 MB per semi-space.
//   Left alone, V8 grows it to 64 MB under a media server's allocation rate,
//   and the dead message buffers it holds until the next scavenge stay
//   resident; capped, scavenges run more often and free them sooner.
// --expose-gc lets main.ts shrink the young generation once started (see there).
// --no-opt --no-maglev --no-sparkplug keep V8's faster tiers off while rtmpd
//   starts; they are switched on once it listens (dist/memory/start-up-tiers.js).
import { requireNode } from '../dist/require-node.js';

requireNode('rtmpd');
await import('../dist/main.js');
const { enableCompilerTiers } = await import('../dist/memory/start-up-tiers.js');
enableCompilerTiers();
