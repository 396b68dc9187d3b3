// RTMPS and HTTPS share one certificate and one set of handshake counters.
// app.ts imports this module only when --rtmps-bind or --https-bind is set,
// so a server without TLS never loads node:tls.
import { ConfigError, type Config } from '../config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { openServerCertificate, type ServerCertificate } from './certificate.ts';
import { TlsHandshakes, type TlsListener } from './handshake.ts';

type TlsConfig = Pick<Config, 'rtmpsBind' | 'httpsBind' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsMaxVersion' | 'tlsHandshakeTimeoutSeconds'>;

/** How often the certificate files are read again; a renewed certificate is in use within this. */
const CERTIFICATE_POLL_MS = 2000;

export interface Tls {
  certificate: ServerCertificate;
  /** The listeners that serve the certificate: those asked for. */
  listeners: TlsListener[];
  handshakes: TlsHandshakes;
  close(): void;
}

export async function startTls(config: TlsConfig, logger: Logger, pollMs = CERTIFICATE_POLL_MS): Promise<Tls> {
  const by = config.rtmpsBind ? '--rtmps-bind' : '--https-bind';
  const missing = [config.tlsCertFile ? '' : '--tls-cert-file', config.tlsKeyFile ? '' : '--tls-key-file'].filter(Boolean);
  if (missing.length) throw new ConfigError(`${by} is set, so ${missing.join(' and ')} must be too (PEM files)`);
  const certificate = await openServerCertificate({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    maxVersion: config.tlsMaxVersion,
    logger,
    intervalMs: pollMs,
  });
  const binds: Record<TlsListener, string> = { rtmps: config.rtmpsBind, https: config.httpsBind };
  const listeners = (Object.keys(binds) as TlsListener[]).filter((listener) => binds[listener]);
  return { certificate, listeners, handshakes: new TlsHandshakes(certificate, config, logger), close: () => certificate.close() };
}
