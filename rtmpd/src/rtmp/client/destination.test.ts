import { describe, expect, it } from 'vitest';
import { DestinationError, parseDestination, redactUrl } from './destination.ts';

describe('parseDestination', () => {
  it('splits a URL as librtmp and OBS do: the app up to the last slash, the key after it', () => {
    expect(parseDestination('rtmp://a.rtmp.youtube.com/live2/abcd-efgh')).toEqual({
      secure: false,
      host: 'a.rtmp.youtube.com',
      port: 1935,
      app: 'live2',
      streamName: 'abcd-efgh',
      tcUrl: 'rtmp://a.rtmp.youtube.com/live2',
      description: 'rtmp://a.rtmp.youtube.com/live2/***',
    });
    const facebook = parseDestination('rtmps://live-api-s.facebook.com:443/rtmp/FB-1-0-Ab?s_bl=1&a=Ab');
    expect(facebook).toMatchObject({ secure: true, port: 443, app: 'rtmp', streamName: 'FB-1-0-Ab?s_bl=1&a=Ab' });
    expect(parseDestination('rtmps://[::1]/app/inst/key')).toMatchObject({ host: '::1', port: 443, app: 'app/inst', streamName: 'key' });
  });

  it('refuses what is not rtmp[s]://host/app/key without repeating the key', () => {
    for (const url of ['http://host/app/k3y', 'rtmp://host/k3y', 'rtmp://host:99999/app/k3y', 'rtmp://user:pw@host/app/k3y']) {
      expect(() => parseDestination(url)).toThrow(DestinationError);
      try {
        parseDestination(url);
      } catch (err) {
        expect((err as Error).message).not.toMatch(/k3y|pw/);
      }
    }
  });

  it('redacts the key and any user info', () => {
    expect(redactUrl('rtmp://u:p@host/app/key?x=1')).toBe('rtmp://***@host/app/***');
    expect(redactUrl('garbage')).toBe('***');
  });
});
