import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time check of X-Auth-Token against the accepted tokens. */
export function tokenChecker(tokens: string[]): (presented: string | undefined) => boolean {
  const accepted = tokens.map(digest);
  return (presented) => {
    if (!presented) return false;
    const d = digest(presented);
    let ok = false;
    for (const a of accepted) ok = timingSafeEqual(a, d) || ok;
    return ok;
  };
}
