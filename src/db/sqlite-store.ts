import { realpathSync } from 'node:fs';
import type { ApprovalReads, InstanceReads } from '../approvals/approval-store.js';
import type { IdentityReads } from '../auth/identity-store.js';
import type { MetaReads, Persistence, Transaction, TransactionOutcome } from '../core/persistence.js';
import type { PolicyReads } from '../policy/policy-store.js';
import { openDatabase, type DatabaseHandle } from './client.js';
import { SqliteAdmin } from './sqlite-admin.js';
import { SqliteTables } from './sqlite-tables.js';
import { SqliteNotifyTables } from './sqlite-notify-tables.js';
import type { NotifyReads } from '../notify/notify-store.js';

/**
 * The persistence port on one SQLite file (better-sqlite3, WAL), with today's guarantees: each
 * transaction is one `BEGIN IMMEDIATE … COMMIT`, which takes the file's write lock up front, so a
 * read-then-write inside it is atomic across every process sharing the file. That one lock is
 * what makes the port's serialisation points (the pending caps, the decision lock, the async
 * backlog) safe here.
 *
 * Transactions run one at a time, queued in order: their callbacks are async, and two open at once
 * on one connection would be one transaction. The queue is per file and per process, shared by
 * every store this process opens on the file: a second store's BEGIN IMMEDIATE would otherwise
 * wait for the lock synchronously, blocking the very event loop the first one needs to commit.
 *
 * Group commit: the transactions that queue up while one is running are applied together in one
 * `BEGIN IMMEDIATE … COMMIT` (up to `maxBatch` of them), each inside its own SAVEPOINT, one after
 * another, so that one failing rolls back only its own writes. Every caller's promise settles only
 * after the shared COMMIT: nobody is answered for work that is not yet durable. Each callback still
 * runs alone and sees the writes of those before it in the batch, exactly as if they had committed
 * first, so the conditional updates, the caps and the audit chain behave as with one transaction
 * each; what the batch saves is a BEGIN, a COMMIT and the WAL pages each commit would rewrite.
 * Reads outside a transaction see committed rows only, never the half-done writes of a
 * transaction waiting for its callback: while one is open they go to a second, read-only
 * connection. While none is, they use the writing connection, whose page cache is warm (a read on
 * the other connection after a commit costs a few microseconds more). The audit log is always
 * read on the second connection: its walks span many statements.
 */
export class SqliteStore implements Persistence {
  readonly kind = 'sqlite';
  readonly audit: SqliteTables;
  /** Backup, integrity check and WAL checkpoint of this file. */
  readonly admin: SqliteAdmin;
  private readonly tx: Transaction;
  private readonly writing: SqliteTables;
  private readonly reading: SqliteTables;
  private readonly notifyWriting: SqliteNotifyTables;
  private readonly notifyReading: SqliteNotifyTables;
  private readonly begin;
  private readonly commit;
  private readonly rollback;
  private readonly queue: FileQueue;
  private readonly savepoint;
  private readonly release;
  private readonly rollbackToSavepoint;
  private readonly maxBatch: number;
  /** Transactions asked for and not yet started, in order; a batch takes them from the front. */
  private waiting: Queued[] = [];
  /** Logical transactions committed and the COMMITs that carried them (the benchmark reports the ratio). */
  readonly counters = { transactions: 0, commits: 0 };
  /** A batch of this store's is queued on the file or running: new transactions join `waiting`. */
  private batchScheduled = false;
  /** What the logical transaction running now asked to be told once it has ended (onSettled). */
  private settling: ((outcome: TransactionOutcome) => void)[] = [];
  private closed = false;

