// Child processes the test tools start: each in its own process group (so a shell's
// children go too), output to a log file, all killed when this process exits.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  exitCode: number | string | null;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

const live = new Set<Proc>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is all we can still do here.
  process.on('exit', () => {
    for (const p of live) killGroup(p.pid, 'SIGKILL');
  });
  // Our children run in their own process groups, so a Ctrl-C or a kill of the test run
  // does not reach them, and a signal's default action skips 'exit' handlers. Unless the
  // program handles the signal itself (up.ts does), exit through process.exit so the
  // 'exit' handlers (this one, the data folders') run.
  const signals: [NodeJS.Signals, number][] = [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]];
  for (const [sig, code] of signals) {
    const onSignal = (): void => {
      if (process.listenerCount(sig) > 1) return;
      process.exit(code);
    };
    process.on(sig, onSignal);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  // Only the group, never the bare pid: after the leader exits its pid may be reused, but
  // the kernel keeps a pid number allocated while it still names a live process group.
  try {
    process.kill(-pid, signal);
  } catch {
    /* group already gone */
  }
}

export function startProc(name: string, cmd: string, args: string[], logFile: string, opts: SpawnOptions = {}): Proc {
  installExitHook();
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let resolveExit!: (v: number | string) => void;
  const exited = new Promise<number | string>((r) => (resolveExit = r));
  const proc: Proc = {
    name,
    pid: child.pid ?? -1,
    child,
    exited,
    exitCode: null,
    stop: async (graceMs = 5000) => {
      if (proc.exitCode !== null) return proc.exitCode;
      killGroup(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(proc.pid, 'SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  child.on('error', (err) => {
    proc.exitCode = `spawn error: ${err.message}`;
    live.delete(proc);
    resolveExit(proc.exitCode);
  });
  child.on('exit', (code, signal) => {
    // Like a container: when the main process ends, whatever it left in its group goes too.
    killGroup(proc.pid, 'SIGKILL');
    proc.exitCode = code ?? signal ?? 'unknown';
    live.delete(proc);
    resolveExit(proc.exitCode);
  });
  if (child.pid !== undefined) live.add(proc);
  return proc;
}
