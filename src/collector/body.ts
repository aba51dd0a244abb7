/**
 * Reads a request body with a hard byte limit: a declared Content-Length above the limit is refused before a byte
 * is read, and a chunked (or lying) body is counted as it streams and abandoned as soon as it passes the limit.
 */
export type LimitedBody = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'too_large' };

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
