import type { z } from 'zod';
import { AppError, errorCatalogue, type ErrorCode } from '../core/errors.js';
import type { errorFrame } from './protocol.js';

/**
 * The code a WebSocket `error` frame carries for a catalogue code: the code itself, except where
 * the catalogue names a different wire code (`permission_denied` is sent as `forbidden`, as the
 * WebSocket protocol has always documented it).
 */
export function wsErrorCode(code: ErrorCode): string {
  const entry = errorCatalogue[code];
  return 'ws' in entry ? entry.ws : code;
}

/** The WebSocket mapper of the error catalogue: `{"type":"error","ref","code","message"}`. */
export function wsError(ref: string | number | undefined, code: ErrorCode, message: string): z.infer<typeof errorFrame> {
  return { type: 'error', ref, code: wsErrorCode(code), message };
}

export function wsErrorOf(ref: string | number | undefined, err: AppError): z.infer<typeof errorFrame> {
  return wsError(ref, err.code, err.message);
}
