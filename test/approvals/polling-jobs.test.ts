import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PollingJobs, type Liveness, type PollingJob } from '../../src/approvals/polling-jobs.js';
import { silentLogger } from '../../src/logger.js';

/** This instance's registration as the jobs see it; `alive: false` is a peer having declared it dead. */
function liveness() {
  const calls: string[] = [];
  const state = { alive: true, fenced: false, heartbeats: 0 };
  const registry: Liveness = {
    get fenced() {
      return state.fenced;
    },
    register: async () => void calls.push('register'),
    heartbeat: async () => {
      state.heartbeats++;
      calls.push('heartbeat');
      if (!state.alive) state.fenced = true;
      return state.alive;
    },
    startHeartbeat: () => void calls.push('startHeartbeat'),
    stopHeartbeat: () => void calls.push('stopHeartbeat'),
  };
  return { registry, calls, state };
}

describe('the polling jobs', () => {
  let now: number;
  const clock = { now: () => now };
  beforeEach(() => {
    vi.useFakeTimers();
    now = Date.UTC(2026, 10, 23);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function jobs(registry: Liveness, list: PollingJob[], pollingIntervalMs = 1000) {
    return new PollingJobs({ registry, jobs: list, clock, logger: silentLogger, pollingIntervalMs, staleAfterMs: 5000 });
  }

  it('registers, then runs every job in order after the heartbeat, at start and every polling interval', async () => {
    const { registry, calls } = liveness();
    const job = (name: string): PollingJob => ({ name, run: () => void calls.push(name) });
    const runner = jobs(registry, [job('recover'), job('feed'), job('expire')]);
    await runner.start();
    expect(calls).toEqual(['register', 'heartbeat', 'recover', 'feed', 'expire', 'startHeartbeat']);
    calls.length = 0;
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual(['heartbeat', 'recover', 'feed', 'expire']);
    runner.stop();
    calls.length = 0;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toEqual([]);
  });

  it('runs a job with its own interval only once that interval has passed on the clock', async () => {
    const { registry } = liveness();
    let runs = 0;
    const runner = jobs(registry, [{ name: 'retention', everyMs: 5 * 60_000, run: () => runs++ }]);
    await runner.tick();
    expect(runs).toBe(1);
    now += 60_000;
    await runner.tick();
    expect(runs).toBe(1);
    now += 4 * 60_000;
    await runner.tick();
    expect(runs).toBe(2);
    await runner.tick({ everyJob: true });
    expect(runs).toBe(3);
  });

  it('runs nothing once a peer has declared this instance dead, and stops', async () => {
    const { registry, state } = liveness();
    let runs = 0;
    const runner = jobs(registry, [{ name: 'expire', run: () => runs++ }]);
    await runner.start();
    expect(runs).toBe(1);
    state.alive = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(runner.fenced).toBe(true);
    expect(runs).toBe(1);
    await runner.tick();
    expect(runs).toBe(1);
  });

  it('keeps going when one job fails, and stops mid-run when the instance is fenced', async () => {
    const { registry, state } = liveness();
    const ran: string[] = [];
    const runner = jobs(registry, [
      { name: 'broken', run: () => Promise.reject(new Error('database busy')) },
      { name: 'fence', run: () => void (state.fenced = true) },
      { name: 'after', run: () => void ran.push('after') },
    ]);
    await runner.tick();
    expect(ran).toEqual([]);
    state.fenced = false;
    const fine = jobs(registry, [{ name: 'broken', run: () => Promise.reject(new Error('x')) }, { name: 'after', run: () => void ran.push('after') }]);
    await fine.tick();
    expect(ran).toEqual(['after']);
  });

  it('does not judge peers on a run that comes late because this process itself was stalled', async () => {
    const { registry } = liveness();
    const judged: number[] = [];
    const runner = jobs(registry, [{ name: 'recover-dead-instances', judgesPeers: true, run: () => void judged.push(performance.now()) }]);
    await runner.tick();
    vi.advanceTimersByTime(2600); // more than half the stale threshold (5 s) without a run
    await runner.tick();
    expect(judged).toHaveLength(1);
    await runner.tick();
    expect(judged).toHaveLength(2);
  });

  it('never overlaps runs: a tick asked for during a run waits for it and then runs again', async () => {
    const { registry } = liveness();
    const order: string[] = [];
    let release!: () => void;
    let first = true;
    const runner = jobs(registry, [
      {
        name: 'slow',
        run: () => {
          order.push('start');
          if (!first) return;
          first = false;
          return new Promise<void>((resolve) => (release = () => (order.push('end'), resolve())));
        },
      },
    ]);
    const one = runner.tick();
    await vi.advanceTimersByTimeAsync(0);
    const two = runner.tick();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['start']);
    release();
    await Promise.all([one, two]);
    expect(order).toEqual(['start', 'end', 'start']);
  });
});
