/**
 * Reads a request body with a hard byte limit: a declared Content-Length above the limit is refused before a byte
 * is read, and a chunked (or lying) body is counted as it streams and abandoned as soon as it passes the limit.
 */
import type { IncomingMessage } from 'node:http';

export type LimitedBody = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'too_large' | 'aborted' };

export const MAX_SUBMISSION_BYTES = 64 * 1024;

export function declaredTooLarge(request: Request, limit: number): boolean {
  const declared = request.headers.get('content-length');
  if (declared === null) return false;
  const length = Number(declared);
  return !Number.isFinite(length) || length > limit;
}

export async function readLimitedBody(request: Request, limit: number): Promise<LimitedBody> {
  if (declaredTooLarge(request, limit)) return { ok: false, reason: 'too_large' };
  if (!request.body) return { ok: true, bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      // Stop reading without cancelling: cancelling would destroy the socket before the 413 could be sent; the
      // response closes the connection instead (Connection: close).
      if (total > limit) return { ok: false, reason: 'too_large' };
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, bytes };
}

/**
 * The same, straight from Node's IncomingMessage when the app runs on @hono/node-server: it skips the WHATWG stream
 * wrapper, which costs more than the rest of a small request. On the limit it pauses the socket instead of reading on.
 */
export function readLimitedIncoming(incoming: IncomingMessage, limit: number): Promise<LimitedBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = (result: LimitedBody) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onAborted);
      incoming.off('close', onAborted);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        incoming.pause();
        finish({ ok: false, reason: 'too_large' });
      } else chunks.push(chunk);
    };
    const onEnd = () => finish({ ok: true, bytes: Buffer.concat(chunks, total) });
    const onAborted = () => finish({ ok: false, reason: 'aborted' });
    if (incoming.readableEnded) {
      resolve({ ok: true, bytes: new Uint8Array(0) });
      return;
    }
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onAborted);
    incoming.on('close', onAborted);
  });
}
