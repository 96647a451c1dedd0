/**
 * A second process that decides requests on the same SQLite file through the approval core
 * (`createDecider`, as the cross-process tests do), as another gateway or the CLI would. The gateway under test only learns of these decisions through
 * its polling fallback. IPC: `{type:"decide", id, delayMs}` → after the delay, approve →
 * `{type:"decided", id, committedAt}` where committedAt is process.hrtime.bigint() (CLOCK_MONOTONIC,
 * comparable across processes on one machine) taken right after the transaction committed.
 */
import { randomUUID } from 'node:crypto';
import { createDecider } from '../../src/decider.js';

const databasePath = process.env.DATABASE_PATH;
if (!databasePath) throw new Error('DATABASE_PATH is required');
const decider = await createDecider(databasePath, { instanceId: `bench-decider-${randomUUID()}` });
const admin = { id: 'admin_user', role: 'admin', anonymous: false };

process.on('message', (message: { type?: string; id?: string; delayMs?: number }) => {
  if (message?.type === 'stop') {
    void decider.close().then(() => process.exit(0));
    return;
  }
  if (message?.type !== 'decide' || !message.id) return;
  const id = message.id;
  setTimeout(async () => {
    try {
      await decider.decide(admin, id, 'approve', 'approved by the bench decider');
      process.send?.({ type: 'decided', id, committedAt: String(process.hrtime.bigint()) });
    } catch (err) {
      process.send?.({ type: 'decided', id, error: (err as Error).message });
    }
  }, message.delayMs ?? 0);
});
process.on('disconnect', () => {
  void decider.close().then(() => process.exit(0));
});
process.send?.({ type: 'ready', url: '', tokens: { guest: '', dev: '', admin: '' } });
