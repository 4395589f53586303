/**
 * A small renderer for the subset of Terraform's templatefile() language the cloud_init
 * templates use, so tests can render them without a Terraform binary:
 * `${expr}` interpolation, `%{ for v in expr }` / `%{ for k, v in expr }` … `%{ endfor }`,
 * `%{ if expr }` … `%{ else }` … `%{ endif }`, the `~` strip markers, the `$${` / `%%{`
 * escapes. Expressions: literals, variables, `.attr`, `[index]`, function calls (the
 * functions below), `!`, unary `-`, `== != < > <= >= && || + - * /`, `c ? a : b`, parens.
 *
 * Strip markers follow HCL: `~}` removes the whitespace after the marker up to and
 * including the next newline; `%{~` / `${~` remove the whitespace before the marker back
 * to the start of the line, or, when the marker starts the line, the preceding newline.
 */
import { InvalidArgumentError } from '@probemesh/common';

/** Values a template works with. */
export type TplValue = string | number | boolean | null | TplValue[] | { [k: string]: TplValue };

/** The Terraform functions the renderer knows. */
export const TEMPLATE_FUNCTIONS: Record<string, (...args: TplValue[]) => TplValue> = {
  jsonencode: (v) => JSON.stringify(v),
  base64encode: (v) => Buffer.from(asString(v), 'utf8').toString('base64'),
  upper: (v) => asString(v).toUpperCase(),
  lower: (v) => asString(v).toLowerCase(),
  join: (sep, list) => asList(list).map(asString).join(asString(sep)),
  length: (v) => (typeof v === 'string' ? v.length : Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : fail(`length() of ${typeof v}`)),
};

function fail(msg: string): never {
  throw new InvalidArgumentError('template', msg);
}
function asString(v: TplValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return fail(`cannot convert ${v === null ? 'null' : Array.isArray(v) ? 'list' : 'object'} to string`);
}
function asList(v: TplValue): TplValue[] {
  if (Array.isArray(v)) return v;
  return fail('expected a list');
}

// ---- template structure ----------------------------------------------------------------

type Node =
  | { t: 'text'; s: string }
  | { t: 'interp'; e: string }
  | { t: 'for'; key?: string; val: string; coll: string; body: Node[] }
  | { t: 'if'; cond: string; then: Node[]; else: Node[] };

type Token = { t: 'text'; s: string } | { t: 'interp'; e: string } | { t: 'dir'; d: string };

function findClose(src: string, from: number): number {
  // The closing brace of a sequence, skipping braces inside string literals and nested braces.
  let depth = 0;
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (c === '"') {
      for (i++; i < src.length && src[i] !== '"'; i++) if (src[i] === '\\') i++;
    } else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  return fail(`unclosed sequence at offset ${from}`);
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let text = '';
  let ltrimNext = false;
  const pushText = () => {
    out.push({ t: 'text', s: text });
    text = '';
  };
  let i = 0;
  while (i < src.length) {
    if (src.startsWith('$${', i) || src.startsWith('%%{', i)) {
      text += src[i + 1] + '{';
      i += 3;
      continue;
    }
    const isInterp = src.startsWith('${', i);
    const isDir = src.startsWith('%{', i);
    if (!isInterp && !isDir) {
      text += src[i];
      i++;
      continue;
    }
    let start = i + 2;
    if (src[start] === '~') {
      start++;
      text = rtrimLine(text);
    }
    const close = findClose(src, start);
    let body = src.slice(start, close);
    if (body.endsWith('~')) {
      body = body.slice(0, -1);
      ltrimNext = true;
    }
    pushText();
    out.push(isInterp ? { t: 'interp', e: body.trim() } : { t: 'dir', d: body.trim() });
    i = close + 1;
    if (ltrimNext) {
      const rest = src.slice(i);
      const m = /^[^\S\n]*\n?/.exec(rest);
      i += m ? m[0].length : 0;
      ltrimNext = false;
    }
  }
  pushText();
  return out;
}

function rtrimLine(text: string): string {
  const nl = text.lastIndexOf('\n');
  const line = text.slice(nl + 1);
  if (line.length > 0 && line.trim() === '') return text.slice(0, nl + 1);
  if (line.length === 0) return text.replace(/[^\S\n]*\n$/, '');
  return text.replace(/[^\S\n]+$/, '');
}

