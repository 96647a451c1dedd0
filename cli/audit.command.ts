import type { Command } from 'commander';
import { verifyAuditChain } from '../src/audit/audit.service.js';
import { withLocalStore } from './local.js';

export function auditCommand(program: Command) {
  const audit = program.command('audit').description('the audit log (acts on DATABASE_PATH directly)');
  audit
    .command('verify')
    .description('recompute the SHA-256 hash chain and report the first broken link')
    .action(() => {
      const result = withLocalStore((store) => verifyAuditChain(store));
      if (result.ok) {
        process.stdout.write(`audit chain ok: ${result.checked} events verified from anchor ${result.anchor.seq}\n`);
        return;
      }
      process.stdout.write(`audit chain BROKEN at event ${result.brokenAt!.seq}: ${result.brokenAt!.reason} (${result.checked} events verified before it)\n`);
      process.exitCode = 1;
    });
}
