/**
 * Counts the SQL statements a checkout runs for one LOW call and for one approval (a HIGH call in
 * wait mode, approved over HTTP, run, answered), in process, with that checkout's own gateway and
 * better-sqlite3: `node --import tsx bench/children/count-statements.ts <checkout>` prints JSON.
 * Run in its own process per checkout, so that each patches its own better-sqlite3.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2]!;
const Database = createRequire(join(dir, 'package.json'))('better-sqlite3');
const counts = new Map<string, number>();
let counting = false;
const kindOf = (sql: string) => {
  const word = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '?';
  return word === 'BEGIN' || word === 'COMMIT' || word === 'ROLLBACK' || word === 'SAVEPOINT' || word === 'RELEASE' ? word : word === 'WITH' ? 'SELECT' : word;
};
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function (this: unknown, sql: string, ...rest: unknown[]) {
  const statement = prepare.call(this, sql, ...rest);
  const kind = kindOf(sql);
  for (const method of ['run', 'get', 'all', 'iterate'] as const) {
    const original = statement[method];
    if (typeof original !== 'function') continue;
    statement[method] = function (this: unknown, ...args: unknown[]) {
      if (counting) counts.set(kind, (counts.get(kind) ?? 0) + 1);
      return original.apply(this, args);
    };
  }
  return statement;
};
// better-sqlite3's db.exec / db.transaction: count what goes through them too.
const exec = Database.prototype.exec;
Database.prototype.exec = function (this: unknown, sql: string) {
  if (counting) counts.set(kindOf(sql), (counts.get(kindOf(sql)) ?? 0) + 1);
  return exec.call(this, sql);
};

// better-sqlite3's db.transaction(fn) runs BEGIN and COMMIT natively, past `prepare`: count them here
// (toolgate before the async store used db.transaction(fn).immediate(); nested ones are savepoints, rare).
const transaction = Database.prototype.transaction;
Database.prototype.transaction = function (this: unknown, fn: (...args: unknown[]) => unknown) {
  const wrapped = transaction.call(this, fn);
  const countTransaction = () => {
    if (counting) for (const kind of ['BEGIN', 'COMMIT']) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const counted: any = function (this: unknown, ...args: unknown[]) {
    countTransaction();
    return wrapped.apply(this, args);
  };
  for (const variant of ['deferred', 'immediate', 'exclusive']) {
    counted[variant] = function (this: unknown, ...args: unknown[]) {
      countTransaction();
      return wrapped[variant].apply(this, args);
    };
  }
  return counted;
};

async function measure(n: number, once: () => Promise<void>) {
  await once(); // warm: statements prepared, caches filled
  counts.clear();
  counting = true;
  for (let i = 0; i < n; i++) await once();
  counting = false;
  const perCall: Record<string, number> = {};
  let total = 0;
  for (const [kind, count] of counts) {
    perCall[kind] = count / n;
    total += count;
  }
  return { total: total / n, byKind: perCall };
}

async function main() {
  const helpers = await import(pathToFileURL(join(dir, 'test', 'helpers.ts')).href);
  // Background jobs paced at their slowest, so that they add (almost) nothing to what is counted.
  const t = await helpers.startTestGateway({ env: { APPROVAL_POLLING_INTERVAL: '60', RATE_LIMIT_PER_MINUTE: '0', AUDIT_CHECKPOINT_EVERY: '100000' } });
  try {
    const call = (tool: string, token: string, body: unknown) =>
      fetch(`${t.url}/tools/${tool}/call`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const low = await measure(50, async () => {
      const res = await call('echo', t.tokens.dev, { arguments: { message: 'count' } });
      if (res.status !== 200) throw new Error(`LOW call: ${res.status} ${await res.text()}`);
    });
    const approval = await measure(20, async () => {
      const caller = call('write_file', t.tokens.dev, { arguments: { path: '/tmp/x', content: 'y' } });
      const pending = await helpers.pendingApprovals(t, 1);
      const id = pending[0].id;
      const decided = await fetch(`${t.url}/api/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${t.tokens.admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'counting statements' }) });
      if (decided.status !== 200) throw new Error(`approve: ${decided.status} ${await decided.text()}`);
      const res = await caller;
      if (res.status !== 200) throw new Error(`HIGH call: ${res.status} ${await res.text()}`);
    });
    process.stdout.write(JSON.stringify({ low, approval }) + '\n');
  } finally {
    await t.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
