import { describe, expect, it } from 'vitest';
import { minimumNodeMajor, unsupportedNode } from './require-node.ts';

describe('Node.js version check', () => {
  it('accepts the version the programs are built for and newer ones', () => {
    expect(unsupportedNode('rtmpd', `${minimumNodeMajor}.0.0`)).toBeUndefined();
    expect(unsupportedNode('rtmpd', '30.1.2')).toBeUndefined();
    expect(unsupportedNode('rtmpd')).toBeUndefined(); // the one running the tests
  });

  it('refuses an older one, naming what it needs and what it found', () => {
    expect(unsupportedNode('rtmpd-operator', '20.20.2')).toBe(
      'rtmpd-operator needs Node.js 24 or newer; this is Node.js 20.20.2.\n' +
        'Install Node.js 24, or in a checkout of flux-rtmpd run it through npm (npx rtmpd-operator), whose node_modules/.bin carries Node.js 24.',
    );
  });
});
