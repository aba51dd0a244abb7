/**
 * Request-body rules shared by every mutating route: at most 64 KiB, and either no body or JSON. Refusing other
 * content types means a cross-site HTML form (which cannot send application/json without CORS) cannot opt out or
 * delete the user's data.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { formatPath } from '../config.js';
import { ApiError, errorResponse } from './errors.js';

export const MAX_BODY_BYTES = 64 * 1024;

export const limitBody: MiddlewareHandler = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => errorResponse(c, 413, 'payload_too_large', `request body is larger than ${MAX_BODY_BYTES} bytes`),
});

function declaresBody(c: Context): boolean {
  const length = c.req.header('content-length');
  if (length !== undefined) return Number(length) > 0;
  return c.req.header('transfer-encoding') !== undefined;
}

export const requireJsonOrEmpty: MiddlewareHandler = async (c, next) => {
  if (c.req.method === 'GET' || c.req.method === 'HEAD' || c.req.method === 'OPTIONS') return next();
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || (type === '' && !declaresBody(c))) return next();
  return errorResponse(
    c,
    415,
    'unsupported_media_type',
    'send no body, or a JSON body with Content-Type: application/json',
  );
};

/** Parses an optional JSON body against a schema; an empty body is `{}`. Throws ApiError 400/422. */
export async function readJsonBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError(400, 'invalid_json', 'request body is not valid JSON');
    }
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({
      path: formatPath(issue.path),
      message: issue.code === 'unrecognized_keys' ? `unknown keys: ${issue.keys.join(', ')}` : issue.message,
    }));
    throw new ApiError(422, 'validation_failed', 'request body is not valid', issues);
  }
  return result.data;
}
