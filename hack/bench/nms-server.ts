// Starts node-media-server 4.4.3 (the devDependency) as the bench runs it:
// RTMP on 127.0.0.1, HTTP (for HTTP-FLV) only when asked, no admin console,
// no auth, recording every stream only when asked.
// Usage: node nms-server.ts RTMP_PORT HTTP_PORT|0 DATA_DIR record|no-record
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [rtmpPort, httpPort, dataDir, record] = process.argv.slice(2);
if (!rtmpPort || !httpPort || !dataDir || !record) throw new Error('usage: nms-server.ts RTMP_PORT HTTP_PORT|0 DATA_DIR record|no-record');

const require = createRequire(import.meta.url);
const NodeMediaServer = require('node-media-server') as new (config: unknown, configPath: string) => { run(): Promise<void> };

const config = {
  bind: '127.0.0.1',
  rtmp: { port: Number(rtmpPort) },
  ...(Number(httpPort) > 0 ? { http: { port: Number(httpPort) } } : {}),
  store: { path: join(dataDir, 'store') },
  record: { auto: record === 'record', path: join(dataDir, 'record') },
  webadmin: { enable: false },
  notify: { url: '' },
};
void new NodeMediaServer(config, join(dataDir, 'config.json')).run();
