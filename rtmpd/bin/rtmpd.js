#!/usr/bin/env -S node --max-semi-space-size=8 --expose-gc
// The first V8 flag caps the young generation at 8 MB per semi-space. Left alone,
// V8 grows it to 64 MB under a media server's allocation rate, and the dead
// message buffers it holds until the next scavenge stay resident; capped,
// scavenges run more often and free them sooner. --expose-gc lets main.ts
// shrink the young generation once started (see there). Keep the flags here, in the
// shebang: the image's ENTRYPOINT runs this file directly.
import { requireNode } from '../dist/require-node.js';

requireNode('rtmpd');
await import('../dist/main.js');
