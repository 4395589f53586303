/** Locating the OS binaries the integration tests run (from Debian packages). */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A binary the tests need is not installed. `code` is stable. */
export class MissingBinaryError extends Error {
  override readonly name = 'MissingBinaryError';
  /** Stable code. */
  readonly code = 'PM_TEST_MISSING_BINARY';
  constructor(
    /** Binary name, e.g. `nats-server`. */
    readonly binary: string,
    /** Debian package that ships it. */
    readonly debianPackage: string,
  ) {
    super(
      `${binary} not found (looked in PATH, /usr/sbin, /usr/bin): Debian package '${debianPackage}' is missing. ` +
        `Run 'bash scripts/setup.sh' as root (npm test / npm start do it; it runs apt-get install ${debianPackage}), ` +
        `or: sudo apt-get install -y --no-install-recommends ${debianPackage}`,
    );
  }
}

/**
 * Full path of `binary`: PATH first, then /usr/sbin, /usr/bin, /sbin (non-root PATHs often
 * lack /usr/sbin, where Debian puts nats-server). Throws {@link MissingBinaryError}.
 */
export function findBinary(binary: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/bin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, binary);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new MissingBinaryError(binary, debianPackage);
}
