/**
 * The test tiers, read from the test files themselves so that there is no list to keep in step:
 * - process tier: every test tagged `process`, either a whole file (a `// @module-tag process`
 *   line at its top) or a suite or test (`{ tags: ['process'] }`). These need real processes:
 *   the CLI binary, the stdio bridge and upstream child, several gateway processes, crashes.
 * - fast tier: everything else outside test/chaos/.
 * - chaos: test/chaos/ (vitest.chaos.config.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROCESS_TAG = 'process';

const ROOT = fileURLToPath(new URL('.', import.meta.url));
const TEST_ROOT = 'test';
const WHOLE_FILE = /^\s*\/\/\s*@module-tag\s+process\b/m;
const SOME_TESTS = /tags:\s*\[\s*'process'\s*\]/;

function testFiles(dir = TEST_ROOT): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return path === join(TEST_ROOT, 'chaos') || path === join(TEST_ROOT, 'browser') ? [] : testFiles(path);
    return e.name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = testFiles().map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));

/** Files whose every test is in the process tier: the fast tier does not even load them. */
export const processOnlyFiles = files.filter((f) => WHOLE_FILE.test(f.text)).map((f) => f.path);
/** Files with at least one test in the process tier. */
export const processFiles = files.filter((f) => WHOLE_FILE.test(f.text) || SOME_TESTS.test(f.text)).map((f) => f.path);

export const tags = [{ name: PROCESS_TAG, description: 'needs real processes: the CLI binary, the stdio bridge, several gateways, crashes' }];

/**
 * Runs only the tests of one tier in the files a config includes. Vitest 4.1 reads `tagsFilter`
 * from the config file but types it as a command-line option only, hence the spread.
 */
export function onlyTier(tier: 'fast' | 'process'): object {
  return { tagsFilter: [tier === 'process' ? PROCESS_TAG : `!${PROCESS_TAG}`] };
}
