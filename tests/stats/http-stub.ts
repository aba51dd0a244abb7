/** A scripted HTTP server on loopback that records every request: a collector that fails on demand. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import type { Sleep } from '../../src/stats/submitter.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface StubReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (a hanging collector). */
  hang?: boolean;
}

export type StubHandler = (request: RecordedRequest, index: number) => StubReply | Promise<StubReply>;

export interface HttpStub {
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const open: HttpStub[] = [];
afterEach(async () => {
  for (const stub of open.splice(0)) await stub.close();
});

/** Replies from `script` in order (the last one repeats), or from a handler function. */
export async function startStub(script: StubReply[] | StubHandler): Promise<HttpStub> {
  const requests: RecordedRequest[] = [];
  const handler: StubHandler = Array.isArray(script)
    ? (_request, index) => script[Math.min(index, script.length - 1)]!
    : script;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const index = requests.push(request) - 1;
      const reply = await handler(request, index);
      if (reply.hang) return;
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const stub: HttpStub = {
    url: `http://127.0.0.1:${port}/v1/submit`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(stub);
  return stub;
}

/** A port nothing listens on (bound, then released). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1/submit`;
}

/** A backoff sleep that returns at once and remembers how long it was asked to wait. */
export function recordingSleep(): { waits: number[]; sleep: Sleep } {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms, signal) => {
      waits.push(ms);
      if (signal.aborted) throw signal.reason;
    },
  };
}
