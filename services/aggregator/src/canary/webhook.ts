/**
 * The rollback webhook: on FAIL, a JSON POST shaped like Flagger's webhook payload
 * (`name`, `namespace`, `phase`, string-valued `metadata`) plus the whole verdict, so
 * the receiver can be Flagger's load tester (`/rollback/open` flips its
 * `/rollback/check` gate that a Flagger `type: rollback` hook polls) or any HTTP hook.
 */
import { VERSION } from '@probemesh/common';
import type { CanaryVerdict } from './judge';

/** Settings of one webhook. */
export interface WebhookSettings {
  /** URL to POST to. */
  url: string;
  /** Extra headers. */
  headers: Record<string, string>;
  /** Per-attempt timeout, ms. */
  timeout: number;
  /** Attempts (1 + retries on network errors and 5xx). */
  attempts: number;
}

/** Flagger-style payload posted on FAIL. */
export interface RollbackPayload {
  /** Canary (Flagger canary name). */
  name: string;
  /** Kubernetes namespace ("" outside Kubernetes). */
  namespace: string;
  /** Always "Failed" for a rollback call. */
  phase: 'Failed';
  /** Flagger metadata: string values only. */
  metadata: Record<string, string>;
  /** The full verdict (non-Flagger extension). */
  verdict: CanaryVerdict;
}

/** Builds the payload of a rollback call. */
export function rollbackPayload(name: string, namespace: string, v: CanaryVerdict, nowMs: number): RollbackPayload {
  return {
    name,
    namespace,
    phase: 'Failed',
    metadata: {
      verdict: v.verdict,
      score: v.score.toFixed(1),
      reason: v.decidedBy.detail,
      decided_by: v.decidedBy.rule,
      attribution: v.attribution?.summary ?? '',
      look: `${v.look}/${v.looks}`,
      eventType: 'Warning',
      eventMessage: `probemesh canary judge: ${v.verdict} (${v.decidedBy.detail}); roll back`,
      timestamp: String(nowMs),
    },
    verdict: v,
  };
}

/** Outcome of a delivery. */
export interface WebhookOutcome {
  url: string;
  ok: boolean;
  status: number;
  attempts: number;
  error?: string;
}

/** POSTs `body` (JSON) with retries on network errors and 5xx; never throws. */
export async function postWebhook(w: WebhookSettings, body: string, deps: { fetch?: typeof fetch; sleep?: (ms: number) => Promise<void> } = {}): Promise<WebhookOutcome> {
  const f = deps.fetch ?? globalThis.fetch;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let last: WebhookOutcome = { url: w.url, ok: false, status: 0, attempts: 0 };
  for (let attempt = 1; attempt <= w.attempts; attempt++) {
    try {
      const res = await f(w.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `probemesh-canary/${VERSION}`, ...w.headers },
        body,
        signal: AbortSignal.timeout(w.timeout),
      });
      await res.text();
      last = { url: w.url, ok: res.ok, status: res.status, attempts: attempt, error: res.ok ? undefined : `HTTP ${res.status}` };
      if (res.ok || res.status < 500) return last;
    } catch (err) {
      last = { url: w.url, ok: false, status: 0, attempts: attempt, error: (err as Error).message };
    }
    if (attempt < w.attempts) await sleep(200 * 2 ** (attempt - 1));
  }
  return last;
}
