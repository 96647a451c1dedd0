// A minimal MCP server over stdio in plain JavaScript (no SDK, no tsx), so that the upstream
// behind the gate costs as little as possible and the benchmark measures the gate itself.
// Newline-delimited JSON-RPC 2.0: initialize, tools/list, tools/call, ping.
import { createInterface } from 'node:readline';

const TOOLS = [
  {
    name: 'echo',
    description: 'Echo the arguments back',
    inputSchema: { type: 'object', properties: { message: { type: 'string' } } },
    annotations: { readOnlyHint: true },
  },
  {
    name: 'write_file',
    description: 'Write a file (fake: nothing is written)',
    inputSchema: { type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } }, required: ['path'] },
  },
];

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

function answer(request) {
  switch (request.method) {
    case 'initialize':
      return {
        protocolVersion: request.params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'toolgate-bench-echo', version: '1.0.0' },
      };
    case 'tools/list':
      return { tools: TOOLS };
    case 'tools/call': {
      const { name, arguments: args = {} } = request.params ?? {};
      if (name === 'echo') return { content: [{ type: 'text', text: JSON.stringify(args) }] };
      if (name === 'write_file') return { content: [{ type: 'text', text: `wrote ${String(args.content ?? '').length} bytes to ${args.path}` }] };
      return { content: [{ type: 'text', text: `unknown tool ${name}` }], isError: true };
    }
    case 'ping':
      return {};
    default:
      return undefined;
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return send({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
  }
  if (request.id === undefined) return; // a notification (notifications/initialized, cancelled)
  const result = answer(request);
  if (result === undefined) send({ jsonrpc: '2.0', id: request.id, error: { code: -32601, message: `method not found: ${request.method}` } });
  else send({ jsonrpc: '2.0', id: request.id, result });
});
process.stdin.on('end', () => process.exit(0));
