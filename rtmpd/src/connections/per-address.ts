import { isIPv6 } from 'node:net';

/**
 * The key a client's connections are counted under: its IPv4 address, or
 * the /64 prefix of its IPv6 address (one host is usually given a whole /64,
 * so counting single IPv6 addresses would not limit it at all).
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const plain = address.replace(/%.*$/, '').toLowerCase();
  const [head = '', tail] = plain.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** Open connections per client address, so that one host cannot take every slot of a listener. */
export class PerAddress {
  private readonly open = new Map<string, number>();

  /** Counts a connection from `key` if it has fewer than `limit` open (0: no limit); false when refused. */
  add(key: string, limit: number): boolean {
    const n = this.open.get(key) ?? 0;
    if (limit > 0 && n >= limit) return false;
    this.open.set(key, n + 1);
    return true;
  }

  remove(key: string): void {
    const n = this.open.get(key) ?? 0;
    if (n <= 1) this.open.delete(key);
    else this.open.set(key, n - 1);
  }
}
