// Cluster-secret proof. After the QUIC handshake both sides know each other's PeerId (mutual
// TLS). Each side sends a fresh nonce (HELLO), then an HMAC of the secret over both PeerIds and
// both nonces (AUTH). A peer without the secret cannot produce it, a recorded proof is useless
// on another connection (nonces) or between other nodes (PeerIds), and TLS already proves each
// side holds the key of its PeerId.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const NONCE_BYTES = 32

export function newNonce (): Buffer { return randomBytes(NONCE_BYTES) }

export function authProof (secret: string, senderId: string, receiverId: string, senderNonce: Buffer, receiverNonce: Buffer): Buffer {
  return createHmac('sha256', secret)
    .update('swarm-auth-v1\0').update(senderId).update('\0').update(receiverId).update('\0')
    .update(senderNonce).update(receiverNonce)
    .digest()
}

export function checkProof (mac: Buffer, expected: Buffer): boolean {
  return mac.length === expected.length && timingSafeEqual(mac, expected)
}

/** A new random cluster secret, as printed by `swarm secret`. */
export function newSecret (): string { return randomBytes(32).toString('base64url') }
