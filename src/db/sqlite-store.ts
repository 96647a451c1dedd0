import { realpathSync } from 'node:fs';
import type { ApprovalReads, InstanceReads } from '../approvals/approval-store.js';
import type { IdentityReads } from '../auth/identity-store.js';
import type { MetaReads, Persistence, Transaction } from '../core/persistence.js';
import type { PolicyReads } from '../policy/policy-store.js';
import { openDatabase, type DatabaseHandle } from './client.js';
import { SqliteAdmin } from './sqlite-admin.js';
import { SqliteTables } from './sqlite-tables.js';

/**
 * The persistence port on one SQLite file (better-sqlite3, WAL), with today's guarantees: each
 * transaction is one `BEGIN IMMEDIATE … COMMIT`, which takes the file's write lock up front, so a
 * read-then-write inside it is atomic across every process sharing the file. That one lock is
 * what makes the port's three serialisation points (the pending caps, the decision lock, the
 * audit chain head) safe here.
 *
 * Transactions run one at a time, queued in order: their callbacks are async, and two open at once
 * on one connection would be one transaction. The queue is per file and per process, shared by
 * every store this process opens on the file: a second store's BEGIN IMMEDIATE would otherwise
 * wait for the lock synchronously, blocking the very event loop the first one needs to commit.
 * Reads outside a transaction see committed rows only, never the half-done writes of a
 * transaction waiting for its callback: while one is open they go to a second, read-only
 * connection. While none is, they use the writing connection, whose page cache is warm (a read on
 * the other connection after a commit costs a few microseconds more). The audit log is always
 * read on the second connection: its walks span many statements.
 */
export class SqliteStore implements Persistence {
  readonly audit: SqliteTables;
  /** Backup, integrity check and WAL checkpoint of this file. */
  readonly admin: SqliteAdmin;
  private readonly tx: Transaction;
  private readonly writing: SqliteTables;
  private readonly reading: SqliteTables;
  private readonly begin;
  private readonly commit;
  private readonly rollback;
  private readonly queue: FileQueue;
  private closed = false;

  private constructor(
    private readonly writer: DatabaseHandle,
    private readonly reader: DatabaseHandle,
  ) {
    const writing = (this.writing = new SqliteTables(writer.db));
    this.tx = { approvals: writing, instances: writing, identity: writing, policy: writing, audit: writing, meta: writing };
    this.reading = this.audit = new SqliteTables(reader.db);
    this.begin = writer.sqlite.prepare('BEGIN IMMEDIATE');
    this.commit = writer.sqlite.prepare('COMMIT');
    this.rollback = writer.sqlite.prepare('ROLLBACK');
    this.admin = new SqliteAdmin(writer);
    this.queue = FileQueue.of(writer.path);
  }

  /** Opens (creating and migrating unless told not to) the SQLite file at `path`. */
  static open(path: string, options: { migrate?: boolean } = {}): SqliteStore {
    if (path === ':memory:') throw new Error('SqliteStore needs a file: its reading connection must see what the writing one committed');
    const writer = openDatabase(path, { migrate: options.migrate ?? true });
    try {
      const reader = openDatabase(path, { migrate: false });
      reader.sqlite.pragma('query_only = ON');
      return new SqliteStore(writer, reader);
    } catch (err) {
      writer.close();
      throw err;
    }
  }

  /** The tables to read committed rows from now (see the class comment). */
  private get committed(): SqliteTables {
    return this.writer.sqlite.inTransaction ? this.reading : this.writing;
  }

  get approvals(): ApprovalReads {
    return this.committed;
  }

  get instances(): InstanceReads {
    return this.committed;
  }

  get identity(): IdentityReads {
    return this.committed;
  }

  get policy(): PolicyReads {
    return this.committed;
  }

  get meta(): MetaReads {
    return this.committed;
  }

  /** The file's path. */
  get path(): string {
    return this.writer.path;
  }

  withTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.queue.run(() => this.run(fn));
  }

  private async run<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.begin.run();
    try {
      const result = await fn(this.tx);
      this.commit.run();
      return result;
    } catch (err) {
      if (this.writer.sqlite.inTransaction) this.rollback.run();
      throw err;
    }
  }

  async ping(): Promise<void> {
    await this.reading.ping();
  }

  /** Closes both connections; a transaction still queued fails. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.release();
    this.reader.close();
    this.writer.close();
  }
}

/** The transactions of one process on one file, one after another in the order they were asked for. */
class FileQueue {
  private static readonly byFile = new Map<string, FileQueue>();
  /** Settles when the last transaction queued has. */
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private users = 0;

  private constructor(private readonly file: string) {}

  static of(path: string): FileQueue {
    const file = realpathSync(path);
    let queue = FileQueue.byFile.get(file);
    if (!queue) FileQueue.byFile.set(file, (queue = new FileQueue(file)));
    queue.users++;
    return queue;
  }

  release() {
    if (--this.users === 0) FileQueue.byFile.delete(this.file);
  }

  run<T>(transaction: () => Promise<T>): Promise<T> {
    // An idle file starts at once; otherwise after every transaction queued before this one.
    const result = this.queued === 0 ? transaction() : this.tail.then(transaction, transaction);
    this.queued++;
    this.tail = result.then(
      () => this.queued--,
      () => this.queued--,
    );
    return result;
  }
}
