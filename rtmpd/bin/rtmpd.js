#!/usr/bin/env node
// rtmpd runs from its bundle (`make build`: rtmpd/bundle.ts). It first
// restarts itself in place with its Node and V8 flags (src/memory/node-flags.ts;
// RTMPD_NODE_FLAGS adds to or overrides them), then switches V8's faster
// compilers on once it listens (src/memory/start-up-tiers.ts).
import { requireNode } from '../dist/bundle/require-node.js';

requireNode('rtmpd');
const { runWithNodeFlags } = await import('../dist/bundle/node-flags.js');
runWithNodeFlags();
await import('../dist/bundle/main.js');
const { enableCompilerTiers } = await import('../dist/bundle/start-up-tiers.js');
enableCompilerTiers();
