// The forms of nmap's --script-trace that a scan makes only now and then
// (the scanner test reads whole real traces, but cannot make a client port
// come round again on demand), written as nse_nsock.cc prints them.
import { describe, expect, it } from 'vitest';
import { scriptAnswers } from './nmap-trace.ts';

const SERVER = '127.0.0.1:8080';

/** A traced write or read as nse_nsock.cc's hexify prints it: text when 95% of it is printable, else a hex dump. */
function traced(client: string, direction: '<' | '>', data: string): string {
  const bytes = Buffer.from(data, 'latin1');
  const printable = [...bytes].filter((byte) => byte >= 0x20 && byte < 0x7f).length;
  const text =
    printable / bytes.length >= 0.95
      ? data
      : Array.from({ length: Math.ceil(bytes.length / 16) }, (_, row) => {
          const part = bytes.subarray(row * 16, row * 16 + 16);
          const hex = [...part].map((byte) => `${byte.toString(16).padStart(2, '0')} `).join('');
          return `${(row * 16).toString(16).padStart(8, '0')}: ${hex.padEnd(48)}${part.toString('latin1').replace(/[^\x21-\x7e]/g, ' ')}\n`;
        }).join('');
  return `NSE: TCP ${client} ${direction} ${SERVER} | ${text}\n`;
}

const connect = (client: string) => `NSE: TCP ${client} > ${SERVER} | CONNECT\n`;
const close = (client: string) => `NSE: TCP ${client} > ${SERVER} | CLOSE\n`;
const request = (method: string, path: string) => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`;
function answer(status: string, body = '', length = body.length): string {
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${length}\r\n\r\n${body}`;
}
const notFound = (path: string) => JSON.stringify({ error: { code: 'not_found', message: `no route for GET ${path}` } });

describe("nmap's script trace, read as HTTP", () => {
  it('keeps two connections apart that had the same client port, one after the other', () => {
    const port = '127.0.0.1:40000';
    const trace = [
      // A TLS ClientHello to the HTTP port: no request line, a 400.
      connect(port),
      traced(port, '>', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03'),
      traced(port, '<', answer('400 Bad Request', '{"error":{"code":"bad_request","message":"malformed HTTP request"}}')),
      close(port),
      // The port comes round again: a pipelined HEAD and GET.
      connect(port),
      traced(port, '>', request('HEAD', '/a') + request('GET', '/b')),
      traced(port, '<', answer('404 Not Found', '', notFound('/a').length) + answer('404 Not Found', notFound('/b'))),
      close(port),
    ].join('');
    const { answers, skipped, unreadable } = scriptAnswers(trace);
    expect(answers.map(({ method, answer }) => `${method} ${answer.status} ${answer.body.toString()}`)).toEqual([
      '? 400 {"error":{"code":"bad_request","message":"malformed HTTP request"}}',
      'HEAD 404 ',
      `GET 404 ${notFound('/b')}`,
    ]);
    expect({ skipped, unreadable }).toEqual({ skipped: { unbracketedConnections: 0, cutAnswers: 0 }, unreadable: [] });
  });

  it('reads a status line inside a body, and an answer read in two parts, as the body they are', () => {
    const port = '127.0.0.1:40002';
    const echoed = notFound('/HTTP/1.1 404 x');
    const full = answer('404 Not Found', echoed);
    const trace = [
      connect(port),
      traced(port, '>', request('GET', '/HTTP/1.1%20404%20x') + request('GET', '/c')),
      traced(port, '<', full.slice(0, 40)),
      traced(port, '<', full.slice(40) + answer('404 Not Found', notFound('/c'))),
      close(port),
    ].join('');
    const { answers } = scriptAnswers(trace);
    expect(answers.map(({ answer }) => answer.body.toString())).toEqual([echoed, notFound('/c')]);
  });

  it('counts, and does not read, an answer cut where its connection ended, and a connection whose trace has no CLOSE', () => {
    const cut = '127.0.0.1:40004';
    const unclosed = '127.0.0.1:40006';
    const trace = [
      connect(cut),
      traced(cut, '>', request('GET', '/d') + request('GET', '/e')),
      traced(cut, '<', answer('404 Not Found', notFound('/d')) + answer('404 Not Found', '', notFound('/e').length)),
      close(cut),
      connect(unclosed),
      traced(unclosed, '>', request('GET', '/f')),
      traced(unclosed, '<', answer('404 Not Found', notFound('/f'))),
      'Nmap scan report for localhost (127.0.0.1)\n',
    ].join('');
    const { answers, skipped } = scriptAnswers(trace);
    expect(answers.map(({ method, answer }) => `${method} ${answer.status} ${answer.body.toString()}`)).toEqual([
      `GET 404 ${notFound('/d')}`,
    ]);
    expect(skipped).toEqual({ unbracketedConnections: 1, cutAnswers: 1 });
  });
});
