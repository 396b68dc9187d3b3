// Just enough PromQL and Grafana-template handling for the observability
// test: substitute dashboard variables, unwrap label_values(), and list the
// vector selectors an expression reads.

/** What "All" means for each dashboard variable, and a fixed rate window. */
export function substituteVariables(expr: string, rateInterval: string): string {
  return expr
    .replace(/\$__rate_interval|\$__interval|\$\{__rate_interval\}/g, rateInterval)
    .replace(/\$\{?(namespace|rtmpserver|stream)\}?/g, '.*');
}

/** Grafana's `label_values(selector, label)` → the selector it reads (a plain metric name when it has none). */
export function labelValuesSelector(query: string): string {
  const match = /^\s*label_values\(\s*(.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/s.exec(query);
  if (!match?.[1]) throw new Error(`not a label_values() query: ${query}`);
  return match[1];
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
  'atan2',
]);
/** Aggregation operators take `by (...)`/`without (...)` before their parenthesis. */
const AGGREGATIONS = new Set([
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'group',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
]);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

function skipString(s: string, i: number): number {
  const quote = s[i];
  i++;
  while (i < s.length && s[i] !== quote) i += s[i] === '\\' ? 2 : 1;
  return i + 1;
}

function skipBalanced(s: string, i: number, open: string, close: string): number {
  let depth = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(s, i);
      continue;
    }
    if (c === open) depth++;
    else if (c === close && --depth === 0) return i + 1;
    i++;
  }
  return i;
}

/** The vector selectors (`metric{matchers}`) in a PromQL expression, in order. */
export function vectorSelectors(expr: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(expr, i);
    } else if (c === '[') {
      i = skipBalanced(expr, i, '[', ']');
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (/[0-9.]/.test(c)) {
      const number = /^[0-9.]+(e[+-]?[0-9]+)?[a-z]*/i.exec(expr.slice(i))!;
      i += number[0].length;
    } else if (c === '{') {
      const end = skipBalanced(expr, i, '{', '}');
      out.push(expr.slice(i, end));
      i = end;
    } else if (/[A-Za-z_:]/.test(c)) {
      const ident = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i))![0];
      let j = i + ident.length;
      while (/\s/.test(expr[j] ?? '')) j++;
      if (KEYWORDS.has(ident)) {
        if (LABEL_LISTS.has(ident) && expr[j] === '(') j = skipBalanced(expr, j, '(', ')');
        else if (ident === 'offset') j += /^-?[0-9a-z]+/i.exec(expr.slice(j))?.[0].length ?? 0;
        i = j;
      } else if (expr[j] === '(' || AGGREGATIONS.has(ident)) {
        i = j; // a function call; its arguments are scanned next
      } else {
        const end = expr[j] === '{' ? skipBalanced(expr, j, '{', '}') : i + ident.length;
        out.push(ident + (expr[j] === '{' ? expr.slice(j, end) : ''));
        i = end;
      }
    } else {
      i++;
    }
  }
  return out;
}

/** Series only a pod of a fleet exports (--fleet-name): e2e/fleet/dashboard.test.ts runs what reads them. */
export const FLEET_ONLY = /^rtmpd_fleet_/;

/** Whether every selector `expr` reads names a metric that `names` matches. */
export function readsOnly(expr: string, names: RegExp): boolean {
  return vectorSelectors(expr).every((selector) => names.test(selector));
}
