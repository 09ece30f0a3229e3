// Tells a connection that the farm did not answer apart from one the client itself could
// not open. Errors raised on this host before a SYN leaves (no free local port, no file
// descriptors) say nothing about the VIP: a traffic client that counts them as "no answer"
// reports an outage of the farm that is really its own port exhaustion (TIME_WAIT).

/** errno codes a connect fails with on the client's own host, before the network. */
export const CLIENT_SIDE_CODES: ReadonlySet<string> = new Set(['EADDRNOTAVAIL', 'EADDRINUSE', 'EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** The errno code when `err` is the client's own failure, otherwise undefined (the farm's). */
export function clientSideCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CLIENT_SIDE_CODES.has(code) ? code : undefined;
}
