// Loads the native QUIC binding of @chainsafe/libp2p-quic (quinn + rustls, built with NAPI-RS).
//
// We depend on the binding's platform package, @chainsafe/libp2p-quic-linux-x64-gnu, pinned to the
// exact version, instead of the @chainsafe/libp2p-quic wrapper: the wrapper lists one optional
// package per platform, the registry these machines reach carries only the linux-x64-gnu build,
// and a lock file without the others makes `npm ci` refuse to install. The wrapper's JS (libp2p
// glue) is not used anyway; only its napi loader was, and this is that loader for our platform.
import { createRequire } from 'node:module'
import { SwarmError } from '../errors.js'

const PLATFORM_PACKAGES: Record<string, string> = {
  'linux-x64-glibc': '@chainsafe/libp2p-quic-linux-x64-gnu'
}

function libc (): string {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return report?.header?.glibcVersionRuntime !== undefined ? 'glibc' : 'musl'
}

export function loadQuicBinding (): unknown {
  const key = `${process.platform}-${process.arch}${process.platform === 'linux' ? '-' + libc() : ''}`
  const pkg = PLATFORM_PACKAGES[key]
  if (pkg === undefined) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `no QUIC binding for ${key}; supported: ${Object.keys(PLATFORM_PACKAGES).join(', ')}`)
  }
  try {
    return createRequire(import.meta.url)(pkg)
  } catch (err) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `cannot load the QUIC binding ${pkg}: ${(err as Error).message} (run npm ci)`, { cause: err })
  }
}
