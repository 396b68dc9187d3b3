#!/usr/bin/env node
import { requireNode } from '@flux-rtmpd/rtmpd/require-node';

requireNode('rtmpd-operator');
await import('../dist/main.js');
