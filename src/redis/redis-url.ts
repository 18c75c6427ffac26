/**
 * What REDIS_URL names: one Redis server (`redis://`, `rediss://`) or a Redis Cluster
 * (`redis+cluster://`, `rediss+cluster://`) given by one or more seed nodes,
 * `redis+cluster://[user:password@]host:port[,host:port...]`; the client discovers the other
 * nodes from the seeds. Pure, so config validation and the connection factory agree.
 */
export type RedisTarget =
  | { readonly kind: 'server'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    };

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)\/?$/;
const NODE = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** The server or cluster a REDIS_URL names; null when it is neither form. */
export function parseRedisUrl(value: string): RedisTarget | null {
  if (/^rediss?:\/\//.test(value)) {
    try {
      new URL(value);
      return { kind: 'server', url: value };
    } catch {
      return null;
    }
  }
  const match = CLUSTER_URL.exec(value);
  if (!match) return null;
  const nodes: { host: string; port: number }[] = [];
  for (const node of (match[4] as string).split(',')) {
    const parts = NODE.exec(node.trim());
    const port = Number(parts?.[2]);
    if (!parts || port < 1 || port > 65535) return null;
    nodes.push({ host: (parts[1] as string).replace(/^\[|\]$/g, ''), port });
  }
  return {
    kind: 'cluster',
    nodes,
    ...(match[2] ? { username: decodeURIComponent(match[2]) } : {}),
    ...(match[3] !== undefined ? { password: decodeURIComponent(match[3]) } : {}),
    tls: match[1] === 'rediss',
  };
}
