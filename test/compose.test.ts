import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.js';

interface Service {
  profiles?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
  ports?: string[];
}
const compose = parse(readFileSync(new URL('../compose.yaml', import.meta.url), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  configs: Record<string, { content: string }>;
};
const inProfile = (profile: string) => Object.entries(compose.services).filter(([, s]) => s.profiles?.includes(profile));
/** `${NAME:?message}` as Compose fills it in with NAME set to `value`, and `${NAME:-default}` with NAME unset. */
const interpolate = (text: string, value = 'secret') =>
  text.replace(/\$\{[A-Z_]+:([?-])([^}]*)\}/g, (_, kind: string, rest: string) => (kind === '-' ? rest : value));

describe('compose.yaml, cluster profile', () => {
  const cluster = Object.fromEntries(inProfile('cluster'));
  const gateways = Object.entries(cluster).filter(([, s]) => s.environment?.DATABASE_URL);
  const caddyfile = compose.configs.caddyfile!.content;

  it('runs PostgreSQL, two gateways on one database and a proxy in front of both', () => {
    expect(Object.keys(cluster).sort()).toEqual(['postgres', 'proxy', 'toolgate-a', 'toolgate-b']);
    expect(gateways.map(([name]) => name)).toEqual(['toolgate-a', 'toolgate-b']);
    const urls = new Set(gateways.map(([, s]) => interpolate(s.environment!.DATABASE_URL!)));
    expect([...urls]).toEqual(['postgres://toolgate:secret@postgres:5432/toolgate']);
    for (const [, s] of gateways) expect(s.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
    const upstreams = /reverse_proxy ([^{]+)\{/.exec(caddyfile)![1]!.trim().split(/\s+/);
    expect(upstreams).toEqual(gateways.map(([name, s]) => `${name}:${s.environment!.PORT}`));
    expect(cluster.proxy!.ports).toEqual(['127.0.0.1:8030:80']);
  });

  it('gives each gateway settings the gateway accepts, one signing key and checkpoint file for both, and a proxy that closes idle connections first', () => {
    for (const [name, s] of gateways) {
      const env = Object.fromEntries(Object.entries(s.environment!).map(([k, v]) => [k, interpolate(String(v))]));
      const config = loadConfig(env);
      expect(config.trustProxy, name).toBe(1);
      const proxyKeepAliveSeconds = Number(/keepalive (\d+)s/.exec(caddyfile)![1]);
      expect(config.httpKeepAliveTimeoutMs, name).toBeGreaterThan(proxyKeepAliveSeconds * 1000);
      expect(config.signingKeyPath).toBe('/data/audit-signing.key');
    }
    const [a, b] = gateways.map(([, s]) => s.volumes);
    expect(a).toEqual(['cluster-data:/data']);
    expect(b).toEqual(a);
  });

  it('declares every named volume a service mounts', () => {
    const named = Object.values(compose.services).flatMap((s) => (s.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => !v.startsWith('.') && !v.startsWith('/')));
    for (const volume of named) expect(Object.keys(compose.volumes), volume).toContain(volume);
  });
});
