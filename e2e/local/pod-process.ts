// Plays the kubelet for one container of a pod template read back from the API
// server: kwok pods run no containers, so the e2e suite starts the container's
// process on this machine instead, with exactly the command, args and env of the
// template. Only what must differ on a host is rewritten, and every rewrite is
// recorded (and printed) so a test can show it touched nothing else:
//   - the image ENTRYPOINT's node → this process's node, its /app/... paths → this
//     checkout (the images copy the repository layout to /app, see rtmpd/Dockerfile
//     and operator/Dockerfile);
//   - listen addresses (--<flag>=0.0.0.0:PORT) → 127.0.0.1:<free port>;
//   - volume mount paths → the host directories backing the volumes;
//   - fieldRef env (metadata.name/namespace/uid, status.podIP) → the values the kubelet would inject
//     (the pod IP is loopback: the process listens there);
//   - in-cluster credentials → a kubeconfig (for the operator, its ServiceAccount's token).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from '../lib/chart.ts';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
}

/** ENTRYPOINT and ENV of a Dockerfile's final stage (exec-form ENTRYPOINT only). */
export function dockerImageConfig(dockerfile: string): { entrypoint: string[]; env: Record<string, string> } {
  const text = readFileSync(join(repo, dockerfile), 'utf8');
  const finalStage = text.slice(text.lastIndexOf('\nFROM '));
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(finalStage);
  if (!entry?.[1]) throw new Error(`${dockerfile}: no exec-form ENTRYPOINT in the final stage`);
  const env: Record<string, string> = {};
  for (const m of finalStage.matchAll(/^ENV\s+(\w+)=(\S+)\s*$/gm)) env[m[1] as string] = m[2] as string;
  return { entrypoint: JSON.parse(entry[1]) as string[], env };
}

interface Rewrite {
  what: string;
  from: string;
  to: string;
}

export interface LocalCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  rewrites: Rewrite[];
}

export interface LocalizeOptions {
  container: Container;
  dockerfile: string;
  pod: { name: string; namespace: string; uid: string };
  /** Flag name (without --) → the local HOST:PORT it must listen on. */
  binds: Record<string, string>;
  /** Container mount path → host directory. */
  mounts?: Record<string, string>;
  /** Extra environment that replaces an in-cluster mechanism (e.g. KUBECONFIG), recorded as a rewrite. */
  extraEnv?: Record<string, string>;
}

/** The container's process as it would run in the image, localized as described at the top. */
export function localize(o: LocalizeOptions): LocalCommand {
  const rewrites: Rewrite[] = [];
  const image = dockerImageConfig(o.dockerfile);
  const command = o.container.command ?? image.entrypoint;
  const [exe, ...entryArgs] = command.map((part) => {
    if (!part.startsWith('/app/')) return part;
    const local = join(repo, part.slice('/app/'.length));
    rewrites.push({ what: 'image path', from: part, to: local });
    return local;
  });
  if (exe === undefined) throw new Error(`${o.container.name}: empty command`);
  // The image runs its own Node (/usr/local/bin/node); here it is the Node running the tests.
  const file = exe === 'node' || exe.endsWith('/node') ? process.execPath : exe;
  if (file !== exe) rewrites.push({ what: 'node', from: exe, to: file });

  const mounts = new Map(Object.entries(o.mounts ?? {}));
  const declared = new Set((o.container.volumeMounts ?? []).map((m) => m.mountPath));
  for (const path of mounts.keys()) {
    if (!declared.has(path)) throw new Error(`${o.container.name}: no volumeMount at ${path}`);
  }
  const seenBinds = new Set<string>();
  const args = (o.container.args ?? []).map((arg) => {
    const m = /^--([a-z0-9-]+)=(.*)$/.exec(arg);
    if (!m) return arg; // bare boolean flags pass as they are
    const [, flag, value] = m as unknown as [string, string, string];
    const bind = o.binds[flag];
    if (bind !== undefined) {
      seenBinds.add(flag);
      rewrites.push({ what: `--${flag}`, from: value, to: bind });
      return `--${flag}=${bind}`;
    }
    for (const [mountPath, dir] of mounts) {
      if (value === mountPath || value.startsWith(`${mountPath}/`)) {
        const local = dir + value.slice(mountPath.length);
        rewrites.push({ what: `--${flag}`, from: value, to: local });
        return `--${flag}=${local}`;
      }
    }
    return arg;
  });
  for (const flag of Object.keys(o.binds)) {
    if (!seenBinds.has(flag))
      throw new Error(`${o.container.name}: the template has no --${flag}=…, so it cannot be moved to a local port`);
  }

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ...image.env,
  };
  for (const v of o.container.env ?? []) {
    if (v.value !== undefined) {
      env[v.name] = v.value;
      continue;
    }
    const field = v.valueFrom?.fieldRef?.fieldPath;
    const injected =
      field === 'metadata.name'
        ? o.pod.name
        : field === 'metadata.namespace'
          ? o.pod.namespace
          : field === 'metadata.uid'
            ? o.pod.uid
            : field === 'status.podIP'
              ? '127.0.0.1'
              : undefined;
    if (injected === undefined)
      throw new Error(`${o.container.name}: env ${v.name} comes from ${JSON.stringify(v.valueFrom)}, which this emulation does not inject`);
    rewrites.push({ what: `env ${v.name}`, from: `fieldRef ${field}`, to: injected });
    env[v.name] = injected;
  }
  // $(VAR) references, as the kubelet expands them.
  for (const [k, v] of Object.entries(env)) env[k] = v.replace(/\$\((\w+)\)/g, (all, name: string) => env[name] ?? all);
  for (const [k, v] of Object.entries(o.extraEnv ?? {})) {
    rewrites.push({ what: `env ${k}`, from: 'in-cluster', to: v });
    env[k] = v;
  }
  return { file, args: [...entryArgs, ...args], env, rewrites };
}

export interface Started {
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts a localized command with its output in logFile. */
export function start(cmd: LocalCommand, logFile: string): Started {
  const log = createWriteStream(logFile);
  log.write(`# ${cmd.file} ${cmd.args.join(' ')}\n# rewrites: ${JSON.stringify(cmd.rewrites)}\n`);
  const child = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    logFile,
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/** The last lines of a log file, for failure messages. */
export function tail(logFile: string, lines = 40): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${logFile})`;
  }
}
