/** CLI usage errors: printed as one line, exit status 2. */
import { ProbemeshError } from '@probemesh/common';

/** Stable code of a CLI usage error. */
export const USAGE_ERROR = 'PM_USAGE';

/** A command line that cannot be run as given. */
export class UsageError extends ProbemeshError {
  constructor(message: string) {
    super(USAGE_ERROR, message);
    this.name = 'UsageError';
  }
}
