// Owns the node identity: one Ed25519 key per state dir, its libp2p encodings
// (protobuf private key for the QUIC binding, PeerId string) and signatures.
//
// On disk: `<stateDir>/identity.key`, mode 0600, a PKCS#8 PEM
// ("-----BEGIN PRIVATE KEY-----", readable by `openssl pkey`). The state dir is
// created with mode 0700 when missing. The key file is created atomically
// (temp file + link), so two processes racing on a fresh dir end up with the
// same identity. A corrupt key file is an error, never silently replaced.
import { constants as fsConstants } from 'node:fs'
import { access, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { SwarmError } from '../errors.js'
import { base58btcDecode, base58btcEncode } from './base58.js'

export interface Identity {
  /** base58btc libp2p PeerId, '12D3KooW…' */
  peerId: string
  /** raw 32-byte Ed25519 public key */
  publicKey: Buffer
  /** libp2p protobuf PrivateKey: 08 01 12 40 ‖ seed(32) ‖ public key(32) */
  privateKeyProto: Buffer
  /** Ed25519 signature (64 bytes) of `data`; always present on identities made by this module */
  sign?(data: Uint8Array): Buffer
}

export const IDENTITY_FILE = 'identity.key'

// 08 01 = KeyType Ed25519, 12 40 = 64-byte data; 12 20 = 32-byte data
const PROTO_PRIVATE_PREFIX = Buffer.from([0x08, 0x01, 0x12, 0x40])
const PROTO_PUBLIC_PREFIX = Buffer.from([0x08, 0x01, 0x12, 0x20])
// identity multihash: code 0x00, length 0x24 (36 = 4-byte prefix + 32-byte key)
const IDENTITY_MULTIHASH_PREFIX = Buffer.from([0x00, 0x24])
// PKCS#8 DER wrapper of an Ed25519 seed (RFC 8410)
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** PeerId of an Ed25519 public key: base58btc(identity multihash(protobuf PublicKey)). */
export function peerIdFromPublicKey (publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new SwarmError('ERR_BAD_ARGUMENT', `Ed25519 public key must be 32 bytes, got ${publicKey.length}`)
  return base58btcEncode(Buffer.concat([IDENTITY_MULTIHASH_PREFIX, PROTO_PUBLIC_PREFIX, publicKey]))
}

/** Inverse of peerIdFromPublicKey; ERR_BAD_ARGUMENT if `peerId` is not an Ed25519 identity PeerId. */
export function publicKeyFromPeerId (peerId: string): Buffer {
  const bytes = base58btcDecode(peerId)
  const prefix = Buffer.concat([IDENTITY_MULTIHASH_PREFIX, PROTO_PUBLIC_PREFIX])
  if (bytes === undefined || bytes.length !== prefix.length + 32 || !Buffer.from(bytes.subarray(0, prefix.length)).equals(prefix)) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `not an Ed25519 PeerId: ${JSON.stringify(peerId.slice(0, 80))}`)
  }
  return Buffer.from(bytes.subarray(prefix.length))
}

/** Checks an Ed25519 signature made by `signer` (a PeerId or a raw 32-byte public key). */
export function verifySignature (signer: string | Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  const raw = typeof signer === 'string' ? publicKeyFromPeerId(signer) : Buffer.from(signer)
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' })
  try {
    return cryptoVerify(null, data, key, signature)
  } catch {
    return false
  }
}

function identityFromKeyObject (privateKey: KeyObject): Identity {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SwarmError('ERR_BAD_ARGUMENT', `expected an Ed25519 key, got ${String(privateKey.asymmetricKeyType)}`)
  const jwk = privateKey.export({ format: 'jwk' })
  const seed = Buffer.from(jwk.d ?? '', 'base64url')
  const publicKey = Buffer.from(jwk.x ?? '', 'base64url')
  if (seed.length !== 32 || publicKey.length !== 32) throw new SwarmError('ERR_BAD_ARGUMENT', 'malformed Ed25519 key')
  return {
    peerId: peerIdFromPublicKey(publicKey),
    publicKey,
    privateKeyProto: Buffer.concat([PROTO_PRIVATE_PREFIX, seed, publicKey]),
    sign: (data: Uint8Array) => cryptoSign(null, data, privateKey)
  }
}

/** An identity that lives only in memory: from a 32-byte seed (deterministic) or random. */
export function createIdentity (seed?: Uint8Array): Identity {
  if (seed === undefined) return identityFromKeyObject(generateKeyPairSync('ed25519').privateKey)
  if (seed.length !== 32) throw new SwarmError('ERR_BAD_ARGUMENT', `Ed25519 seed must be 32 bytes, got ${seed.length}`)
  return identityFromKeyObject(createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' }))
}

function errCode (err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String((err as Error)?.message ?? err)
}

const ERRNO_TEXT: Record<string, string> = {
  EEXIST: 'exists and is not a directory',
  ENOTDIR: 'a path component is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded'
}

function stateDirError (what: string, path: string, err: unknown): SwarmError {
  const code = errCode(err)
  const text = ERRNO_TEXT[code]
  return new SwarmError('ERR_STATE_DIR', `${what} ${path}: ${text === undefined ? code : `${text} (${code})`}`, { cause: err })
}

function parseKeyFile (pem: string, path: string): Identity {
  try {
    return identityFromKeyObject(createPrivateKey({ key: pem, format: 'pem' }))
  } catch (err) {
    throw new SwarmError('ERR_STATE_DIR', `identity key ${path} is not a valid Ed25519 PKCS#8 PEM key; move it away to create a new identity`, { cause: err })
  }
}

/**
 * Loads `<stateDir>/identity.key`, creating the dir (0700) and a fresh key
 * (0600) when missing. Same dir, same identity, across runs and processes.
 * Any filesystem problem → ERR_STATE_DIR with a one-line message.
 */
export async function loadOrCreateIdentity (stateDir: string): Promise<Identity> {
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw stateDirError('cannot create state dir', stateDir, err)
  }
  try {
    if (!(await stat(stateDir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
    await access(stateDir, fsConstants.W_OK | fsConstants.X_OK)
  } catch (err) {
    throw stateDirError('state dir is not a writable directory:', stateDir, err)
  }
  const keyPath = join(stateDir, IDENTITY_FILE)
  const existing = await readKeyFile(keyPath)
  if (existing !== undefined) return parseKeyFile(existing, keyPath)

  const { privateKey } = generateKeyPairSync('ed25519')
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const tmpPath = `${keyPath}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const fh = await open(tmpPath, 'wx', 0o600)
    try {
      await fh.writeFile(pem)
      await fh.sync()
    } finally {
      await fh.close()
    }
    try {
      await link(tmpPath, keyPath) // atomic create-if-absent
    } catch (err) {
      const code = errCode(err)
      if (code === 'EEXIST') {
        const winner = await readKeyFile(keyPath)
        if (winner !== undefined) return parseKeyFile(winner, keyPath)
      }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err
      await rename(tmpPath, keyPath) // filesystems without hard links
    }
  } catch (err) {
    if (err instanceof SwarmError) throw err
    throw stateDirError('cannot write identity key', keyPath, err)
  } finally {
    await unlink(tmpPath).catch(() => {})
  }
  return identityFromKeyObject(privateKey)
}

async function readKeyFile (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined
    throw stateDirError('cannot read identity key', path, err)
  }
}
