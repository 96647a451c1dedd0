import { AppError, errorCatalogue, type ErrorCode } from '../core/errors.js';

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
export function errorFrame(ref: string | number | undefined, code: ErrorCode, message: string) {
  return { type: 'error' as const, ref, code: wsErrorCode(code), message };
}

export function errorFrameOf(ref: string | number | undefined, err: AppError) {
  return errorFrame(ref, err.code, err.message);
}
