// Cluster-secret admission: who may talk to this node at all.
//
// After the QUIC handshake both sides know each other's PeerId (mutual TLS, so each side holds
// the key of its PeerId). The control stream then runs, with D the dialer and L the listener:
//
//   D → L  HELLO(version, nonce_D)            both HELLOs are sent at once, they carry no secret
//   L → D  HELLO(version, nonce_L)
//   D → L  AUTH(proof(K, 'dialer', D, L, nonce_D, nonce_L))        only once D has nonce_L
//   L      checks D's proof; a wrong one gets ERROR + close and nothing else
//   L → D  AUTH(proof(K, 'listener', L, D, nonce_L, nonce_D))      only after a correct proof
//   D      checks L's proof; then both exchange SHARES and the rest
//
// Why the dialer goes first: anyone who can reach the UDP port can dial. If the listener proved
// first, every stranger could collect a proof and guess a human-chosen secret offline at HMAC
// speed. Now a stranger gets a nonce and an ERROR, nothing that depends on the secret. The
// dialer does show its proof to whatever answers at the address it dials (a listener is not
// pinned to a PeerId), so a fake listener can collect one proof per dial. Against that:
//   - K is not the secret but scrypt(secret) with a fixed domain-separation salt and
//     parameters costing ~80 ms (32 MiB) per guess; a node computes it once at start;
//   - the secret must be at least MIN_SECRET_CHARS characters (see below).
// Proofs are bound to both PeerIds, both nonces and the sender's role: a recorded proof is
// useless on another connection (fresh nonces), between other nodes (PeerIds), and cannot be
// reflected back to its sender (the role and the sender/receiver order differ).
import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto'
import { SwarmError } from '../errors.js'

export const NONCE_BYTES = 32

/**
 * Shortest cluster secret accepted. `swarm secret` prints 43 characters (256 random bits). A
 * proof collected by a fake listener lets an attacker test guesses offline at ~80 ms of scrypt
 * each per core: an 8-character human-chosen secret (~30-40 bits) falls to a rented GPU farm,
 * 16 characters even of human-made text put the search far beyond that.
 */
export const MIN_SECRET_CHARS = 16

/** scrypt cost: N = 2^15, r = 8 → 32 MiB and ~50-100 ms on a current core, once per node start. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const
/** Fixed salt: separates this use of the secret from any other (the secret itself is the cluster's). */
const KEY_SALT = 'swarm cluster auth key v1'
const PROOF_LABEL = 'swarm-auth-v2\0'

export type AuthRole = 'dialer' | 'listener'

export function newNonce (): Buffer { return randomBytes(NONCE_BYTES) }

/** Refuses secrets too short to be safe (ERR_BAD_ARGUMENT). */
export function checkSecret (secret: unknown): asserts secret is string {
  if (typeof secret !== 'string' || [...secret].length < MIN_SECRET_CHARS) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `the cluster secret must be at least ${MIN_SECRET_CHARS} characters; run \`swarm secret\` to make a strong one`)
  }
}

/** The key proofs are made with: the checked secret stretched by scrypt. Costly on purpose: call once per node. */
export function deriveAuthKey (secret: string): Buffer {
  checkSecret(secret)
  return scryptSync(secret.normalize('NFC'), KEY_SALT, 32, SCRYPT)
}

/** The proof `senderId` (in `role`) sends to `receiverId` on the connection with these nonces. */
export function authProof (key: Buffer, role: AuthRole, senderId: string, receiverId: string, senderNonce: Buffer, receiverNonce: Buffer): Buffer {
  return createHmac('sha256', key)
    .update(PROOF_LABEL).update(role).update('\0')
    .update(senderId).update('\0').update(receiverId).update('\0')
    .update(senderNonce).update(receiverNonce)
    .digest()
}

/** Does `mac` prove the key for this role, pair of PeerIds and pair of nonces? Constant time. */
export function verifyProof (key: Buffer, mac: Buffer, role: AuthRole, senderId: string, receiverId: string, senderNonce: Buffer, receiverNonce: Buffer): boolean {
  const expected = authProof(key, role, senderId, receiverId, senderNonce, receiverNonce)
  return mac.length === expected.length && timingSafeEqual(mac, expected)
}

/**
 * A new random cluster secret, as printed by `swarm secret`: 32 random bytes in base64url. One
 * draw in 64 starts with '-', which a command line would take for a flag (`--secret -abc...`):
 * such draws are thrown away (the secret keeps 256 bits less a fraction of one).
 */
export function newSecret (): string {
  for (;;) {
    const secret = randomBytes(32).toString('base64url')
    if (!secret.startsWith('-')) return secret
  }
}
