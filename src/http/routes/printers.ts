/** /api/v1/printers: live bridge state, names as configured; never serials, hosts or job names. */
import { Hono } from 'hono';
import type { PrinterSnapshot } from '../../printers/types.js';

export function printerRoutes(printers: () => PrinterSnapshot[]): Hono {
  const routes = new Hono();
  routes.get('/', (c) => c.json({ printers: printers() }));
  return routes;
}
