import type { Sql } from 'postgres';
import type { ApprovalReads, InstanceReads } from '../approvals/approval-store.js';
import type { IdentityReads } from '../auth/identity-store.js';
import type { MetaReads, Persistence, Transaction, TransactionOutcome } from '../core/persistence.js';
import type { PolicyReads } from '../policy/policy-store.js';
import { PgAdmin } from './pg-admin.js';
import { connect, migratePostgres, pgDrizzle, redactUrl, type PgDb, type PgOptions } from './pg-client.js';
import { PgTables } from './pg-tables.js';
import { PgNotifyTables } from './pg-notify-tables.js';
import type { NotifyReads } from '../notify/notify-store.js';

/** SQLSTATEs after which PostgreSQL asks for the whole transaction to be tried again. */
const RETRYABLE = new Set(['40001' /* serialization_failure */, '40P01' /* deadlock_detected */]);
const MAX_ATTEMPTS = 5;

/**
 * The persistence port on PostgreSQL (postgres.js pool + Drizzle pg-core), for several gateways
 * on one database. Transactions run at READ COMMITTED, each on its own pooled connection, side by
 * side: the port's three serialisation points take their own locks (see PgTables) and every other
 * change is a compare-and-set. A transaction PostgreSQL aborts as a deadlock or serialisation
 * failure is run again from the start, a few times; the port's callbacks only touch the store, so
 * running one again is safe. Reads outside a transaction run on the pool and see committed rows.
 */
export class PgStore implements Persistence {
  readonly kind = 'postgres';
  readonly approvals: ApprovalReads;
  readonly instances: InstanceReads;
  readonly identity: IdentityReads;
  readonly policy: PolicyReads;
  readonly audit: PgTables;
  readonly meta: MetaReads;
  readonly notify: NotifyReads;
  /** Server version and migration state, for `toolgate db check`. */
  readonly admin: PgAdmin;
  private readonly db: PgDb;
  private closed = false;

  private constructor(
    /** The postgres.js pool: for src/db/ only (LISTEN/NOTIFY rides on it); no SQL above src/db/. */
    readonly client: Sql,
    /** The database URL with its password masked. */
    readonly location: string,
  ) {
    this.db = pgDrizzle(client);
    this.admin = new PgAdmin(client);
    const reading = new PgTables(this.db);
    this.approvals = this.instances = this.identity = this.policy = this.audit = this.meta = reading;
    this.notify = new PgNotifyTables(this.db);
  }

  /** Connects to `url`, first applying the migrations under their advisory lock unless told not to. */
  static async open(url: string, options: PgOptions & { migrate?: boolean } = {}): Promise<PgStore> {
    if (options.migrate ?? true) await migratePostgres(url, options);
    const store = new PgStore(connect(url, options), redactUrl(url));
    try {
      await store.ping();
      return store;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  async withTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      // Each attempt is a transaction of its own: told how it ended before the next one starts.
      const settled: ((outcome: TransactionOutcome) => void)[] = [];
      let committing = false;
      try {
        const result = (await this.db.transaction(async (txDb) => {
          const tables = new PgTables(txDb, true);
          const value = await fn({
            approvals: tables,
            instances: tables,
            identity: tables,
            policy: tables,
            audit: tables,
            meta: tables,
            limits: tables,
            notify: new PgNotifyTables(txDb),
            onSettled: (callback) => void settled.push(callback),
          });
          committing = true;
          return value;
        })) as T;
        for (const callback of settled) callback('committed');
        return result;
      } catch (err) {
        // An error once the callback had finished came from COMMIT itself: whether it took is unknown.
        for (const callback of settled) callback(committing && !isRolledBack(err) ? 'unknown' : 'rolled-back');
        if (attempt >= MAX_ATTEMPTS || !RETRYABLE.has(sqlState(err) ?? '')) throw err;
        // A short, random pause, so that the two sides of a deadlock do not meet again at once.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
      }
    }
  }

  async ping(): Promise<void> {
    await this.audit.ping();
  }

  /** Waits up to 5 s for running queries, then closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end({ timeout: 5 });
  }
}

/** Errors PostgreSQL raises at COMMIT after which nothing was committed (serialisation, deadlock, a deferred constraint). */
function isRolledBack(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && (RETRYABLE.has(state) || state.startsWith('23'));
}

/** The SQLSTATE of a PostgreSQL error, also when Drizzle wrapped it. */
export function sqlState(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
