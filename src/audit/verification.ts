import type { Persistence } from '../core/persistence.js';
import type { AuditVerification } from './audit.schemas.js';
import { verifyAuditChain } from './audit.service.js';
import { verifyCheckpoints, type CheckpointKeys } from './checkpoints.js';

/**
 * The audit log's evidence, as `toolgate audit verify` checks it: every writer's hash chain
 * recomputed from its anchor, then held to the signed checkpoints (database and file agreeing, signatures valid).
 */
export async function verifyAuditLog(
  store: Persistence,
  options: { key: CheckpointKeys | undefined; keyPath: string; filePath: string; now: number },
): Promise<AuditVerification> {
  const chain = await verifyAuditChain(store);
  const checkpoints = await verifyCheckpoints(store, { key: options.key, keyPath: options.keyPath, filePath: options.filePath });
  return {
    ok: chain.ok && checkpoints.ok,
    chain: { ok: chain.ok, checked: chain.checked, chains: chain.chains, anchorSeq: chain.prunedThrough, brokenAt: chain.brokenAt ?? null },
    checkpoints: {
      ok: checkpoints.ok,
      count: checkpoints.checkpoints,
      latestSeq: checkpoints.latest?.seq ?? null,
      uncovered: checkpoints.uncovered,
      problems: checkpoints.problems,
      notes: checkpoints.notes,
    },
    verifiedAt: new Date(options.now).toISOString(),
  };
}
