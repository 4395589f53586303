/**
 * Go (RE2) regular expressions as blackbox configs write them, compiled to JS RegExp:
 * leading inline flags `(?i)` / `(?s)` / `(?m)` become JS flags, `(?P<name>` becomes
 * `(?<name>`, and a quantifier right after `^` or `$` (legal in Go, an error in JS —
 * blackbox's own example has `expect: "^+OK"`) applies to a group instead.
 */
import { addIssue, Schema, str } from '@probemesh/common';

/** Compiles a Go-syntax pattern; throws SyntaxError like `new RegExp` when it is invalid. */
export function goRegExp(src: string): RegExp {
  let body = src;
  let flags = '';
  const m = /^\(\?([imsU]+)\)/.exec(body);
  if (m) {
    flags = [...new Set(m[1]!.replace(/U/g, '').split(''))].join('');
    body = body.slice(m[0].length);
  }
  body = body.replace(/\(\?P</g, '(?<').replace(/(^|[^\\])([$^])([+*?]|\{\d+(?:,\d*)?\})/g, '$1(?:$2)$3');
  return new RegExp(body, flags);
}

/** A string that must compile with {@link goRegExp} (checked at config load). */
export function goRegExpSchema(doc?: string): Schema<string> {
  const base = str({ doc });
  return {
    ...base,
    expected: 'a regular expression',
    parse(v, path, ctx) {
      const s = base.parse(v, path, ctx);
      if (s === undefined) return undefined;
      try {
        goRegExp(s);
      } catch (err) {
        addIssue(ctx, path, `invalid regular expression: ${(err as Error).message}`);
        return undefined;
      }
      return s;
    },
  };
}
