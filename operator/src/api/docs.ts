// The field reference of RtmpServer as Markdown, printed from the same
// structural schema the CRD carries, so the README cannot drift from it.
import { openAPISchema } from './crd.ts';

type Json = Record<string, unknown>;

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function typeOf(node: Json): string {
  if (node['x-kubernetes-int-or-string']) return 'int or string';
  if (node['x-kubernetes-preserve-unknown-fields']) return 'object (free-form)';
  if (node.type === 'array') return `[]${typeOf((node.items ?? {}) as Json)}`;
  if (node.type === 'object' && node.additionalProperties) return `map[string]${typeOf(node.additionalProperties as Json)}`;
  if (node.enum) return (node.enum as unknown[]).map((v) => `\`${String(v)}\``).join(' | ');
  return String(node.type ?? 'any');
}

function constraints(node: Json): string {
  const parts: string[] = [];
  if (node.minimum !== undefined) parts.push(`≥ ${String(node.minimum)}`);
  if (node.maximum !== undefined) parts.push(`≤ ${String(node.maximum)}`);
  if (node.minItems !== undefined) parts.push(`at least ${String(node.minItems)} item(s)`);
  for (const v of (node['x-kubernetes-validations'] ?? []) as { message: string }[]) parts.push(v.message);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

function rows(node: Json, path: string, out: string[]): void {
  const props = (node.properties ?? {}) as Record<string, Json>;
  for (const [name, child] of Object.entries(props)) {
    const p = `${path}.${name}`;
    const def = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    const desc = `${String(child.description ?? '')}${constraints(child)}`;
    out.push(`| \`${p}\` | ${cell(typeOf(child))} | ${cell(def)} | ${cell(desc)} |`);
    if (child.type === 'object' && child.properties) rows(child, p, out);
    if (child.type === 'array' && (child.items as Json | undefined)?.properties) rows(child.items as Json, `${p}[]`, out);
  }
}

/** Markdown tables of every spec and status field: type, default, description. */
export function fieldReference(): string {
  const root = openAPISchema() as { properties: { spec: Json; status: Json } };
  const header = ['| Field | Type | Default | Description |', '|---|---|---|---|'];
  const spec: string[] = [];
  rows(root.properties.spec, 'spec', spec);
  const status: string[] = [];
  rows(root.properties.status, 'status', status);
  return ['### Spec', '', ...header, ...spec, '', '### Status', '', ...header, ...status, ''].join('\n');
}
