// Reads nmap's --script-trace: every byte its scripts sent and received,
// one line "NSE: TCP <client> <dir> <server> | <data>" for each write or
// read (nse_nsock.cc), the data as text (with "  \NNN" for a byte that is
// neither printable nor space) or, when over 5% of it is neither, as a hex
// dump; and the markers CONNECT, SEND and CLOSE on the '>' side.

/** An HTTP answer as the client read it. */
export interface TracedAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** An answer nmap read, with where (a script's connection, or a service probe) and the method of the request it answers ('?' when the request reads as none). */
export interface ScannedAnswer {
  from: string;
  method: string;
  answer: TracedAnswer;
}

export interface ScriptAnswers {
  answers: ScannedAnswer[];
  /**
   * What was not read, and why: connections whose trace has no CONNECT or
   * no CLOSE (nmap quit with the connection open), and last answers cut where the connection ended (their head
   * read, not all of their body).
   */
  skipped: { unbracketedConnections: number; cutAnswers: number };
  /** Answers followed by bytes that are no answer: a Content-Length that is not the body's, or a trace misread. */
  unreadable: string[];
}

interface TracedConnection {
  from: string;
  sent: Buffer[];
  received: Buffer[];
  connected: boolean;
  closed: boolean;
}

const TRACE_LINE = /^NSE: (?:TCP|SSL) (\S+) ([<>]) (\S+) \| (.*)$/s;
/** nmap's own lines, which end a traced write's or read's data (a data line may be anything else). */
const NMAP_LINE =
  /^(NSE: |NSE Timing: |NSOCK |Initiating |Completed |Nmap scan report |Nmap done: |Starting Nmap |PORT +STATE |Host is up|Service detection performed|Service Info: |Read data files from: |Warning: |Stats: )/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3}) /;
const MARKERS = new Set(['SEND', 'SSL RECONNECT']);
/** A text's escape: "  \" then the byte in decimal, unpadded; only 0-8, 14-31 and 127-255 are escaped, so the digits say where they end. */
const ESCAPE = / {2}\\(1(?:2[7-9]|[3-9]\d)|2(?:[0-4]\d|5[0-5])|1[4-9]|2\d|3[01]|[0-8])/g;

/**
 * The connections nmap's scripts made, each from its CONNECT to its CLOSE:
 * nmap opens thousands, and the kernel gives a client port out again once
 * its connection to the same server is closed, so the addresses alone would
 * merge two.
 */
function tracedConnections(stdout: string): TracedConnection[] {
  const open = new Map<string, TracedConnection>();
  const connections: TracedConnection[] = [];
  const start = (from: string, connected: boolean) => {
    const connection = { from, sent: [], received: [], connected, closed: false };
    open.set(from, connection);
    connections.push(connection);
    return connection;
  };
  let chunk: { into: Buffer[]; lines: string[] } | undefined;
  const endChunk = () => {
    if (chunk) chunk.into.push(decodeData(chunk.lines));
    chunk = undefined;
  };
  for (const line of stdout.split('\n')) {
    const trace = TRACE_LINE.exec(line);
    if (!trace && !NMAP_LINE.test(line)) {
      chunk?.lines.push(line);
      continue;
    }
    endChunk();
    if (!trace) continue;
    const [, client, direction, server, data] = trace as unknown as [string, string, string, string, string];
    const from = `${client} ${server}`;
    if (direction === '>' && data === 'CONNECT') start(from, true);
    else if (direction === '>' && data === 'CLOSE') {
      const connection = open.get(from);
      if (connection) connection.closed = true;
      open.delete(from);
    } else if (!(direction === '>' && MARKERS.has(data))) {
      const connection = open.get(from) ?? start(from, false);
      chunk = { into: direction === '<' ? connection.received : connection.sent, lines: [data] };
    }
  }
  endChunk();
  return connections;
}

