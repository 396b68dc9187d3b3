// Static checks of the scripts and files `make e2e-kind` relies on (the run
// itself is the last part of `make test`): every shell script in hack/ and e2e/
// is executable and strict (make lint runs shellcheck on them); the kind config
// and the GitHub workflow parse and say what run.sh expects.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { repo } from '../lib/chart.ts';

/** Shell scripts: *.sh, or executable files with a sh/bash shebang. */
function shellScripts(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(repo, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) out.push(...shellScripts(path));
      continue;
    }
    if (!entry.isFile()) continue;
    if (entry.name.endsWith('.sh')) {
      out.push(path);
      continue;
    }
    const executable = (statSync(join(repo, path)).mode & 0o111) !== 0;
    if (executable && /^#!.*\b(ba)?sh\b/.test(readFileSync(join(repo, path), 'utf8').slice(0, 100))) out.push(path);
  }
  return out;
}

/**
 * The pipelines in `text` (a shell script, or a Makefile's recipes) whose reader
 * can leave before its writer is done: `head`, `grep -q`/`-m`/`-l`, `awk` that
 * exits before its END, `sed` with a `q`, `read`, a `while read` loop that
 * breaks. The writer's next write then gets SIGPIPE, which `set -o pipefail`
 * makes the pipeline's failure (exit 141): CI failed on one in e2e/kind/steps.sh.
 */
