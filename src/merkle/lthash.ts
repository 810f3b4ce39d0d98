// LtHash16: a homomorphic hash of a set. Each element is expanded (SHAKE256) to LANES 16-bit
// lanes; the hash of a set is the lane-wise sum of its elements mod 2^16. Adding or removing
// one element is one vector add or subtract, whatever the size of the set, so a share's
// manifest needs neither its entries in memory nor a re-read of them to stay current.
//
// Why not XOR or one 256-bit sum of SHA-256s: both fall to a generalized-birthday search by
// someone who chooses many elements (an authenticated peer names paths); LtHash16 with 1024
// lanes is the parameter set proposed for exactly this use (Bellare–Micciancio's lattice
// hash, as deployed in Facebook's "homomorphic hashing" for database integrity).
import { createHash } from 'node:crypto'

export const LANES = 1024
export const LTHASH_BYTES = LANES * 2

/** The element's vector: SHAKE256 of its bytes, read as LANES little-endian 16-bit lanes. */
export function elementVector (bytes: Buffer | string): Uint16Array {
  const out = createHash('shake256', { outputLength: LTHASH_BYTES }).update(bytes).digest()
  return new Uint16Array(out.buffer, out.byteOffset, LANES)
}

/** acc[off..off+LANES) += v (mod 2^16). */
export function addInto (acc: Uint16Array, off: number, v: Uint16Array): void {
  for (let i = 0; i < LANES; i++) acc[off + i] = acc[off + i]! + v[i]!
}

/** acc[off..off+LANES) -= v (mod 2^16). */
export function subInto (acc: Uint16Array, off: number, v: Uint16Array): void {
  for (let i = 0; i < LANES; i++) acc[off + i] = acc[off + i]! - v[i]!
}