/** One write's or read's bytes from its trace lines: the hex dump's rows, or the text with its escapes undone. */
function decodeData(lines: string[]): Buffer {
  const rows = lines.map((line) => /^[0-9a-f]{8}: ((?:[0-9a-f]{2} ){1,16})/.exec(line)?.[1]);
  if (rows[0] !== undefined && rows.every((row, i) => row !== undefined || (i === rows.length - 1 && lines[i] === ''))) {
    return Buffer.from(rows.join('').replaceAll(' ', ''), 'hex');
  }
  return Buffer.from(
    lines.join('\n').replace(ESCAPE, (_, byte: string) => String.fromCharCode(Number(byte))),
    'latin1',
  );
}

/**
 * The HTTP answers nmap's scripts read, each with the method of the request
 * it answers (in order, as HTTP/1.1 answers them), from the connections
 * whose trace is whole; what could not be read is counted.
 */
export function scriptAnswers(stdout: string): ScriptAnswers {
  const result: ScriptAnswers = { answers: [], skipped: { unbracketedConnections: 0, cutAnswers: 0 }, unreadable: [] };
  for (const { from, sent, received, connected, closed } of tracedConnections(stdout)) {
    const bytes = Buffer.concat(received).toString('latin1');
    // Not HTTP: what the RTMP listeners and a TLS listener taking plain text send.
    if (!STATUS_LINE.test(bytes)) continue;
    if (!connected || !closed) {
      result.skipped.unbracketedConnections++;
      continue;
    }
    const methods = [
      ...Buffer.concat(sent)
        .toString('latin1')
        .matchAll(/^([A-Z][A-Z-]*) \S+ HTTP\/1\.[01]\r?$/gm),
    ].map((request) => request[1]!);
    const { answers, cut, rest } = readAnswers(bytes, methods);
    result.answers.push(...answers.map((answer, i) => ({ from, method: methods[i] ?? '?', answer })));
    if (cut) result.skipped.cutAnswers++;
    if (rest !== undefined) result.unreadable.push(`${from}: after ${answers.length} answers, ${JSON.stringify(rest.slice(0, 100))}`);
  }
  return result;
}

/**
 * Reads `bytes` as a connection's answers, as a client does: each head,
 * then as much body as its Content-Length says (none for a HEAD's), or up
 * to the next status line when it has none (a chunked or streamed answer).
 * `cut` when the last one ends before its head or body does; `rest` the
 * bytes after an answer that are no answer.
 */
function readAnswers(bytes: string, methods: string[]): { answers: TracedAnswer[]; cut: boolean; rest?: string } {
  const answers: TracedAnswer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const status = STATUS_LINE.exec(bytes.slice(at, at + 13));
    if (!status) return { answers, cut: false, rest: bytes.slice(at) };
    const headEnd = bytes.indexOf('\r\n\r\n', at);
    if (headEnd < 0) return { answers, cut: true };
    const head = bytes.slice(at, headEnd);
    const bodyStart = headEnd + 4;
    const code = Number(status[1]);
    const length = /^content-length: *(\d+)\r?$/im.exec(head)?.[1];
    const answersAt = (end: number) => end === bytes.length || STATUS_LINE.test(bytes.slice(end, end + 13));
    let bodyEnd: number;
    if (code === 204 || code === 304 || code < 200) bodyEnd = bodyStart;
    // A HEAD's answer has no body, unless the server could not read the request as a HEAD (a 400 with its error).
    else if (methods[answers.length] === 'HEAD' && answersAt(bodyStart)) bodyEnd = bodyStart;
    else if (length !== undefined) bodyEnd = bodyStart + Number(length);
    else {
      const next = bytes.slice(bodyStart).search(/HTTP\/1\.[01] \d{3} /);
      bodyEnd = next < 0 ? bytes.length : bodyStart + next;
    }
    if (bodyEnd > bytes.length) return { answers, cut: true };
    answers.push({
      status: code,
      contentType: /^content-type: *([^\r\n]*)/im.exec(head)?.[1] ?? '',
      body: Buffer.from(bytes.slice(bodyStart, bodyEnd), 'latin1'),
    });
    at = bodyEnd;
  }
  return { answers, cut: false };
}
