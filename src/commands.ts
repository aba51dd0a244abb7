/**
 * printernizer-stats <command>: the daemon (`run`, the default), the simulated-printer demo, the collector, and
 * one-shot commands that do what the API does on the same data directory (safe beside a running daemon: WAL).
 */
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { configuredFeatures, Daemon } from './app.js';
import { type Config, ConfigError, loadConfigFile } from './config.js';
import { DatabaseOpenError, databasePath, openDatabase } from './db/open.js';
import { DataDirLockedError } from './lock.js';
import { createLogger, silentLogger } from './log.js';
import { configuredMembers } from './printers/fleet.js';
import { type Runtime, type RuntimeFlags, resolveRuntime, UsageError } from './runtime.js';
import { appVersion, effectiveTimezone } from './stats/privacy.js';
import { UsageRepository } from './stats/repository.js';
import { UsageStatsService } from './stats/service.js';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const COMMON_OPTIONS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Command {
  summary: string;
  usage: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
  /** Internal: not listed in --help. */
  hidden?: boolean;
  /** Takes arguments besides its options (`replay FILE`). */
  positionals?: boolean;
}

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run the daemon (the default command)',
    usage: 'run [--config FILE] [--data-dir DIR] [--port N] [--host ADDR]',
    options: { ...COMMON_OPTIONS, port: { type: 'string' }, host: { type: 'string' } },
    run: (values) => runDaemon(values as RuntimeFlags),
  },
  demo: {
    summary: 'run the daemon against built-in simulated printers on a throwaway data directory',
    usage: 'demo [--port N] [--host ADDR] [--speed N] [--data-dir DIR]',
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      speed: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    run: async (values) => {
      const { runDemo } = await import('./demo.js');
      return runDemo(values as { port?: string; host?: string; speed?: string; 'data-dir'?: string });
    },
  },
  collector: {
    summary: 'run the statistics collector service (SQLite in --data-dir, or PostgreSQL with --database)',
    usage:
      'collector [--port N] [--host ADDR] [--data-dir DIR | --database postgres://USER:PASSWORD@HOST:5432/DB] [--k N] [--trust-proxy]\n\n' +
      'Environment: COLLECTOR_DATABASE_URL (the same as --database). Several instances may share one PostgreSQL database.\n' +
      '--trust-proxy: rate-limit by the last X-Forwarded-For address (only behind a proxy or load balancer you run).',
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      database: { type: 'string' },
      k: { type: 'string' },
      'trust-proxy': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    run: async (values) => {
      const { startCollector } = await import('./collector/server.js');
      const { CollectorDatabaseError } = await import('./collector/storage.js');
      const runtime = resolveRuntime({
        port: values.port as string | undefined,
        'data-dir': values['data-dir'] as string | undefined,
      });
      const k = values.k === undefined ? undefined : Number(values.k);
      if (k !== undefined && (!Number.isInteger(k) || k < 2))
        throw new UsageError('--k must be an integer of at least 2');
      const database = (values.database as string | undefined) ?? (process.env.COLLECTOR_DATABASE_URL || undefined);
      const logger = createLogger({ level: 'info' });
      let collector: Awaited<ReturnType<typeof startCollector>>;
      try {
        collector = await startCollector({
          port: runtime.port,
          host: (values.host as string | undefined) ?? '127.0.0.1',
          dataDir: runtime.dataDir,
          database,
          trustProxy: values['trust-proxy'] === true,
          logger,
          k,
        });
      } catch (error) {
        // A database that cannot be used is a configuration problem: one line, exit 2 (no stack, no password).
        if (error instanceof CollectorDatabaseError) {
          process.stderr.write(`${error.message}\n`);
          return EXIT.usage;
        }
        throw error;
      }
      logger.info({ url: collector.url }, 'collector is running');
      return new Promise<number>((resolve) => {
        const shutdown = () => void collector.stop().then(() => resolve(EXIT.ok));
        process.once('SIGTERM', shutdown);
        process.once('SIGINT', shutdown);
      });
    },
  },
  status: {
    summary: 'show the statistics status (as GET /api/v1/usage-stats/status)',
    usage: 'status [--config FILE] [--data-dir DIR]',
    options: COMMON_OPTIONS,
    run: (values) => withService(values, (service) => print(service.getStatus())),
  },
  export: {
    summary: 'export every stored event and setting as JSON',
    usage: 'export [--output FILE] [--config FILE] [--data-dir DIR]',
    options: { ...COMMON_OPTIONS, output: { type: 'string', short: 'o' } },
    run: (values) =>
      withService(values, (service) => {
        const text = `${JSON.stringify(service.exportStats(), null, 2)}\n`;
        if (typeof values.output === 'string') {
          writeFileSync(values.output, text);
          process.stderr.write(`wrote ${values.output}\n`);
        } else process.stdout.write(text);
        return EXIT.ok;
      }),
  },
  'opt-in': {
    summary: 'enable anonymous usage statistics (creates an installation id once)',
    usage: 'opt-in [--config FILE] [--data-dir DIR]',
    options: COMMON_OPTIONS,
    run: (values) =>
      withService(values, (service) => {
        const { installation_id } = service.optIn();
        return print({ success: true, installation_id, message: 'Usage statistics enabled.' });
      }),
  },
  'opt-out': {
    summary: 'disable usage statistics (local data is kept)',
    usage: 'opt-out [--config FILE] [--data-dir DIR]',
    options: COMMON_OPTIONS,
    run: (values) =>
      withService(values, (service) => {
        service.optOut();
        return print({
          success: true,
          installation_id: service.installationId(),
          message: 'Usage statistics disabled. Local data is kept.',
        });
      }),
  },
  delete: {
    summary: 'delete every local usage event (settings are kept)',
    usage: 'delete [--yes] [--config FILE] [--data-dir DIR]',
    options: { ...COMMON_OPTIONS, yes: { type: 'boolean', short: 'y' } },
    run: (values) =>
      withService(values, async (service) => {
        if (values.yes !== true) {
          const count = service.getStatus().total_events;
          if (!process.stdin.isTTY) {
            process.stderr.write(`refusing to delete ${count} events without --yes\n`);
            return EXIT.usage;
          }
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question(`Delete all ${count} local usage events? [y/N] `);
          rl.close();
          if (!/^y(es)?$/i.test(answer.trim())) {
            process.stderr.write('nothing deleted\n');
            return EXIT.ok;
          }
        }
        const deleted = service.deleteAllStats();
        return print({ success: true, deleted_events: deleted, message: `Deleted ${deleted} local usage events.` });
      }),
  },
  preview: {
    summary: 'print exactly the payload a submission would send now',
    usage: 'preview [--config FILE] [--data-dir DIR]',
    options: COMMON_OPTIONS,
    run: (values) => withService(values, (service) => print(service.submissionPayload())),
  },
  submit: {
    summary: 'submit the statistics now (one try, no long backoff; needs opt-in and usage_statistics.endpoint)',
    usage: 'submit [--config FILE] [--data-dir DIR]',
    options: COMMON_OPTIONS,
    run: (values) =>
      withService(values, async (service, config) => {
        const { UsageSubmitter } = await import('./stats/submitter.js');
        const submitter = new UsageSubmitter({
          service,
          endpoint: config.usage_statistics.endpoint,
          logger: silentLogger(),
        });
        const outcome = await submitter.submit({ maxAttempts: 1 });
        if (!outcome.success) {
          const hint = outcome.reason === 'not_opted_in' ? ' Run `printernizer-stats opt-in` first.' : '';
          process.stderr.write(`submission not made: ${outcome.message}${hint}\n`);
          return EXIT.failure;
        }
        return print({ success: true, message: outcome.message, submission_id: outcome.submission_id });
      }),
  },
  // The add-on's backup_pre and backup_post (config.yaml); src/db/backup.ts explains the design.
  'backup-begin': {
    summary: 'before a backup: keep the database file consistent until backup-end (the daemon keeps running)',
    usage: 'backup-begin [--data-dir DIR]',
    options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    run: async (values) => {
      const { beginBackup } = await import('./db/backup.js');
      const result = await beginBackup(dataDirOf(values));
      return print(result);
    },
  },
  'backup-end': {
    summary: 'after a backup: end what backup-begin holds',
    usage: 'backup-end [--data-dir DIR]',
    options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    run: async (values) => {
      const { endBackup } = await import('./db/backup.js');
      return print(await endBackup(dataDirOf(values)));
    },
  },
  // Diagnostic captures (issue 16); src/capture/cli.ts explains the design.
  capture: {
    summary: 'record a redacted diagnostic capture of one printer (beside a running daemon too)',
    usage:
      'capture --printer NAME [--minutes N] [--output FILE] [--config FILE] [--data-dir DIR] [--port N] [--host ADDR]',
    options: {
      ...COMMON_OPTIONS,
      printer: { type: 'string' },
      minutes: { type: 'string' },
      output: { type: 'string', short: 'o' },
      port: { type: 'string' },
      host: { type: 'string' },
    },
    run: async (values) => (await import('./capture/cli.js')).runCapture(values),
  },
  replay: {
    summary: 'replay a capture file into a throwaway store and print the events (exit 1 on a difference with --expect)',
    usage: 'replay FILE [--speed N | --instant] [--expect] [--json]',
    options: {
      speed: { type: 'string' },
      instant: { type: 'boolean' },
      expect: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    positionals: true,
    run: async (values, positionals) => (await import('./capture/cli.js')).runReplay(values, positionals),
  },
};

