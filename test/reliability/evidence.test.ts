import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainHash, createAuditLog, GENESIS_HASH, pruneAudit } from '../../src/audit/audit.service.js';
import { Checkpointer, signCheckpoint } from '../../src/audit/checkpoints.js';
import type { ChainHead } from '../../src/audit/audit-store.js';
import { KeyRing } from '../../src/signing/key-ring.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import { defaultToolgateFile } from '../../src/tools/gateway-file.js';
import { scrubPaths } from '../../src/tools/upstreams.js';
import { api, eventually, runCliSync, startTestGateway, tempDir } from '../helpers.js';
import { connectHttp, textOf } from '../mcp/mcp-clients.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;


describe('private files', { tags: ['process'], timeout: 60_000 }, () => {
  it('creates the data folder 0700 and the database, its -wal and -shm files and backups 0600, whatever the umask', async () => {
    const root = tempDir();
    const dataDir = join(root.path, 'fresh', 'data');
    const dbPath = join(dataDir, 'toolgate.db');
    const previous = process.umask(0o022);
    const t = await startTestGateway({ dir: root.path, dbPath });
    try {
      expect(modeOf(dataDir)).toBe(0o700);
      expect(modeOf(join(root.path, 'fresh'))).toBe(0o700);
      for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
        expect(existsSync(file)).toBe(true);
        expect(modeOf(file), file).toBe(0o600);
      }
      const backup = join(root.path, 'backup.db');
      const result = runCliSync(['db', 'backup', backup], { DATABASE_PATH: dbPath });
      expect(result.status, result.stderr).toBe(0);
      expect(modeOf(backup)).toBe(0o600);
    } finally {
      process.umask(previous);
      await t.close();
      root.remove();
    }
  });
});

describe('upstream errors shown to callers', () => {
  it("keep the filesystem server's absolute paths out of HTTP and MCP answers, and in the server log", async () => {
    const workspace = tempDir('toolgate-workspace-');
    const logged = new PassThrough();
    let log = '';
    logged.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const file = { ...defaultToolgateFile(workspace.path), policy: [{ tool: 'read_text_file', sensitivity: 'LOW' as const, roles: ['guest', 'developer', 'admin'] }] };
    const t = await startTestGateway({ file, logger: createLogger('info', { destination: logged }) });
    const client = await connectHttp(t.url, t.tokens.dev);
    try {
      const outside = '/etc/hostname';
      const http = await api(t.url, 'POST', '/tools/read_text_file/call', { token: t.tokens.dev, body: { arguments: { path: outside } } });
      expect(http.status).toBe(200);
      expect(http.body.result.isError).toBe(true);
      const httpText = JSON.stringify(http.body);
      expect(httpText).toContain('Access denied');
      expect(httpText).toContain('[path]');
      expect(httpText).not.toContain(workspace.path);

      const missing = join(workspace.path, 'nope.txt');
      const mcp = (await client.callTool({ name: 'read_text_file', arguments: { path: missing } })) as CallToolResult;
      expect(mcp.isError).toBe(true);
      expect(textOf(mcp)).toContain('[path]');
      expect(JSON.stringify(mcp)).not.toContain(workspace.path);

      await eventually(() => log.includes(`not in ${workspace.path}`) && log.includes(missing));
      expect(log).toContain(`not in ${workspace.path}`);
      expect(log).toContain(missing);
    } finally {
      await client.close();
      await t.close();
      workspace.remove();
    }
  });

  it('scrubs POSIX, Windows, UNC and file: paths and leaves URLs and relative paths', () => {
    expect(scrubPaths('spawn /opt/toolgate/node_modules/.bin/server ENOENT')).toBe('spawn [path] ENOENT');
    expect(scrubPaths("ENOENT: no such file or directory, open '/home/x/data/workspace/a.txt'")).toBe("ENOENT: no such file or directory, open '[path]'");
    expect(scrubPaths('C:\\Users\\bob\\server.js and C:/tools/x.exe and \\\\files\\share\\f.txt failed')).toBe('[path] and [path] and [path] failed');
    expect(scrubPaths('cannot read file:///srv/data/x')).toBe('cannot read [path]');
    const kept = 'fetch http://127.0.0.1:9000/mcp failed for ./data/x and a/b';
    expect(scrubPaths(kept)).toBe(kept);
  });
});

