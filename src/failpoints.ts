// Crash injection for the crash suite: NT_FAILPOINT names one point at which this
// process kills itself with SIGKILL, exactly as a host crash would stop it. Unset
// in production; read once so a restarted worker (started without it) runs on.

const armed = process.env.NT_FAILPOINT ?? '';

export function failpoint(name: string): void {
  if (armed === name) {
    process.stderr.write(`failpoint ${name}: SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
