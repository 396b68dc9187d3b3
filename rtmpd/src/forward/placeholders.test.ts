import { describe, expect, it } from 'vitest';
import { fillPlaceholders } from './placeholders.ts';

describe('fillPlaceholders', () => {
  it('puts the stream app and key in every {app} and {key} of a URL', () => {
    expect(fillPlaceholders('rtmp://relay/{app}/{key}?name={key}&app={app}', 'live', 'cam1')).toBe(
      'rtmp://relay/live/cam1?name=cam1&app=live',
    );
    expect(fillPlaceholders('rtmp://relay/fixed/key', 'live', 'cam1')).toBe('rtmp://relay/fixed/key');
  });
});
