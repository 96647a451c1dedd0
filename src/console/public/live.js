// The live queue over the approvers' WebSocket (the same socket and frames as `toolgate approve`).
// The browser sends the session cookie on the upgrade; the gateway accepts it only from its own
// origin. After a drop the socket reconnects with backoff, and `hello` resyncs the whole queue.

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;

/**
 * Opens and keeps the socket. `handlers`: onState({ connection, attempt, retryInMs }),
 * onHello(frame), onFrame(frame), onEnded(reason) when the gateway refuses the session.
 */
export function connectLive(handlers) {
  let ws = null;
  let attempt = 0;
  let timer = null;
  let stopped = false;

  const url = () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/approvals`;

  const open = () => {
    if (stopped) return;
    handlers.onState({ connection: attempt === 0 ? 'connecting' : 'reconnecting', attempt });
    ws = new WebSocket(url());
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === 'hello') {
        attempt = 0;
        handlers.onState({ connection: 'connected', attempt: 0 });
        handlers.onHello(frame);
      } else handlers.onFrame(frame);
    };
    ws.onclose = (event) => {
      ws = null;
      if (stopped) return;
      if (event.code === CLOSE_UNAUTHORIZED || event.code === CLOSE_FORBIDDEN) {
        stopped = true;
        handlers.onEnded(event.reason || 'the gateway ended this session');
        return;
      }
      attempt++;
      const retryInMs = Math.min(10_000, 250 * 2 ** Math.min(attempt - 1, 6)) * (0.75 + Math.random() * 0.5);
      handlers.onState({ connection: 'reconnecting', attempt, retryInMs });
      timer = setTimeout(open, retryInMs);
    };
  };
  open();

  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      ws?.close(1000, 'signed out');
    },
    /** Asks for the whole pending list again (answered with a `pending` frame). */
    resync() {
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'list', ref: 'resync' }));
    },
  };
}
