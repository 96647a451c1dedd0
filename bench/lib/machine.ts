import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  node: string;
  kernel: string;
  openFilesLimit: { soft: number; hard: number };
  somaxconn: number;
  loadAverageAtStart: number[];
}

function openFilesLimit(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').replace('Max open files', '').trim().split(/\s+/);
    return { soft: Number(soft), hard: Number(hard) };
  } catch {
    return { soft: NaN, hard: NaN };
  }
}

function readNumber(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return NaN;
  }
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpuModel: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    kernel: release(),
    openFilesLimit: openFilesLimit(),
    somaxconn: readNumber('/proc/sys/net/core/somaxconn'),
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}
