/**
 * Per-item seeds. Each sample's random choices (its image corruption, its noise) come from a
 * generator seeded by the run seed and the sample's own identity, so a sample looks the same
 * whatever else is built alongside it or in which order.
 */

/** A 32-bit seed from a run seed and any identifying parts (FNV-1a, then a murmur3 finish). */
export function deriveSeed(parts: ReadonlyArray<number | string>): number {
  const text = parts.map(String).join('\u0000');
  let hash = 0x811c9dc5;

  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }

  // FNV alone leaves neighbouring inputs with similar low bits; the finisher spreads them
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
