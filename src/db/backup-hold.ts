/**
 * The process `printernizer-stats backup-begin` leaves running during a backup (src/db/backup.ts): its own small
 * entry point, so that it loads better-sqlite3 and nothing else of the daemon while it waits.
 * Usage: backup-hold.js --data-dir DIR --nonce ID [--max-hold-ms N]
 */
import { parseArgs } from 'node:util';
import { holdForBackup } from './backup.js';

const { values } = parseArgs({
  options: { 'data-dir': { type: 'string' }, nonce: { type: 'string' }, 'max-hold-ms': { type: 'string' } },
  strict: true,
});
const dataDir = values['data-dir'];
const nonce = values.nonce;
const maxHoldMs = values['max-hold-ms'] === undefined ? undefined : Number(values['max-hold-ms']);
if (!dataDir || !nonce || (maxHoldMs !== undefined && !(maxHoldMs > 0))) {
  process.stderr.write('usage: backup-hold --data-dir DIR --nonce ID [--max-hold-ms N]\n');
  process.exit(2);
}
await holdForBackup(dataDir, nonce, maxHoldMs);