/** Opens a copy's database as an attacker with write access would: plain SQL, no toolgate code. */
function tamper<T>(dbPath: string, fn: (db: Database.Database) => T): T {
  const db = new Database(dbPath);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

type EventRow = { seq: number; chain: string | null; chainSeq: number | null; prevHash: string; hash: string } & Record<string, unknown>;
const EVENT_COLUMNS =
  'seq, at, actor, action, tool, request_id as requestId, status, duration_ms as durationMs, details, http_request_id as httpRequestId, instance_id as instanceId, chain, chain_seq as chainSeq, prev_hash as prevHash, hash';

/** Changes event `from` and recomputes every hash after it in its chain, so the chain is whole again. */
function rewriteFrom(db: Database.Database, from: number) {
  const { chain } = db.prepare('select chain from audit_events where seq = ?').get(from) as { chain: string };
  const rows = db.prepare(`select ${EVENT_COLUMNS} from audit_events where chain = ? and seq >= ? order by seq`).all(chain, from) as EventRow[];
  let prev = (db.prepare('select hash from audit_events where chain = ? and seq < ? order by seq desc limit 1').get(chain, from) as { hash: string } | undefined)?.hash ?? GENESIS_HASH;
  const update = db.prepare('update audit_events set actor = ?, prev_hash = ?, hash = ? where seq = ?');
  for (const row of rows) {
    const { hash: _h, prevHash: _p, ...rest } = row;
    const actor = row.seq === from ? 'nobody' : (row.actor as string);
    const hash = chainHash(prev, { ...rest, actor } as never);
    update.run(actor, prev, hash, row.seq);
    prev = hash;
  }
}

/** The head of `from`'s chain in the newest checkpoint. */
function signedHeadOf(db: Database.Database, from: number): number {
  const { chain } = db.prepare('select chain from audit_events where seq = ?').get(from) as { chain: string };
  const { heads } = db.prepare('select heads from audit_checkpoints order by seq desc limit 1').get() as { heads: string };
  return (JSON.parse(heads) as { chain: string; seq: number }[]).find((h) => h.chain === chain)!.seq;
}

interface SignedLog {
  dir: string;
  dbPath: string;
  keyPath: string;
  filePath: string;
  /** A private copy of the whole data folder, to tamper with. */
  copy(): { dbPath: string; filePath: string; env: Record<string, string> };
  remove(): void;
}

/** A real gateway writes ~25 events with a checkpoint every 5 and one at shutdown, then stops. */
async function signedLog(): Promise<SignedLog> {
  const root = tempDir();
  const dir = join(root.path, 'data');
  const dbPath = join(dir, 'toolgate.db');
  const t = await startTestGateway({ dir: root.path, dbPath, env: { AUDIT_CHECKPOINT_EVERY: '5' } });
  try {
    for (let i = 0; i < 22; i++) {
      const res = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: { message: `call ${i}` } } });
      expect(res.status).toBe(200);
    }
    await eventually(() => t.sql().prepare('select count(*) as n from audit_checkpoints').get() as { n: number } | undefined, 5000);
  } finally {
    await t.close();
  }
  const copies: string[] = [];
  return {
    dir,
    dbPath,
    keyPath: join(dir, 'audit-signing.key'),
    filePath: join(dir, 'audit-checkpoints.jsonl'),
    copy() {
      const to = join(root.path, `copy-${copies.length}`);
      copies.push(to);
      cpSync(dir, to, { recursive: true });
      const copyDb = join(to, 'toolgate.db');
      return { dbPath: copyDb, filePath: join(to, 'audit-checkpoints.jsonl'), env: { DATABASE_PATH: copyDb } };
    },
    remove: () => root.remove(),
  };
}

const checkpointsOf = (dbPath: string) => tamper(dbPath, (db) => db.prepare('select seq, hash, signature from audit_checkpoints order by seq').all() as { seq: number; hash: string; signature: string }[]);