  private constructor(
    private readonly writer: DatabaseHandle,
    private readonly reader: DatabaseHandle,
    options: SqliteStoreOptions,
  ) {
    const writing = (this.writing = new SqliteTables(writer.db));
    this.notifyWriting = new SqliteNotifyTables(writer.db);
    this.notifyReading = new SqliteNotifyTables(reader.db);
    this.tx = {
      approvals: writing,
      instances: writing,
      identity: writing,
      policy: writing,
      audit: writing,
      meta: writing,
      limits: writing,
      notify: this.notifyWriting,
      onSettled: (fn) => void this.settling.push(fn),
    };
    this.reading = this.audit = new SqliteTables(reader.db);
    this.begin = writer.sqlite.prepare('BEGIN IMMEDIATE');
    this.commit = writer.sqlite.prepare('COMMIT');
    this.rollback = writer.sqlite.prepare('ROLLBACK');
    this.savepoint = writer.sqlite.prepare('SAVEPOINT tx');
    this.release = writer.sqlite.prepare('RELEASE tx');
    this.rollbackToSavepoint = writer.sqlite.prepare('ROLLBACK TO tx');
    this.maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH);
    this.admin = new SqliteAdmin(writer);
    this.queue = FileQueue.of(writer.path);
  }

  /** Opens (creating and migrating unless told not to) the SQLite file at `path`. */
  static open(path: string, options: { migrate?: boolean } & SqliteStoreOptions = {}): SqliteStore {
    if (path === ':memory:') throw new Error('SqliteStore needs a file: its reading connection must see what the writing one committed');
    const writer = openDatabase(path, { migrate: options.migrate ?? true });
    try {
      const reader = openDatabase(path, { migrate: false });
      reader.sqlite.pragma('query_only = ON');
      return new SqliteStore(writer, reader, options);
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

  get notify(): NotifyReads {
    return this.writer.sqlite.inTransaction ? this.notifyReading : this.notifyWriting;
  }

  /** The file's path. */
  get path(): string {
    return this.writer.path;
  }

  /** Where the data is, for messages: the file's path. */
  get location(): string {
    return this.writer.path;
  }

  withTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        void this.queue.run(() => this.runBatch());
      }
    });
  }

  /**
   * One write transaction for every logical transaction waiting now or arriving while it runs, up
   * to `maxBatch`: the first of a batch runs bare (if it fails, the whole transaction is rolled
   * back and the next one begins anew), each after it under a SAVEPOINT; then one COMMIT, and
   * only then is every caller answered. A transaction that failed is answered at once: nothing of
   * it remains.
   */
  private async runBatch(): Promise<void> {
    let carried: { queued: Queued; value: unknown; settled: ((outcome: TransactionOutcome) => void)[] }[] = [];
    let open = false;
    const tell = (callbacks: ((outcome: TransactionOutcome) => void)[], outcome: TransactionOutcome) => {
      for (const fn of callbacks) fn(outcome);
    };
    for (let taken = 0; this.waiting.length > 0 && taken < this.maxBatch; taken++) {
      const queued = this.waiting.shift()!;
      if (!open) {
        try {
          this.begin.run();
          open = true;
        } catch (err) {
          queued.reject(err);
          continue;
        }
      }
      const guarded = carried.length > 0;
      if (guarded) this.savepoint.run();
      this.settling = [];
      try {
        const value = await queued.fn(this.tx);
        if (guarded) this.release.run();
        carried.push({ queued, value, settled: this.settling });
      } catch (err) {
        // Told before its caller hears: the next transaction must not build on what it wrote.
        tell(this.settling, 'rolled-back');
        queued.reject(err);
        if (!this.writer.sqlite.inTransaction) {
          // SQLite ended the transaction itself (SQLITE_FULL, an I/O error): those before are lost too.
          for (const c of carried) tell(c.settled, 'rolled-back');
          for (const c of carried) c.queued.reject(err);
          carried = [];
          open = false;
        } else if (guarded) {
          this.rollbackToSavepoint.run();
          this.release.run();
        } else {
          this.rollback.run();
          open = false;
        }
      }
    }
    if (open) {
      try {
        this.commit.run();
        this.counters.commits++;
        this.counters.transactions += carried.length;
      } catch (err) {
        if (this.writer.sqlite.inTransaction) this.rollback.run();
        for (const c of carried) tell(c.settled, 'rolled-back');
        for (const c of carried) c.queued.reject(err);
        carried = [];
      }
    }
    for (const c of carried) tell(c.settled, 'committed');
    for (const c of carried) c.queued.resolve(c.value);
    this.afterBatch();
  }

  private afterBatch() {
    if (this.waiting.length > 0 && !this.closed) void this.queue.run(() => this.runBatch());
    else {
      this.batchScheduled = false;
      for (const queued of this.waiting.splice(0)) queued.reject(new Error('the store is closed'));
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

/** How many logical transactions one COMMIT may carry at most (SQLITE_GROUP_COMMIT_MAX). */
export const DEFAULT_MAX_BATCH = 64;

export interface SqliteStoreOptions {
  /** Logical transactions per `BEGIN IMMEDIATE … COMMIT` at most; 1 turns group commit off. */
  maxBatch?: number;
}

interface Queued {
  fn: (tx: Transaction) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
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
