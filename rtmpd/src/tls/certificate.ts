// The server certificate of the RTMPS and HTTPS ports: a PEM chain and its
// key, read from two files and polled while rtmpd runs. A mounted Secret
// (cert-manager renewing a Certificate) changes by a symlink swap that an
// inotify watch on the files can miss, so the files are read again every
// interval. A changed pair that is usable replaces the one new connections
// get; live connections keep theirs. A bad pair is logged and counted, and
// the last good one stays.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError, type Config } from '../config.ts';
import type { Logger } from '../telemetry/logger.ts';

/** What a client must offer at least: TLS 1.0 and 1.1 are broken and every RTMPS client speaks 1.2. */
const TLS_MIN_VERSION = 'TLSv1.2';
/** A chain of a few certificates is a few KiB; a file far larger is not one. */
const MAX_PEM_BYTES = 1 << 20;

export class CertificateError extends ConfigError {
  override name = 'CertificateError';
}

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** A usable pair: the context new connections get, and the leaf certificate's expiry. */
export interface LoadedCertificate {
  pair: CertificatePair;
  context: SecureContext;
  /** The leaf certificate's notAfter, seconds since the epoch. */
  notAfter: number;
  /** SHA-256 fingerprint of the leaf certificate, as in the logs. */
  fingerprint: string;
}

async function readPem(path: string, option: string): Promise<string> {
  try {
    const info = await stat(path);
    if (info.size > MAX_PEM_BYTES) throw new CertificateError(`${option} ${path} is larger than ${MAX_PEM_BYTES} bytes`);
    return await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    throw new CertificateError(`${option} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function readCertificateFiles(files: CertificateFiles): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readPem(files.certFile, '--tls-cert-file'), readPem(files.keyFile, '--tls-key-file')]);
  return { cert, key };
}

/** Checks a pair the way a handshake would use it, with messages that say which part is wrong. */
export function loadCertificate(pair: CertificatePair, maxVersion: TlsMaxVersion): LoadedCertificate {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pair.cert);
  } catch {
    throw new CertificateError('--tls-cert-file does not hold a PEM certificate');
  }
  let key;
  try {
    key = createPrivateKey(pair.key);
  } catch {
    throw new CertificateError('--tls-key-file does not hold a PEM private key');
  }
  if (!leaf.checkPrivateKey(key)) throw new CertificateError('--tls-key-file is not the key of the first certificate in --tls-cert-file');
  let context: SecureContext;
  try {
    context = createSecureContext({ cert: pair.cert, key: pair.key, minVersion: TLS_MIN_VERSION, maxVersion });
  } catch (err) {
    throw new CertificateError(`the certificate and key cannot be used: ${(err as Error).message}`);
  }
  return { pair, context, notAfter: Date.parse(leaf.validTo) / 1000, fingerprint: leaf.fingerprint256 };
}

export interface CertificateStats {
  /** Changed pairs read while running, by result: ok (in use now) or error (the last good one stays). */
  reloads: { ok: number; error: number };
}

export type TlsMaxVersion = Config['tlsMaxVersion'];

export interface ServerCertificateOptions extends CertificateFiles {
  maxVersion: TlsMaxVersion;
  logger: Logger;
  intervalMs: number;
}

export class ServerCertificate {
  readonly stats: CertificateStats = { reloads: { ok: 0, error: 0 } };
  private loaded: LoadedCertificate;
  private readonly options: ServerCertificateOptions;
  private readonly listeners: ((loaded: LoadedCertificate) => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  /** The text of the pair last read, good or bad: a bad pair is reported once, not at every poll. */
  private lastRead: string;
  private polling = false;

  private constructor(options: ServerCertificateOptions, loaded: LoadedCertificate) {
    this.options = options;
    this.loaded = loaded;
    this.lastRead = textOf(loaded.pair);
    this.timer = setInterval(() => void this.poll(), options.intervalMs);
    this.timer.unref();
  }

  /** Reads and checks the pair once (a bad one is an error at start) and keeps polling the files. */
  static async open(options: ServerCertificateOptions): Promise<ServerCertificate> {
    const loaded = loadCertificate(await readCertificateFiles(options), options.maxVersion);
    options.logger.info(
      { fingerprint: loaded.fingerprint, notAfter: new Date(loaded.notAfter * 1000).toISOString() },
      'tls: certificate loaded',
    );
    return new ServerCertificate(options, loaded);
  }

  get current(): LoadedCertificate {
    return this.loaded;
  }

  /** Runs `listener` with every new pair taken into use. */
  onChange(listener: (loaded: LoadedCertificate) => void): void {
    this.listeners.push(listener);
  }

  /** Reads the files now; resolves once a change has been taken or refused. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    const { logger } = this.options;
    try {
      let pair: CertificatePair;
      try {
        pair = await readCertificateFiles(this.options);
      } catch (err) {
        this.refuse(`unreadable\0${(err as Error).message}`, err as Error);
        return;
      }
      const text = textOf(pair);
      if (text === this.lastRead) return;
      let loaded: LoadedCertificate;
      try {
        loaded = loadCertificate(pair, this.options.maxVersion);
      } catch (err) {
        this.refuse(text, err as Error);
        return;
      }
      this.lastRead = text;
      // Back to the pair in use after a bad spell: nothing to change.
      if (text === textOf(this.loaded.pair)) return;
      this.loaded = loaded;
      this.stats.reloads.ok++;
      logger.info(
        { fingerprint: loaded.fingerprint, notAfter: new Date(loaded.notAfter * 1000).toISOString() },
        'tls: certificate reloaded; new connections get it',
      );
      for (const listener of this.listeners) listener(loaded);
    } finally {
      this.polling = false;
    }
  }

  /** Counts and logs a bad pair once per distinct content (or read error), not at every poll. */
  private refuse(seen: string, err: Error): void {
    if (seen === this.lastRead) return;
    this.lastRead = seen;
    this.stats.reloads.error++;
    this.options.logger.error(
      { err: err.message, fingerprint: this.loaded.fingerprint },
      'tls: certificate not reloaded; the last good one stays',
    );
  }

  close(): void {
    clearInterval(this.timer);
  }
}

const textOf = (pair: CertificatePair): string => `${pair.cert}\0${pair.key}`;