// Each case runs the real CLI a few times: generous timeouts for a loaded machine.
describe('signed audit checkpoints', { tags: ['process'], timeout: 90_000 }, () => {
  let log: SignedLog;
  beforeAll(async () => {
    log = await signedLog();
  }, 120_000);
  afterAll(() => log?.remove());

  it('signs a checkpoint every AUDIT_CHECKPOINT_EVERY events and at shutdown, into the database and a private file beside a private key', () => {
    expect(modeOf(log.keyPath)).toBe(0o600);
    expect(modeOf(log.filePath)).toBe(0o600);
    const rows = checkpointsOf(log.dbPath);
    const head = tamper(log.dbPath, (db) => (db.prepare('select max(seq) as seq from audit_events').get() as { seq: number }).seq);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows.at(-1)!.seq).toBe(head); // the shutdown checkpoint covers the last event
    const lines = readFileSync(log.filePath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.seq, l.signature])).toEqual(rows.map((r) => [r.seq, r.signature]));
    const ok = runCliSync(['audit', 'verify'], { DATABASE_PATH: log.dbPath });
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`checkpoints ok: ${rows.length} signed checkpoints; the latest, at event ${head}`);
    const check = runCliSync(['db', 'check'], { DATABASE_PATH: log.dbPath });
    expect(check.status, check.stdout).toBe(0);
    expect(check.stdout).toMatch(/checkpoints\s+ok/);
  });

  it('detects the newest events deleted, below the latest checkpoint, in audit verify and db check', () => {
    const c = log.copy();
    const latest = checkpointsOf(c.dbPath).at(-1)!;
    tamper(c.dbPath, (db) => db.prepare('delete from audit_events where seq > ?').run(latest.seq - 3));
    const verify = runCliSync(['audit', 'verify'], c.env);
    expect(verify.status).toBe(1);
    expect(verify.stdout).toContain('audit chain ok'); // the hash chain alone cannot see it
    expect(verify.stdout).toContain(`event ${latest.seq}, covered by a signed checkpoint, is missing`);
    const check = runCliSync(['db', 'check'], c.env);
    expect(check.status).toBe(1);
    expect(check.stdout).toContain(`event ${latest.seq}, covered by a signed checkpoint, is missing`);
  });

  it('detects the chain rewritten from any point with every hash recomputed', () => {
    const latest = checkpointsOf(log.dbPath).at(-1)!;
    for (const from of [1, Math.floor(latest.seq / 2), latest.seq]) {
      const c = log.copy();
      const signedHead = tamper(c.dbPath, (db) => {
        rewriteFrom(db, from);
        return signedHeadOf(db, from);
      });
      const verify = runCliSync(['audit', 'verify'], c.env);
      expect(verify.status, `rewritten from ${from}`).toBe(1);
      expect(verify.stdout).toContain('audit chain ok');
      expect(verify.stdout).toContain(`event ${signedHead} does not match its signed checkpoint`);
    }
  });

  it('detects a checkpoint forged with another key, even when every genuine one was removed', () => {
    const c = log.copy();
    const forged = tamper(c.dbPath, (db) => {
      rewriteFrom(db, 2);
      db.prepare('delete from audit_checkpoints').run();
      const heads = db
        .prepare('select chain, chain_seq as chainSeq, seq, hash from audit_events where seq in (select max(seq) from audit_events group by chain)')
        .all() as ChainHead[];
      const { privateKey } = generateKeyPairSync('ed25519');
      const checkpoint = signCheckpoint({ keyId: 'f'.repeat(16), publicKey: createPublicKey(privateKey), privateKey, createdAt: 0, retiredAt: null }, heads, Date.now(), 'attacker');
      db.prepare('insert into audit_checkpoints (seq, hash, heads, at, instance_id, key_id, signature) values (?, ?, ?, ?, ?, ?, ?)').run(
        checkpoint.seq,
        checkpoint.hash,
        checkpoint.heads,
        checkpoint.at,
        checkpoint.instanceId,
        checkpoint.keyId,
        checkpoint.signature,
      );
      return checkpoint;
    });
    writeFileSync(c.filePath, `${JSON.stringify(forged)}\n`);
    const verify = runCliSync(['audit', 'verify'], c.env);
    expect(verify.status).toBe(1);
    expect(verify.stdout).toContain(`checkpoint at event ${forged.seq} has no valid signature`);
  });

  it('detects checkpoint rows deleted from the database through the checkpoint file', () => {
    const c = log.copy();
    const rows = checkpointsOf(c.dbPath);
    const keep = rows.at(-3)!;
    // Delete the newest events and the checkpoints that covered them: the database alone looks whole.
    tamper(c.dbPath, (db) => {
      db.prepare('delete from audit_checkpoints where seq > ?').run(keep.seq);
      db.prepare('delete from audit_events where seq > ?').run(keep.seq);
    });
    const verify = runCliSync(['audit', 'verify'], c.env);
    expect(verify.status).toBe(1);
    expect(verify.stdout).toContain(`the log ends at event ${keep.seq}, but`);
    expect(verify.stdout).toContain(`has a checkpoint signed at event ${rows.at(-1)!.seq} that the database lacks`);

    const d = log.copy();
    tamper(d.dbPath, (db) => db.prepare('delete from audit_checkpoints').run());
    const rowsGone = runCliSync(['audit', 'verify'], d.env);
    expect(rowsGone.status).toBe(1);
    expect(rowsGone.stdout).toContain('but not in the database: checkpoint rows were deleted');
  });

  it('puts back, at the next start, a checkpoint that a crash kept out of the file', async () => {
    const c = log.copy();
    const lines = readFileSync(c.filePath, 'utf8').trim().split('\n');
    writeFileSync(c.filePath, `${lines.slice(0, -1).join('\n')}\n`); // killed between the insert and the append
    const torn = runCliSync(['audit', 'verify'], c.env);
    expect(torn.status).toBe(1);
    expect(torn.stdout).toContain('is in the database but not in');
    const store = SqliteStore.open(c.dbPath, { migrate: false });
    try {
      const key = KeyRing.openOrCreate(join(dirname(c.dbPath), 'audit-signing.key'));
      await Checkpointer.open({ store, key, clock: { now: () => Date.now() }, instanceId: 'restart', every: 5, logger: silentLogger, filePath: c.filePath });
    } finally {
      await store.close();
    }
    expect(readFileSync(c.filePath, 'utf8').trim().split('\n')).toEqual(lines);
    expect(runCliSync(['audit', 'verify'], c.env).status).toBe(0);
  });

  it('does not detect events truncated after the latest checkpoint (the documented limit)', async () => {
    const c = log.copy();
    const store = SqliteStore.open(c.dbPath, { migrate: false });
    const audit = createAuditLog({ clock: { now: () => Date.now() }, instanceId: 'test' });
    await store.withTransaction(async (tx) => {
      for (let i = 0; i < 3; i++) await audit.append(tx, { actor: 'someone', action: 'test.event' });
    });
    const head = (await store.audit.lastAudit())!.seq;
    await store.close();
    const before = runCliSync(['audit', 'verify'], c.env);
    expect(before.status).toBe(0);
    expect(before.stdout).toContain('3 newer events not yet covered');
    tamper(c.dbPath, (db) => db.prepare('delete from audit_events where seq > ?').run(head - 3));
    const after = runCliSync(['audit', 'verify'], c.env);
    expect(after.status).toBe(0);
  });

  it('keeps verifying after retention prunes up to a checkpoint, and catches a pruning forged past the newest checkpoint', async () => {
    const c = log.copy();
    const latest = checkpointsOf(c.dbPath).at(-1)!;
    const store = SqliteStore.open(c.dbPath, { migrate: false });
    const later = Date.now() + 86_400_000;
    const audit = createAuditLog({ clock: { now: () => later }, instanceId: 'test' });
    await store.withTransaction(async (tx) => {
      for (let i = 0; i < 3; i++) await audit.append(tx, { actor: 'someone', action: 'test.event' });
    });
    // Everything up to the newest checkpoint is older than the cutoff; pruning stops there.
    const pruned = await pruneAudit(store, later - 1, later);
    expect(pruned).toBe(latest.seq);
    await store.close();
    expect(checkpointsOf(c.dbPath).map((r) => r.seq)).toEqual([latest.seq]);
    const verify = runCliSync(['audit', 'verify'], c.env);
    expect(verify.status, verify.stdout).toBe(0);
    expect(verify.stdout).toContain(`pruned through event ${latest.seq}`);

    // An attacker "prunes" one event past the checkpoint by hand, anchor and all.
    tamper(c.dbPath, (db) => {
      const next = db.prepare('select chain, chain_seq as chainSeq, seq, hash from audit_events where seq = ?').get(latest.seq + 1) as ChainHead;
      db.prepare('delete from audit_events where seq <= ?').run(next.seq);
      const anchors = JSON.parse((db.prepare("select value from meta where key = 'audit_anchors'").get() as { value: string }).value) as ChainHead[];
      db.prepare("update meta set value = ? where key = 'audit_anchors'").run(JSON.stringify([...anchors, next]));
    });
    const forged = runCliSync(['audit', 'verify'], c.env);
    expect(forged.status).toBe(1);
    expect(forged.stdout).toContain('past the newest checkpoint');
  });
});
