// @module-tag process
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startTestGateway, type TestGateway } from './helpers.js';

describe('toolgate policy explain', () => {
  let t: TestGateway;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await startTestGateway();
    const config = join(t.dir, 'rules.json');
    writeFileSync(
      config,
      JSON.stringify({
        upstreams: [],
        policy: [
          { tool: 'write_file', when: { path: { prefix: '/etc/' } }, sensitivity: 'CRITICAL' },
          { tool: 'write_file', when: { path: { glob: '*.key' } }, deny: true },
          { tool: 'list_files', when: { path: { equals: '/' } }, sensitivity: 'HIGH', mode: 'shadow' },
        ],
      }),
    );
    env = { DATABASE_PATH: t.dbPath, TOOLGATE_CONFIG: config };
  });
  afterAll(() => t.close());

  it('says which rule decides and why', async () => {
    const raised = await runCli(['policy', 'explain', 'write_file', '--args', '{"path":"/srv/../etc/hosts"}', '--as', 'dev_user'], env);
    expect(raised.status, raised.stderr).toBe(0);
    expect(raised.stdout).toContain('tool        write_file: HIGH from the catalog');
    expect(raised.stdout).toContain('rule        policy[0] (tool "write_file") matches: HIGH → CRITICAL');
    expect(raised.stdout).toContain('decision    CRITICAL: waits for 1 approval(s)');
    const denied = await runCli(['policy', 'explain', 'write_file', '--args', '{"path":"/etc/ssh/host.key"}', '--as', 'dev_user'], env);
    expect(denied.stdout).toContain('decision    denied (policy_denied) by policy[1]');
    const shadow = await runCli(['policy', 'explain', 'list_files', '--args', '{"path":"/"}', '--as', 'guest_user'], env);
    expect(shadow.stdout).toContain('shadow      policy[2] (tool "list_files") matches: would make it HIGH; logged only');
    expect(shadow.stdout).toContain('decision    LOW: runs at once');
    const refused = await runCli(['policy', 'explain', 'git_commit', '--as', 'dev_user'], env);
    expect(refused.stdout).toContain('refused (permission_denied): role "developer" of dev_user may not call git_commit');
  });
});
