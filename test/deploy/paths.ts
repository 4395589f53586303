/** Locations of the deploy/ files, from the compiled test (test/dist/deploy/*.js). */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function findRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'deploy', 'terraform'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no deploy/terraform above ${__dirname}`);
    dir = up;
  }
  return dir;
}

/** Repository root. */
export const REPO_ROOT = resolve(findRoot());
/** deploy/ */
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
