import type { Command } from 'commander';
import { needsApproval } from '../src/approvals/approval.js';
import { requiredApprovalsFor } from '../src/approvals/machine.js';
import { loadConfig } from '../src/config.js';
import { PolicyService } from '../src/policy/policy.service.js';
import { loadToolgateFile } from '../src/tools/gateway-file.js';
import { safeText } from './format.js';
import { withLocalStore } from './local.js';

/** `toolgate policy explain`: which rule decides a call, and why, from the database and toolgate.json. */
export function policyCommand(program: Command) {
  const policy = program.command('policy').description('the tool policy (DATABASE_PATH and TOOLGATE_CONFIG, read directly)');
  policy
    .command('explain <tool>')
    .description('which rule decides a call of <tool> with these arguments by this user, and why')
    .option('--args <json>', 'the call\'s arguments as a JSON object', '{}')
    .requiredOption('--as <user>', 'the user making the call')
    .action(async (tool: string, opts: { args: string; as: string }) => {
      let args: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(opts.args);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
        args = parsed as Record<string, unknown>;
      } catch (err) {
        throw new Error(`--args must be a JSON object: ${(err as Error).message}`);
      }
      const config = loadConfig(process.env);
      const { file, source } = loadToolgateFile(config.toolgateConfigPath);
      const lines = await withLocalStore(async (store) => {
        const service = await PolicyService.load(store.policy, { overrides: file.policy, rolesBySensitivity: file.defaults.rolesBySensitivity ?? {}, defaultSensitivity: file.defaults.sensitivity });
        const user = await store.identity.user(opts.as);
        if (!user) throw new Error(`no user "${opts.as}"`);
        // Upstreams are not started here: a tool the policy does not name gets the default, not its annotations.
        const resolved = service.resolve(tool);
        const out = [
          `policy      version ${service.version} (catalog in ${config.databasePath}, toolgate.json: ${source})`,
          `tool        ${tool}: ${resolved.sensitivity} from the ${resolved.source}${resolved.source === 'default' ? ' (an upstream trusted for its annotations may say otherwise)' : ''}`,
          `roles       ${[...resolved.roles].join(', ') || 'none'}`,
        ];
        if (!user.active) return [...out, `decision    refused: ${user.id} is disabled`];
        if (config.rbacEnabled && !resolved.roles.has(user.role)) return [...out, `decision    refused (permission_denied): role "${user.role}" of ${user.id} may not call ${tool}`];
        out.push(`caller      ${user.id} (${user.role}) may call it`);
        const judged = service.judgeArguments(tool, args, resolved.sensitivity);
        for (const m of judged.shadow) out.push(`shadow      ${m.rule} (tool "${m.tool}") matches: would ${m.effect === 'deny' ? 'deny it' : `make it ${m.effect}`}; logged only`);
        if (judged.raisedBy) out.push(`rule        ${judged.raisedBy.rule} (tool "${judged.raisedBy.tool}") matches: ${resolved.sensitivity} → ${judged.sensitivity}`);
        if (judged.denied) return [...out, `decision    denied (policy_denied) by ${judged.denied.rule} (tool "${judged.denied.tool}"): deny wins over any approval`];
        const s = judged.sensitivity;
        if (!config.approvalWorkflowEnabled || !needsApproval(s)) return [...out, `decision    ${s}: runs at once${needsApproval(s) ? ' (the approval workflow is off)' : ''}`];
        return [...out, `decision    ${s}: waits for ${requiredApprovalsFor(s, config.quorum)} approval(s), unless a standing approval covers it`];
      });
      process.stdout.write(`${lines.map((l) => safeText(l)).join('\n')}\n`);
    });
}
