import { execFile } from 'node:child_process';

export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
  constructor(
    readonly argv: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')} exited ${exitCode}: ${stderr.trim().slice(0, 500)}`);
  }
}

/** Runs a program with an argument array (never a shell string). */
export function run(
  file: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof (err as NodeJS.ErrnoException).code === 'number' ? (err as { code: number }).code : null;
          reject(new CommandFailed([file, ...args], code, stderr || err.message));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
