/**
 * Vitest globalSetup of the process tier, which runs the CLI many times: compiles src/ and
 * cli/ once per test run, as `npm run build` does, into a fresh package beside no sources, so
 * cli/toolgate.js there runs the compiled build (as the container image does) instead of loading
 * tsx in every child. A new folder every run, deleted after: a stale build can never be used.
 * The tests find it through TOOLGATE_TEST_CLI (helpers.ts `CLI`).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export default function setup(): () => void {
  const started = Date.now();
  const pkg = mkdtempSync(join(tmpdir(), 'toolgate-built-cli-'));
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  // The console's page and scripts are not TypeScript: copied beside the build, as `npm run build` does.
  cpSync(join(ROOT, 'src/console/public'), join(pkg, 'dist/src/console/public'), { recursive: true });
  mkdirSync(join(pkg, 'cli'));
  copyFileSync(join(ROOT, 'cli/toolgate.js'), join(pkg, 'cli/toolgate.js'));
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(ROOT, 'drizzle'), join(pkg, 'drizzle'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  process.env.TOOLGATE_TEST_CLI = join(pkg, 'cli/toolgate.js');
  console.info(`built the CLI once for this run in ${Date.now() - started} ms: ${pkg}`);
  return () => rmSync(pkg, { recursive: true, force: true });
}
