#!/usr/bin/env node
/** The `printernizer-stats` executable; the commands themselves live in commands.ts. */
import { EXIT, main } from './commands.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let pino flush, then leave even if a library left a handle open.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (error) => {
    process.stderr.write(`printernizer-stats: ${(error as Error).message}\n`);
    process.exit(EXIT.failure);
  },
);