function parseTemplate(tokens: Token[]): Node[] {
  let pos = 0;
  function block(stop: string[]): { nodes: Node[]; end: string } {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const tok = tokens[pos++]!;
      if (tok.t === 'text') {
        if (tok.s) nodes.push(tok);
      } else if (tok.t === 'interp') nodes.push(tok);
      else {
        const d = tok.d;
        const kw = /^\w+/.exec(d)?.[0] ?? '';
        if (stop.includes(kw)) return { nodes, end: kw };
        if (kw === 'for') {
          const m = /^for\s+(\w+)(?:\s*,\s*(\w+))?\s+in\s+([\s\S]+)$/.exec(d);
          if (!m) fail(`bad for directive: ${d}`);
          const inner = block(['endfor']);
          if (inner.end !== 'endfor') fail('for without endfor');
          nodes.push(m[2] ? { t: 'for', key: m[1]!, val: m[2], coll: m[3]!, body: inner.nodes } : { t: 'for', val: m[1]!, coll: m[3]!, body: inner.nodes });
        } else if (kw === 'if') {
          const cond = d.slice(2).trim();
          const a = block(['else', 'endif']);
          let b: Node[] = [];
          if (a.end === 'else') {
            const e = block(['endif']);
            if (e.end !== 'endif') fail('if without endif');
            b = e.nodes;
          } else if (a.end !== 'endif') fail('if without endif');
          nodes.push({ t: 'if', cond, then: a.nodes, else: b });
        } else fail(`unexpected directive %{ ${d} }`);
      }
    }
    return { nodes, end: '' };
  }
  const { nodes, end } = block([]);
  if (end) fail(`unexpected %{ ${end} }`);
  return nodes;
}

// ---- expressions -------------------------------------------------------------------------

type ETok = { k: 'num'; v: number } | { k: 'str'; v: string } | { k: 'id'; v: string } | { k: 'op'; v: string };

function lexExpr(src: string): ETok[] {
  const out: ETok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) i++;
    else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i))!;
      out.push({ k: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i))!;
      out.push({ k: 'id', v: m[0] });
      i += m[0].length;
    } else if (c === '"') {
      let s = '';
      for (i++; i < src.length && src[i] !== '"'; i++) {
        if (src[i] === '$' && src[i + 1] === '{') fail('templates inside expression strings are not supported');
        if (src[i] === '\\') {
          i++;
          const e = src[i];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : (e ?? '');
        } else s += src[i];
      }
      if (src[i] !== '"') fail(`unterminated string in ${src}`);
      i++;
      out.push({ k: 'str', v: s });
    } else {
      const two = src.slice(i, i + 2);
      if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
        out.push({ k: 'op', v: two });
        i += 2;
      } else if ('!<>+-*/%?:.,()[]'.includes(c)) {
        out.push({ k: 'op', v: c });
        i++;
      } else fail(`unexpected character ${JSON.stringify(c)} in ${src}`);
    }
  }
  return out;
}

