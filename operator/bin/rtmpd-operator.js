#!/usr/bin/env node
import module from 'node:module';
import { requireNode } from '@flux-rtmpd/rtmpd/require-node';

requireNode('rtmpd-operator');
// Stack traces name the TypeScript sources and their lines (tsc writes a source map
// beside each file of dist/), so a trace in a bug report points at the code.
module.setSourceMapsSupport(true);
await import('../dist/main.js');
