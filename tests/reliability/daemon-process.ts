/**
 * The real daemon (`cli.ts run`) as a child process for fault tests: its JSON log lines are collected from stdout,
 * `event recorded` lines (debug level) give the ids the daemon reported as stored.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  /** Ids of `event recorded` lines, in order, with their types. */
  readonly recorded: { id: string; type: string }[];
  /** Resolves with the HTTP port once the daemon says it is running (rejects if it exits first). */
  readonly running: Promise<number>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function writeConfig(dir: string, config: unknown): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  return path;
}

export function startDaemonProcess(opts: {
  configPath: string;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
}): DaemonProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli.ts',
      'run',
      '--config',
      opts.configPath,
      '--data-dir',
      opts.dataDir,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ],
    { cwd: ROOT, env: { ...process.env, DO_NOT_TRACK: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: LogLine[] = [];
  const recorded: { id: string; type: string }[] = [];
  let err = '';
  let buffer = '';
  let onPort: ((port: number) => void) | null = null;
  const running = new Promise<number>((resolvePort, reject) => {
    onPort = resolvePort;
    child.once('exit', (code, signal) => reject(new Error(`daemon exited (${code ?? signal}) before running: ${err}`)));
  });
  running.catch(() => {});
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue; // A line cut by SIGKILL.
      }
      lines.push(line);
      if (line.msg === 'event recorded') recorded.push({ id: String(line.event_id), type: String(line.event_type) });
      if (line.msg === 'printernizer-stats is running') onPort?.(Number(line.port));
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolveExit({ code: child.exitCode, signal: child.signalCode });
    }
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
  });
  return {
    child,
    lines,
    recorded,
    running,
    exited,
    stderr: () => err,
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export async function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.json() };
}

export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
