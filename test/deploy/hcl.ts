/**
 * Loads Terraform modules with @cdktf/hcl2json (HashiCorp's HCL2 parser compiled to WASM)
 * and indexes what each declares and references, for the static checks in
 * terraform.test.ts (there is no Terraform binary on this machine).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Loaded untyped on purpose: the package's .d.ts pulls in the DOM lib (`/// <reference lib="dom" />`),
// which would leak browser globals into the whole test project.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hcl2json = require('@cdktf/hcl2json') as {
  parse(filename: string, contents: string): Promise<Record<string, unknown>>;
  getReferencesInExpression(filename: string, expression: string): Promise<{ value: string }[]>;
};
const { parse, getReferencesInExpression } = hcl2json;

/** A parsed block body (hcl2json: attributes as values, expressions as "${…}" strings, blocks as arrays). */
export type Body = Record<string, unknown>;

/** One expression found in a module, with where it sits. */
export interface TfExpression {
  file: string;
  /** Dotted path of the attribute, e.g. resource.aws_instance.prober.user_data. */
  path: string;
  text: string;
  /** References (`var.x`, `module.m`, `aws_instance.p.id`, …) as hcl2json reports them. */
  refs: string[];
}

/** Everything one module directory declares. */
export interface TfModule {
  dir: string;
  files: string[];
  variables: Map<string, Body>;
  locals: Map<string, unknown>;
  outputs: Map<string, Body>;
  /** "type.name" */
  resources: Map<string, Body>;
  /** "type.name" (without the data. prefix) */
  data: Map<string, Body>;
  modules: Map<string, Body>;
  /** Provider configurations: "aws" or "aws.alias". */
  providerConfigs: Set<string>;
  /** required_providers names. */
  requiredProviders: Set<string>;
  expressions: TfExpression[];
}

function first(v: unknown): Body {
  return (Array.isArray(v) ? v[0] : v) as Body;
}

function collectExpressions(file: string, path: string, v: unknown, out: { file: string; path: string; text: string }[]): void {
  if (typeof v === 'string') {
    if (v.includes('${')) out.push({ file, path, text: v });
  } else if (Array.isArray(v)) v.forEach((x) => collectExpressions(file, path, x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) collectExpressions(file, path ? `${path}.${k}` : k, x, out);
}

/** Parses every .tf file of `dir` and indexes the module. */
export async function loadModule(dir: string): Promise<TfModule> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.tf')).sort();
  const m: TfModule = { dir, files, variables: new Map(), locals: new Map(), outputs: new Map(), resources: new Map(), data: new Map(), modules: new Map(), providerConfigs: new Set(), requiredProviders: new Set(), expressions: [] };
  const raw: { file: string; path: string; text: string }[] = [];
  for (const f of files) {
    const json = (await parse(f, readFileSync(join(dir, f), 'utf8'))) as Record<string, Body>;
    for (const [name, v] of Object.entries(json.variable ?? {})) m.variables.set(name, first(v));
    for (const l of (json.locals as unknown as Body[] | undefined) ?? []) for (const [k, v] of Object.entries(l)) m.locals.set(k, v);
    for (const [name, v] of Object.entries(json.output ?? {})) m.outputs.set(name, first(v));
    for (const [type, byName] of Object.entries(json.resource ?? {})) for (const [name, v] of Object.entries(byName as Body)) m.resources.set(`${type}.${name}`, first(v));
    for (const [type, byName] of Object.entries(json.data ?? {})) for (const [name, v] of Object.entries(byName as Body)) m.data.set(`${type}.${name}`, first(v));
    for (const [name, v] of Object.entries(json.module ?? {})) m.modules.set(name, first(v));
    for (const [name, v] of Object.entries(json.provider ?? {})) {
      for (const cfg of v as Body[]) m.providerConfigs.add(typeof cfg.alias === 'string' ? `${name}.${cfg.alias}` : name);
    }
    for (const tf of (json.terraform as unknown as Body[] | undefined) ?? []) {
      for (const rp of (tf.required_providers as Body[] | undefined) ?? []) for (const name of Object.keys(rp)) m.requiredProviders.add(name);
    }
    collectExpressions(f, '', json, raw);
  }
  // Type constraints (variable "x" { type = map(object({…})) }) are not expressions.
  for (const e of raw.filter((x) => !/^variable\.[^.]+\.type$/.test(x.path))) m.expressions.push({ ...e, refs: (await getReferencesInExpression(e.file, e.text)).map((r) => r.value) });
  return m;
}

/** `${expr}` → expr (hcl2json wraps every expression like that). */
export function unwrap(expr: unknown): string {
  const s = String(expr);
  return s.startsWith('${') && s.endsWith('}') ? s.slice(2, -1) : s;
}

/**
 * Keys of an HCL object: hcl2json gives a static object constructor as a JSON object, and
 * one inside an expression as text (`{ a = x, b = f(y) }` → [a, b]).
 */
export function objectKeys(expr: unknown): string[] {
  if (expr && typeof expr === 'object' && !Array.isArray(expr)) return Object.keys(expr);
  let body = unwrap(expr).trim();
  if (!body.startsWith('{')) throw new Error(`not an object constructor: ${body.slice(0, 40)}`);
  body = body.slice(1, -1);
  const keys: string[] = [];
  let depth = 0;
  let inStr = false;
  let atItemStart = true;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0 && (c === ',' || c === '\n')) atItemStart = true;
    else if (depth === 0 && atItemStart && /[A-Za-z_]/.test(c)) {
      const m = /^([A-Za-z_][A-Za-z0-9_-]*)\s*=(?!=)/.exec(body.slice(i));
      if (m) {
        keys.push(m[1]!);
        i += m[0].length - 1;
      }
      atItemStart = false;
    }
  }
  return keys;
}
