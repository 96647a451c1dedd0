import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatches } from '../src/policy/glob.js';
import { parseMatcher, valueMatches } from '../src/approvals/grants.js';

/** The glob matcher of argument rules and standing approvals: no regular expression, no backtracking blow-up. */
describe('globMatches', () => {
  const asRegExp = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.')}$`, 's');

  it('agrees with the equivalent regular expression on any small pattern and value', () => {
    const alphabet = fc.constantFrom('a', 'b', '/', '.', '*', '?');
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 8 }), fc.string({ unit: fc.constantFrom('a', 'b', '/', '.'), maxLength: 12 }), (pattern, value) => {
        expect(globMatches(pattern, value)).toBe(asRegExp(pattern).test(value));
      }),
      { numRuns: 3000 },
    );
  });

  it('answers a pathological pattern against a long value in linear-ish time', () => {
    const pattern = `${'*a'.repeat(30)}*b`;
    const value = 'a'.repeat(20_000);
    const started = performance.now();
    expect(globMatches(pattern, value)).toBe(false);
    // A backtracking regular expression takes minutes here; pattern × value steps are 1.2M at most.
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('reads grant patterns as equality, path prefix or glob, and never lets ".." walk out of a prefix', () => {
    expect(parseMatcher('/srv/app/**')).toEqual({ kind: 'prefix', value: '/srv/app/' });
    expect(parseMatcher('/tmp/*.log')).toEqual({ kind: 'glob', value: '/tmp/*.log' });
    expect(parseMatcher('exact')).toEqual({ kind: 'eq', value: 'exact' });
    const prefix = parseMatcher('/srv/app/**');
    expect(valueMatches(prefix, '/srv/app/a/b')).toBe(true);
    expect(valueMatches(prefix, '/srv/app/../secrets')).toBe(false);
    expect(valueMatches(prefix, '/srv/application')).toBe(false);
  });
});