function dataDirOf(values: Record<string, unknown>): string {
  return resolveRuntime({ 'data-dir': values['data-dir'] as string | undefined }).dataDir;
}

function print(value: unknown): number {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  return EXIT.ok;
}

function loadRuntime(values: Record<string, unknown>): { runtime: Runtime; config: Config } {
  const runtime = resolveRuntime(values as RuntimeFlags);
  return { runtime, config: loadConfigFile(runtime.configPath) };
}

/** Opens the data directory's database for a one-shot command, beside a running daemon if there is one. */
async function withService(
  values: Record<string, unknown>,
  work: (service: UsageStatsService, config: Config) => number | Promise<number>,
): Promise<number> {
  const { runtime, config } = loadRuntime(values);
  const db = openDatabase(databasePath(runtime.dataDir));
  try {
    const service = new UsageStatsService({
      repository: new UsageRepository(db),
      logger: silentLogger(),
      timezone: effectiveTimezone(config.timezone),
      fleet: () => configuredMembers(config.printers),
      features: () => configuredFeatures(config),
    });
    return await work(service, config);
  } finally {
    db.close();
  }
}

const SHUTDOWN_DEADLINE_MS = 5000;

async function runDaemon(flags: RuntimeFlags): Promise<number> {
  const { runtime, config } = loadRuntime(flags as Record<string, unknown>);
  const logger = createLogger({ level: config.log_level });
  // The daemon runs without them; the panel and GET /api/v1/printers show them with the same reason (issue 13).
  // Printer names stay out of the log, as everywhere; the problem names fields, never their values.
  for (const rejected of config.rejected_printers) {
    logger.warn(
      { component: 'config', printer_index: rejected.index, problem: rejected.problem },
      `printers[${rejected.index}] is not started: ${rejected.problem}`,
    );
  }
  // Driver code (mqtt and its dependencies) is loaded only when printers are configured: an idle daemon stays small.
  const createDriver = config.printers.length > 0 ? (await import('./printers/drivers.js')).createDriver : undefined;
  const daemon = new Daemon({ config, ...runtime, logger, createDriver });
  await daemon.start();
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      const deadline = setTimeout(() => {
        logger.error('shutdown took longer than 5 s; exiting anyway');
        resolve(EXIT.failure);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      daemon.stop(signal).then(
        () => {
          clearTimeout(deadline);
          resolve(EXIT.ok);
        },
        (error) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(EXIT.failure);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

function helpText(): string {
  const lines = [
    `printernizer-stats ${appVersion()}: privacy-first usage statistics for Bambu Lab and Prusa printers`,
    '',
    'Usage: printernizer-stats <command> [options]   (npm start -- <options> runs `run`)',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(12)} ${command.summary}`),
    '',
    'Environment: PRINTERNIZER_CONFIG, PRINTERNIZER_DATA_DIR, PORT, HOST, TZ, DO_NOT_TRACK=1',
    'Run `printernizer-stats <command> --help` for a command’s options.',
  ];
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(helpText());
    return EXIT.ok;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${appVersion()}\n`);
    return EXIT.ok;
  }
  const isCommand = first !== undefined && !first.startsWith('-');
  const name = isCommand ? first : 'run';
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${helpText()}`);
    return EXIT.usage;
  }
  try {
    const { values, positionals } = parseArgs({
      args: isCommand ? rest : argv,
      options: command.options,
      strict: true,
      allowPositionals: command.positionals === true,
    });
    if (values.help) {
      process.stdout.write(`Usage: printernizer-stats ${command.usage}\n\n${command.summary}\n`);
      return EXIT.ok;
    }
    return await command.run(values, positionals);
  } catch (error) {
    return reportFailure(error);
  }
}

/** One clear line (or one per config problem), no stack, and an exit code scripts can tell apart. */
function reportFailure(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.source}: invalid configuration\n`);
    for (const problem of error.problems) process.stderr.write(`  ${problem}\n`);
    return EXIT.usage;
  }
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${(error as Error).message}\n`);
    return EXIT.usage;
  }
  if (error instanceof DatabaseOpenError || error instanceof DataDirLockedError) {
    process.stderr.write(`${error.message}\n`);
    return EXIT.failure;
  }
  process.stderr.write(`printernizer-stats: ${(error as Error)?.message ?? String(error)}\n`);
  return EXIT.failure;
}
