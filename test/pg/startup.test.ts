import { describe, expect, it } from 'vitest';
import { api, startTestGateway } from '../helpers.js';
import { freshDatabase, postgresAvailable, SKIP_REASON } from '../kit/postgres.js';

describe.skipIf(!postgresAvailable())(`gateways starting on a new PostgreSQL database${postgresAvailable() ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  it('starts two gateways at once on an empty database: both migrate and serve, one seeds and prints the tokens, which work on both', { timeout: 60_000 }, async () => {
    const url = await freshDatabase({ empty: true });
    const started = await Promise.allSettled([startTestGateway({ dbPath: url }), startTestGateway({ dbPath: url })]);
    try {
      expect(started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason))).toEqual([]);
      const [a, b] = started.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof startTestGateway>>>).value);
      const seeders = [a!, b!].filter((t) => t.tokens.admin !== '');
      expect(seeders).toHaveLength(1);
      const { admin } = seeders[0]!.tokens;
      for (const t of [a!, b!]) {
        const res = await api(t.app, 'GET', '/api/approvals/pending', { token: admin });
        expect(res.status).toBe(200);
      }
      expect(await a!.gateway.store.identity.countUsers()).toBe(3);
    } finally {
      for (const s of started) if (s.status === 'fulfilled') await s.value.close();
    }
  });
});
