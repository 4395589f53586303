/**
 * PromQL series selectors, parsed just enough to combine an arm's selector
 * (`{release="canary"}`) with a metric's (`probe_http_duration_seconds{phase="tls"}`)
 * and to reject empty or malformed ones with the field's name.
 */
import { InvalidArgumentError } from '@probemesh/common';

/** A parsed selector: optional metric name and label matchers as PromQL text. */
export interface Selector {
  /** Metric name, when the selector names one. */
  metric?: string;
  /** Matchers like `release="canary"`, normalised to double quotes. */
  matchers: string[];
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL = /[a-zA-Z_][a-zA-Z0-9_]*/y;
const OP = /\s*(=~|!~|!=|=)\s*/y;

/**
 * Parses `name`, `name{m,…}`, `{m,…}` or a bare matcher list `a="b",c=~"d"`.
 * Throws InvalidArgumentError naming `field` when malformed, or empty unless `allowEmpty`.
 */
export function parseSelector(text: string, field: string, opts: { allowEmpty?: boolean } = {}): Selector {
  let s = text.trim();
  const fail = (why: string): never => {
    throw new InvalidArgumentError(field, `${why} in selector ${JSON.stringify(text)} (expected e.g. {release="canary"})`);
  };
  if (s === '') {
    if (opts.allowEmpty) return { matchers: [] };
    throw new InvalidArgumentError(field, 'must not be empty (a PromQL selector like {release="canary"})');
  }
  let metric: string | undefined;
  NAME.lastIndex = 0;
  const nm = NAME.exec(s);
  if (nm && nm.index === 0 && !/^\s*(=~|!~|!=|=)/.test(s.slice(nm[0].length))) {
    metric = nm[0];
    s = s.slice(nm[0].length).trim();
  }
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) fail('missing closing "}"');
    s = s.slice(1, -1);
  } else if (metric !== undefined && s !== '') fail(`unexpected ${JSON.stringify(s)}`);
  const matchers: string[] = [];
  let p = 0;
  const ws = () => {
    while (p < s.length && /\s/.test(s[p]!)) p++;
  };
  ws();
  while (p < s.length) {
    LABEL.lastIndex = p;
    const l = LABEL.exec(s);
    if (!l) fail(`expected a label name at ${JSON.stringify(s.slice(p, p + 12))}`);
    p += l![0].length;
    OP.lastIndex = p;
    const op = OP.exec(s);
    if (!op) fail(`expected =, !=, =~ or !~ after ${l![0]}`);
    p += op![0].length;
    const q = s[p];
    if (q !== '"' && q !== "'" && q !== '`') fail(`expected a quoted value after ${l![0]}${op![1]}`);
    let v = '';
    p++;
    for (;;) {
      if (p >= s.length) fail('unterminated string');
      const ch = s[p]!;
      if (ch === '\\' && q !== '`') {
        v += s[p + 1] ?? '';
        p += 2;
        continue;
      }
      p++;
      if (ch === q) break;
      v += ch;
    }
    matchers.push(`${l![0]}${op![1]}${JSON.stringify(v)}`);
    ws();
    if (p < s.length) {
      if (s[p] !== ',') fail(`expected "," at ${JSON.stringify(s.slice(p, p + 12))}`);
      p++;
      ws();
    }
  }
  if (!opts.allowEmpty && metric === undefined && matchers.length === 0) throw new InvalidArgumentError(field, 'must not be empty (a PromQL selector like {release="canary"})');
  return { metric, matchers };
}

/** PromQL text of `metric{a, b}` combining matcher lists (arm matchers first). */
export function renderSelector(metric: string, ...matcherLists: readonly (readonly string[])[]): string {
  const all = matcherLists.flat();
  return `${metric}{${all.join(',')}}`;
}
