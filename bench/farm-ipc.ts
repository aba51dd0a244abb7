/**
 * How bench/farm.ts talks to its helper processes (simulators, the report reader, the aedes broker): JSON lines. A
 * helper's first stdout line is `{"ready": ...}`; each stdin line is a command `{"id": n, "cmd": "..."}` answered by one
 * line `{"id": n, "reply": ...}` (or `{"id": n, "error": "..."}`). A helper ends when its stdin closes, so none
 * outlives the benchmark. Anything else a helper prints goes to stderr.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type Command = { id: number; cmd: string } & Record<string, unknown>;

/** The harness side of one helper process. */
export class Helper {
  readonly ready: Promise<unknown>;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited: Error | null = null;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    let markReady: (value: unknown) => void = () => {};
    let failReady: (error: Error) => void = () => {};
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    // Nobody may be waiting on `ready` when the helper dies later; the rejection is reported through calls instead.
    this.ready.catch(() => {});
    const lines = createInterface({ input: process.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      let message: { ready?: unknown; id?: number; reply?: unknown; error?: string };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        globalThis.process.stderr.write(`[farm:${name}] ${line}\n`);
        return;
      }
      if ('ready' in message) markReady(message.ready);
      else if (typeof message.id === 'number') {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error !== undefined) waiter?.reject(new Error(`${name}: ${message.error}`));
        else waiter?.resolve(message.reply);
      }
    });
    process.once('exit', (code, signal) => {
      this.exited = new Error(`${name} exited (${signal ?? code})`);
      failReady(this.exited);
      for (const waiter of this.pending.values()) waiter.reject(this.exited);
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.stdin?.write(`${JSON.stringify({ ...args, id, cmd })}\n`);
    });
  }

  /** Closes its stdin (it ends itself) and waits; SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.stdin?.end();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

/**
 * The helper side: says it is ready with `ready`, answers commands with `handlers`, and runs `shutdown` then exits
 * when stdin closes or on SIGTERM.
 */
export function serveCommands(
  ready: unknown,
  handlers: Record<string, (command: Command) => unknown>,
  shutdown: () => Promise<void>,
): void {
  const say = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`);
  say({ ready });
  let ending = false;
  const end = async () => {
    if (ending) return;
    ending = true;
    await shutdown().catch(() => {});
    process.exit(0);
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', async (line) => {
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch {
      return;
    }
    const handler = handlers[command.cmd];
    try {
      if (!handler) throw new Error(`unknown command ${command.cmd}`);
      say({ id: command.id, reply: (await handler(command)) ?? null });
    } catch (error) {
      say({ id: command.id, error: (error as Error).message });
    }
  });
  lines.on('close', () => void end());
  process.once('SIGTERM', () => void end());
}
