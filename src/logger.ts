import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines for machines; pretty output when a person watches the terminal. */
export function createLogger(level: string, options: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  if (pretty && !options.destination) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return options.destination ? pino({ level }, options.destination as pino.DestinationStream) : pino({ level });
}

export const silentLogger: Logger = pino({ level: 'silent' });
