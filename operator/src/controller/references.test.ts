import { describe, expect, it } from 'vitest';
import { ServerReferences } from './references.ts';

const server = (namespace: string, name: string, spec: unknown) => ({ metadata: { namespace, name }, spec });
const keysRule = (secret: string) => ({ auth: { rules: [{ method: 'keys', keysSecret: { name: secret } }] } });

describe('ServerReferences', () => {
  it('maps a Secret to the servers of its namespace that name it, until they stop or are gone', () => {
    const refs = new ServerReferences();
    refs.record(server('a', 'one', keysRule('keys')));
    refs.record(server('a', 'two', { ...keysRule('keys'), tls: { secretName: 'tls' } }));
    refs.record(server('b', 'three', keysRule('keys')));
    refs.record(server('a', 'bad', { replicas: 'many' }));
    expect(refs.serversNamingSecret('a', 'keys').sort()).toEqual(['a/one', 'a/two']);
    expect(refs.serversNamingSecret('a', 'tls')).toEqual(['a/two']);
    // The Secrets no server of the namespace names any more, for their verdicts to go.
    expect(refs.record(server('a', 'two', {}))).toEqual(['tls']);
    expect(refs.forget(server('a', 'one', undefined))).toEqual(['keys']);
    expect(refs.serversNamingSecret('a', 'keys')).toEqual([]);
    expect(refs.serversNamingSecret('b', 'keys')).toEqual(['b/three']);
  });

  it('maps a child name to every server that wants it, the loser of a collision too', () => {
    const refs = new ServerReferences();
    refs.record(server('a', 'edge', {}));
    refs.record(server('a', 'edge-pods', {}));
    // edge's headless Service and edge-pods's Service
    expect(refs.serversNamingChild('a', 'edge-pods').sort()).toEqual(['a/edge', 'a/edge-pods']);
    expect(refs.serversNamingChild('a', 'edge-rtmpd')).toEqual(['a/edge']);
    expect(refs.serversNamingChild('b', 'edge-pods')).toEqual([]);
    refs.forget(server('a', 'edge', undefined));
    expect(refs.serversNamingChild('a', 'edge-pods')).toEqual(['a/edge-pods']);
  });

  it('tells which StatefulSets and claims can be a server’s: the ones whose Events the operator keeps', () => {
    const refs = new ServerReferences();
    refs.record(server('a', 'edge', { storage: { recordings: { existingClaim: 'archive' } } }));
    for (const name of ['edge', 'archive', 'edge-keyframes', 'recordings-edge-0', 'keyframes-edge-12'])
      expect(refs.mayBeChild('a', name), name).toBe(true);
    for (const name of ['edge-recordings', 'recordings-edge', 'recordings-other-0', 'data-edge-0', 'other'])
      expect(refs.mayBeChild('a', name), name).toBe(false);
    expect(refs.mayBeChild('b', 'recordings-edge-0')).toBe(false);
    refs.forget(server('a', 'edge', undefined));
    expect(refs.mayBeChild('a', 'recordings-edge-0')).toBe(false);
  });
});
