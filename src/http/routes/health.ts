/** /api/v1/health: for the add-on watchdog and Docker HEALTHCHECK. */
import { Hono } from 'hono';

export function healthRoutes(info: { version: string; uptimeSeconds: () => number }): Hono {
  const routes = new Hono();
  routes.get('/', (c) => c.json({ status: 'ok', version: info.version, uptime_seconds: info.uptimeSeconds() }));
  return routes;
}
