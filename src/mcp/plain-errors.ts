import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/**
 * Sends every JSON-RPC error message as written. The SDK's McpError carries "MCP error <code>: "
 * in its message and the receiving client's McpError adds it again, so a client would show
 * `MCP error -32602: MCP error -32602: unknown tool`; the prefix is taken off on the way out,
 * for our own errors, the SDK's and (in the stdio bridge) those relayed from the gateway.
 */
export function sendingPlainErrors<T extends Transport>(transport: T): T {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    if ('error' in message && typeof message.error.message === 'string') {
      const prefix = `MCP error ${message.error.code}: `;
      let text = message.error.message;
      while (text.startsWith(prefix)) text = text.slice(prefix.length);
      if (text !== message.error.message) message = { ...message, error: { ...message.error, message: text } };
    }
    return send(message, options);
  };
  return transport;
}
