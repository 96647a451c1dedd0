import type { Sql } from 'postgres';
import type { ChangeHint, ChangeHints } from '../approvals/change-feed.js';
import type { Logger } from '../logger.js';

/** The channel every gateway on the database listens on. */
export const CHANGES_CHANNEL = 'toolgate_changes';

/** `[instanceId, from, through]`: where one instance's newly committed events are. */
function parseHint(payload: string): ChangeHint | undefined {
  try {
    const [instanceId, from, through] = JSON.parse(payload) as unknown[];
    if (typeof instanceId !== 'string' || !Number.isSafeInteger(from) || !Number.isSafeInteger(through)) return undefined;
    return { instanceId, from: from as number, through: through as number };
  } catch {
    return undefined;
  }
}

/**
 * Wake-up hints over PostgreSQL's LISTEN/NOTIFY. A hint is sent on the pool right after its
 * transaction committed (a NOTIFY inside the transaction would queue behind a global lock at
 * commit); hints arriving while one is being sent go out together as the next one, so a burst of
 * commits costs a few NOTIFYs, not one each. postgres.js listens on a connection of its own and
 * listens again by itself after that connection drops, calling `onConnected` each time, which is
 * when the caller reads what it may have missed. Anyone who can NOTIFY on the database can send a
 * hint: it only makes the others read the audit log sooner.
 */
export class PgChangeHints implements ChangeHints {
  private pending: ChangeHint | null = null;
  private sending = false;

  constructor(
    private readonly sql: Sql,
    private readonly logger: Logger,
  ) {}

  announce(hint: ChangeHint): void {
    const p = this.pending;
    this.pending = p ? { instanceId: hint.instanceId, from: Math.min(p.from, hint.from), through: Math.max(p.through, hint.through) } : hint;
    if (!this.sending) void this.send();
  }

  private async send() {
    this.sending = true;
    try {
      for (let hint = this.pending; hint; hint = this.pending) {
        this.pending = null;
        try {
          await this.sql.notify(CHANGES_CHANNEL, JSON.stringify([hint.instanceId, hint.from, hint.through]));
        } catch (err) {
          // The others' polling reads the events anyway, a little later.
          this.logger.warn({ err: (err as Error).message }, 'could not send a change hint (NOTIFY)');
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async listen(handlers: { onHint(hint: ChangeHint): void; onConnected(): void }): Promise<() => Promise<void>> {
    const subscription = await this.sql.listen(
      CHANGES_CHANNEL,
      (payload) => {
        const hint = parseHint(payload);
        if (hint) handlers.onHint(hint);
      },
      () => handlers.onConnected(),
    );
    return () => subscription.unlisten();
  }
}
