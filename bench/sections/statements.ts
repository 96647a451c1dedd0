import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../lib/procs.js';

/** SQL statements one call costs, by kind (SELECT, INSERT, UPDATE, BEGIN, COMMIT, SAVEPOINT, RELEASE). */
export interface StatementCount {
  total: number;
  byKind: Record<string, number>;
}

export interface StatementsResult {
  checkout: string;
  commit: string;
  /** A LOW call that runs at once. */
  low: StatementCount;
  /** A HIGH call in wait mode, approved over HTTP, run and answered (one approval). */
  approval: StatementCount;
}

/**
 * Counts, in a child process running the checkout's own gateway in process (its test kit, its
 * better-sqlite3), the statements of one LOW call and of one approval, one call at a time: what a
 * call costs the database, not what batching saves under load.
 */
export function countStatements(checkout: string, commit: string): StatementsResult {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'children', 'count-statements.ts'), checkout], {
    cwd: checkout,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 180_000,
  });
  const { low, approval } = JSON.parse(out.trim().split('\n').at(-1)!) as { low: StatementCount; approval: StatementCount };
  return { checkout, commit, low, approval };
}
