/** Identifiers. */
import { createHash } from 'node:crypto';

/** The stable id of a target: hex of the first 16 bytes of SHA-256("<module>\n<url>"). */
export function targetId(module: string, url: string): string {
  return createHash('sha256').update(`${module}\n${url}`).digest('hex').slice(0, 32);
}
