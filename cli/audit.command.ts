import type { Command } from 'commander';
import { verifyAuditChain } from '../src/audit/audit.service.js';
import { verifyCheckpoints, type CheckpointReport } from '../src/audit/checkpoints.js';
import { KeyRing } from '../src/signing/key-ring.js';
import { loadConfig } from '../src/config.js';
import type { Persistence } from '../src/core/persistence.js';
import { safeText } from './format.js';
import { withLocalStore } from './local.js';

export interface EvidenceReport {
  chain: string;
  checkpoints: string[];
  /** Empty when the chain verifies and matches its signed checkpoints. */
  problems: string[];
}

/**
 * The hash chain recomputed from its anchor, then held to the signed checkpoints (signatures
 * under SIGNING_KEY_FILE, the database and AUDIT_CHECKPOINT_FILE agreeing, the event at each
 * checkpoint present with the signed hash).
 */
export async function auditEvidence(store: Persistence, env = process.env): Promise<EvidenceReport> {
  const config = loadConfig(env);
  const problems: string[] = [];
  const result = await verifyAuditChain(store);
  const pruned = result.prunedThrough > 0 ? `, from the anchors retention left (pruned through event ${result.prunedThrough})` : '';
  const chain = result.ok
    ? `ok: ${result.checked} events verified in ${result.chains} chain${result.chains === 1 ? '' : 's'}${pruned}`
    : `BROKEN at event ${result.brokenAt!.seq}: ${result.brokenAt!.reason} (${result.checked} events verified before it)`;
  if (!result.ok) problems.push(`audit chain broken at event ${result.brokenAt!.seq}`);

  const checkpoints: string[] = [];
  let report: CheckpointReport;
  try {
    report = await verifyCheckpoints(store, {
      key: KeyRing.read(config.signingKeyPath),
      keyPath: config.signingKeyPath,
      filePath: config.auditCheckpointFile,
    });
  } catch (err) {
    if (!/no such table: audit_checkpoints/.test((err as Error).message)) throw err;
    return { chain, checkpoints: ['none: the database predates signed checkpoints (toolgate db migrate adds them)'], problems };
  }
  if (report.ok && report.latest) {
    const l = report.latest;
    checkpoints.push(
      `ok: ${report.checkpoints} signed checkpoints; the latest, at event ${l.seq} (${new Date(l.at).toISOString()}, instance ${l.instanceId}), matches; ${report.uncovered} newer events not yet covered`,
    );
  } else if (report.ok) checkpoints.push(`ok: none yet; ${report.uncovered} events not covered`);
  else {
    checkpoints.push(`PROBLEM: ${report.problems.length} finding(s):`);
    for (const p of report.problems) checkpoints.push(`  - ${p}`);
    problems.push('audit checkpoints do not match the log');
  }
  for (const n of report.notes) checkpoints.push(`  note: ${n}`);
  // Instance ids and file paths come from the database and the environment: shown escaped.
  return { chain, checkpoints: checkpoints.map((line) => safeText(line)), problems };
}

export function auditCommand(program: Command) {
  const audit = program.command('audit').description('the audit log (acts on DATABASE_URL or DATABASE_PATH directly)');
  audit
    .command('verify')
    .description("recompute every writer's SHA-256 hash chain and check them against the signed checkpoints; exit 1 on any problem")
    .action(async () => {
      const report = await withLocalStore((store) => auditEvidence(store));
      process.stdout.write(`audit chain ${report.chain}\n`);
      process.stdout.write(`checkpoints ${report.checkpoints.join('\n')}\n`);
      if (report.problems.length > 0) process.exitCode = 1;
    });
}