function earlyLeavingReaders(text: string): string[] {
  const lines = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    // A pipeline continued on the next line is one line here.
    .join('\n')
    .replace(/(?<!\|)\|[ \t]*\n/g, '| ')
    .replace(/\\\n/g, ' ')
    .split('\n');
  const found: string[] = [];
  lines.forEach((line, i) => {
    const readers = line.split(/(?<![|>])\|(?!\|)&?/).slice(1);
    for (const reader of readers.map((r) => r.trim().replace(/^[({!]\s*/, ''))) {
      if (leavesEarly(reader) || (/^while\b.*\bread\b/.test(reader) && /\b(break|return|exit)\b/.test(loopBody(lines, i))))
        found.push(line.trim());
    }
  });
  return found;
}

function leavesEarly(reader: string): boolean {
  const [command = '', ...args] = reader.split(/\s+/);
  const options = args.filter((a) => a.startsWith('-'));
  switch (command) {
    case 'head':
      return true;
    case 'grep':
      return options.some((o) => /^-[A-Za-z]*[qmlL]|^--(quiet|silent|max-count|files-with(out)?-match)/.test(o));
    case 'awk':
      return /\bexit\b/.test(reader.replace(/\bEND\s*\{[^}]*\}/g, ''));
    case 'sed':
      return /(^|[\s'";{}\d/$])[qQ]\s*\d*\s*(['";}]|$)/.test(args.join(' '));
    default:
      return /^(\w+=\S*\s+)*read\b/.test(reader);
  }
}

/** The lines of the loop that starts on `lines[start]`, to its `done`. */
function loopBody(lines: string[], start: number): string {
  let depth = 0;
  const body: string[] = [];
  for (const line of lines.slice(start)) {
    body.push(line);
    depth += (line.match(/\bdo\b/g) ?? []).length - (line.match(/\bdone\b/g) ?? []).length;
    if (depth <= 0 && /\bdone\b/.test(line)) break;
  }
  return body.join('\n');
}

/** What git tracks that runs in a shell with pipefail: the Makefile's recipes and the scripts hack/shellcheck.sh checks. */
function trackedShell(): string[] {
  const tracked = spawnSync('git', ['ls-files', '-z'], { cwd: repo, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
  return tracked.filter((path) => {
    if (path === 'Makefile' || path.endsWith('.sh')) return true;
    const full = join(repo, path);
    return existsSync(full) && (statSync(full).mode & 0o111) !== 0 && /^#!.*\b(ba)?sh\b/.test(readFileSync(full, 'utf8').slice(0, 100));
  });
}

describe('shell scripts', () => {
  const scripts = [...shellScripts('hack'), ...shellScripts('e2e')].sort();

  it('are found (hack/ and e2e/)', () => {
    expect(scripts).toEqual(expect.arrayContaining(['hack/cluster.sh', 'e2e/lib/steps.sh', 'e2e/kind/run.sh']));
  });

  it('are executable and strict (set -euo pipefail)', () => {
    for (const s of scripts) {
      const text = readFileSync(join(repo, s), 'utf8');
      expect(statSync(join(repo, s)).mode & 0o100, `${s} is not executable`).not.toBe(0);
      expect(text, `${s} does not set -euo pipefail`).toMatch(/^set -euo pipefail$/m);
    }
  });

  it.each([
    // ae7a635^'s pod_metric, which failed CI with exit 141.
    [`kubectl get --raw "$url" | awk -v m="$3" '$1 == m { print $2; exit }'`, true],
    [`kubectl get --raw "$url" |\n    awk -v m="$3" '$1 == m && !found { found = 1; print $2 }'`, false],
    [`docker port "$id" 8082/tcp | sed -n 's/^127.0.0.1:\\([0-9]*\\)$/\\1/p' | head -n 1`, true],
    [`cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$name"; }`, true],
    [`ps -eo args= | grep -m1 rtmpd`, true],
    [`docker port "$1" | sed -n '/^127/{s//x/p;q}'`, true],
    [`ffprobe "$f" | sed 1q`, true],
    [`printf '%s\\n' a b | read -r first`, true],
    [`ls | while read -r f; do\n  [[ $f == x ]] && break\ndone`, true],
    [`ldd "$bin" | awk '{ print $3 }' | while read -r lib; do\n  cp "$lib" "$root"\ndone`, false],
    [`curl -fsS "$1/metrics" | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'`, false],
    [`head -c 100 "$path" | grep -E '^#!.*sh' >/dev/null`, false],
    [`grep -qx "$name" <<<"$(kind get clusters 2>/dev/null)"`, false],
    [`retry 30 "the log" grep -q "^Forwarding" "$log" || die`, false],
    [`sed -n "/^Forwarding from/{s//x/p;q}" "$log"`, false],
  ])('a reader that leaves early is found: %s', (text, found) => {
    expect(earlyLeavingReaders(text)).toHaveLength(found ? 1 : 0);
  });

  it('have no pipeline whose reader leaves before its writer is done (pipefail turns its SIGPIPE into a failure)', () => {
    const shell = trackedShell();
    expect(shell).toEqual(expect.arrayContaining(['Makefile', 'e2e/kind/steps.sh', 'hack/shellcheck.sh', '.ci/run']));
    expect(shell.flatMap((path) => earlyLeavingReaders(readFileSync(join(repo, path), 'utf8')).map((line) => `${path}: ${line}`))).toEqual(
      [],
    );
  });

  it('e2e/lib/steps.sh lists its steps and refuses an unknown one', () => {
    const r = spawnSync('bash', [join(repo, 'e2e/lib/steps.sh'), 'no-such-step'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('unknown step: no-such-step');
  });
});

describe('kind', () => {
  it('the cluster config is a kind v1alpha4 Cluster with a control plane and a worker', () => {
    const config = parse(readFileSync(join(repo, 'e2e/kind/kind-config.yaml'), 'utf8')) as {
      kind: string;
      apiVersion: string;
      nodes: { role: string; extraPortMappings?: { containerPort: number; listenAddress: string }[] }[];
    };
    expect(config.kind).toBe('Cluster');
    expect(config.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(config.nodes.map((n) => n.role)).toEqual(['control-plane', 'worker']);
    // The e2e RtmpServer's NodePorts, published on loopback only.
    const server = parse(readFileSync(join(repo, 'e2e/kind/rtmpserver.yaml'), 'utf8')) as {
      spec: { service: { nodePorts: { rtmp: number; http: number } } };
    };
    const mappings = config.nodes[0]?.extraPortMappings ?? [];
    expect(mappings.map((m) => m.containerPort).sort()).toEqual(Object.values(server.spec.service.nodePorts).sort());
    expect(new Set(mappings.map((m) => m.listenAddress))).toEqual(new Set(['127.0.0.1']));
  });

  it('run.sh does only the cluster and the images itself: the journey is e2e/lib/steps.sh', () => {
    const run = readFileSync(join(repo, 'e2e/kind/run.sh'), 'utf8');
    expect(run).toContain('source "$repo/e2e/lib/steps.sh"');
    for (const step of [
      'helm_install',
      'apply_rtmpserver',
      'wait_children',
      'wait_ready',
      'publish',
      'check_api',
      'check_operator_metrics',
      'delete_and_check_cleanup',
      'helm_uninstall',
    ]) {
      expect(run).toMatch(new RegExp(String.raw`(^|\s|\$\()` + step + ' ', 'm'));
    }
    // The local suite runs the same steps.
    const local = readFileSync(join(repo, 'e2e/local/journey.test.ts'), 'utf8');
    for (const step of [
      'helm-install',
      'apply-rtmpserver',
      'wait-children',
      'wait-ready',
      'publish',
      'check-api',
      'check-operator-metrics',
      'delete-and-check-cleanup',
      'helm-uninstall',
    ]) {
      expect(local).toContain(`'${step}'`);
    }
  });

  it('refuses to start without the tools it cannot install, saying so', () => {
    // A PATH with only what the script needs before its tool check: the first missing tool is named.
    const bin = mkdtempSync(join(tmpdir(), 'kind-path-'));
    try {
      for (const tool of ['dirname'])
        symlinkSync(spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), join(bin, tool));
      const r = spawnSync('/bin/bash', [join(repo, 'e2e/kind/run.sh')], { encoding: 'utf8', env: { PATH: bin, HOME: tmpdir() } });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('e2e: node is not on PATH');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('make kind-up (hack/kind-cluster.sh)', () => {
  /** kind_cluster_config FILE, as make kind-up and e2e/kind/run.sh call it, parsed. */
  function patchedConfig(file: string) {
    const r = spawnSync(
      'bash',
      ['-c', 'source hack/docker/engine.sh && source hack/kind-cluster.sh && kind_cluster_config "$1"', 'bash', file],
      { cwd: repo, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return parse(r.stdout) as { kind: string; apiVersion: string; nodes: { role: string }[]; [patch: string]: unknown };
  }
  // The patches kind_cluster_config adds where this machine needs them (see its comments).
  const capBnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const lacksSysResource = ((BigInt(`0x${capBnd}`) >> 24n) & 1n) === 0n;
  const cgroupV1 = !existsSync('/sys/fs/cgroup/cgroup.controllers');

  it.each([
    ['examples/kind-cluster.yaml', ['control-plane']],
    ['e2e/kind/kind-config.yaml', ['control-plane', 'worker']],
  ])("%s with this machine's patches is one kind Cluster", (file, roles) => {
    const config = patchedConfig(file);
    expect(config.kind).toBe('Cluster');
    expect(config.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(config.nodes.map((n) => n.role)).toEqual(roles);
    expect(config['containerdConfigPatches']).toEqual(
      lacksSysResource ? ['[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true'] : undefined,
    );
    expect('kubeadmConfigPatches' in config).toBe(cgroupV1);
  });

  it('is the one path to a cluster: make kind-up runs it and e2e/kind/run.sh uses its functions', () => {
    expect(readFileSync(join(repo, 'Makefile'), 'utf8')).toMatch(/^kind-up: .*\n\thack\/kind-cluster\.sh up$/m);
    const run = readFileSync(join(repo, 'e2e/kind/run.sh'), 'utf8');
    expect(run).toContain('source "$repo/hack/kind-cluster.sh"');
    for (const fn of ['kind_node_image', 'kind_cluster_config', 'kind_cluster_create', 'kind_cluster_load'])
      expect(run).toMatch(new RegExp(String.raw`\b${fn}\b`));
    expect(run).not.toMatch(/kind (create cluster|load docker-image)/);
  });
});

describe('GitHub workflow', () => {
  const text = readFileSync(join(repo, '.github/workflows/e2e-kind.yml'), 'utf8');
  const wf = parse(text) as {
    on: Record<string, unknown>;
    jobs: Record<string, { 'runs-on': string; env: Record<string, string>; steps: { run?: string; uses?: string }[] }>;
  };

  it('runs make e2e-kind on pushes and pull requests', () => {
    expect(Object.keys(wf.on)).toEqual(expect.arrayContaining(['push', 'pull_request']));
    const job = wf.jobs['e2e-kind'];
    expect(job?.steps.some((s) => s.run?.trim() === 'make e2e-kind')).toBe(true);
    expect(job?.steps.some((s) => s.uses?.startsWith('actions/setup-go'))).toBe(true);
  });

  it('downloads no tool: kind, kubectl and helm are the ones hack/k8s/build.sh builds', () => {
    expect(text).not.toMatch(/curl|wget|dl\.k8s\.io|get\.helm\.sh/);
  });

  it('has shell steps that pass shellcheck', () => {
    const runs = (wf.jobs['e2e-kind']?.steps ?? []).flatMap((s) => (s.run ? [s.run] : []));
    for (const script of runs) {
      const r = spawnSync('shellcheck', ['--shell=bash', '-'], { input: script.replace(/\$\{\{[^}]*\}\}/g, 'x'), encoding: 'utf8' });
      expect(r.stdout, script).toBe('');
    }
  });
});