const BINARY: Record<string, number> = { '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 4, '>': 4, '<=': 4, '>=': 4, '+': 5, '-': 5, '*': 6, '/': 6, '%': 6 };

/** Evaluates one expression against `scope`; unknown variables and functions are errors. */
export function evalExpression(src: string, scope: Record<string, TplValue>, functions = TEMPLATE_FUNCTIONS): TplValue {
  const toks = lexExpr(src);
  let p = 0;
  const peek = () => toks[p];
  const isOp = (v: string) => peek()?.k === 'op' && peek()!.v === v;
  const expect = (v: string) => {
    if (!isOp(v)) fail(`expected "${v}" in ${src}`);
    p++;
  };
  function primary(): TplValue {
    const t = toks[p++];
    if (!t) return fail(`unexpected end of ${src}`);
    let v: TplValue;
    if (t.k === 'num' || t.k === 'str') v = t.v;
    else if (t.k === 'op' && t.v === '(') {
      v = expr();
      expect(')');
    } else if (t.k === 'op' && t.v === '!') return !truthy(primary());
    else if (t.k === 'op' && t.v === '-') return -num(primary());
    else if (t.k === 'id') {
      if (t.v === 'true' || t.v === 'false') v = t.v === 'true';
      else if (t.v === 'null') v = null;
      else if (isOp('(')) {
        p++;
        const fn = functions[t.v];
        if (!fn) fail(`unknown function ${t.v}()`);
        const args: TplValue[] = [];
        while (!isOp(')')) {
          args.push(expr());
          if (!isOp(')')) expect(',');
        }
        p++;
        v = fn(...args);
      } else {
        if (!(t.v in scope)) fail(`unknown variable "${t.v}" (known: ${Object.keys(scope).join(', ')})`);
        v = scope[t.v]!;
      }
    } else return fail(`unexpected "${t.v}" in ${src}`);
    for (;;) {
      if (isOp('.')) {
        p++;
        const name = toks[p++];
        if (name?.k !== 'id') fail(`attribute name expected in ${src}`);
        v = attr(v, name.v);
      } else if (isOp('[')) {
        p++;
        const idx = expr();
        expect(']');
        v = attr(v, idx);
      } else return v;
    }
  }
  function binary(minPrec: number): TplValue {
    let left = primary();
    for (;;) {
      const t = peek();
      const prec = t?.k === 'op' ? BINARY[t.v] : undefined;
      if (prec === undefined || prec < minPrec) return left;
      p++;
      const right = binary(prec + 1);
      left = applyBinary(String(t!.v), left, right);
    }
  }
  function expr(): TplValue {
    const cond = binary(1);
    if (!isOp('?')) return cond;
    p++;
    const a = expr();
    expect(':');
    const b = expr();
    return truthy(cond) ? a : b;
  }
  const v = expr();
  if (p !== toks.length) fail(`unexpected trailing tokens in ${src}`);
  return v;
}

function attr(v: TplValue, key: TplValue): TplValue {
  if (Array.isArray(v)) {
    const i = num(key);
    if (i < 0 || i >= v.length) fail(`index ${i} out of range`);
    return v[i]!;
  }
  if (v && typeof v === 'object') {
    const k = asString(key);
    if (!(k in v)) fail(`object has no attribute "${k}"`);
    return v[k]!;
  }
  return fail(`cannot index ${typeof v}`);
}
function num(v: TplValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return fail(`expected a number, got ${JSON.stringify(v)}`);
}
function truthy(v: TplValue): boolean {
  if (typeof v !== 'boolean') fail(`condition must be a bool, got ${JSON.stringify(v)}`);
  return v;
}
function applyBinary(op: string, a: TplValue, b: TplValue): TplValue {
  switch (op) {
    case '==':
      return JSON.stringify(a) === JSON.stringify(b);
    case '!=':
      return JSON.stringify(a) !== JSON.stringify(b);
    case '&&':
      return truthy(a) && truthy(b);
    case '||':
      return truthy(a) || truthy(b);
    case '<':
      return num(a) < num(b);
    case '>':
      return num(a) > num(b);
    case '<=':
      return num(a) <= num(b);
    case '>=':
      return num(a) >= num(b);
    case '+':
      return num(a) + num(b);
    case '-':
      return num(a) - num(b);
    case '*':
      return num(a) * num(b);
    case '/':
      return num(a) / num(b);
    default:
      return num(a) % num(b);
  }
}

// ---- rendering ------------------------------------------------------------------------------

function renderNodes(nodes: Node[], scope: Record<string, TplValue>): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.s;
    else if (n.t === 'interp') out += asString(evalExpression(n.e, scope));
    else if (n.t === 'if') out += renderNodes(truthy(evalExpression(n.cond, scope)) ? n.then : n.else, scope);
    else {
      const coll = evalExpression(n.coll, scope);
      const entries: [TplValue, TplValue][] = Array.isArray(coll)
        ? coll.map((v, i) => [i, v])
        : coll && typeof coll === 'object'
          ? Object.keys(coll).sort().map((k) => [k, coll[k]!])
          : fail(`for over ${typeof coll}`);
      for (const [k, v] of entries) out += renderNodes(n.body, { ...scope, [n.val]: v, ...(n.key ? { [n.key]: k } : {}) });
    }
  }
  return out;
}

/** Renders `template` with `vars`, like Terraform's templatefile(path, vars). */
export function renderTemplate(template: string, vars: Record<string, TplValue>): string {
  return renderNodes(parseTemplate(tokenize(template)), vars);
}

/** Top-level variable names a template reads (for-loop variables excluded). */
export function templateVariables(template: string): Set<string> {
  const names = new Set<string>();
  const visit = (nodes: Node[], bound: Set<string>) => {
    const collect = (e: string) => {
      for (const t of lexExpr(e).map((x, i, all) => ({ x, prev: all[i - 1], next: all[i + 1] }))) {
        if (t.x.k !== 'id' || ['true', 'false', 'null'].includes(t.x.v)) continue;
        if (t.prev?.k === 'op' && t.prev.v === '.') continue;
        if (t.next?.k === 'op' && t.next.v === '(') continue;
        if (!bound.has(t.x.v)) names.add(t.x.v);
      }
    };
    for (const n of nodes) {
      if (n.t === 'interp') collect(n.e);
      else if (n.t === 'if') {
        collect(n.cond);
        visit(n.then, bound);
        visit(n.else, bound);
      } else if (n.t === 'for') {
        collect(n.coll);
        visit(n.body, new Set([...bound, n.val, ...(n.key ? [n.key] : [])]));
      }
    }
  };
  visit(parseTemplate(tokenize(template)), new Set());
  return names;
}
