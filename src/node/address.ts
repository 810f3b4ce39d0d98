// 'host:port' parsing for --listen and --peer (IPv6 in brackets: '[::1]:4001').
import { SwarmError } from '../errors.js'

export function parseHostPort (s: string): { host: string, port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s)
  const port = m === null ? NaN : Number(m[2])
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `expected host:port, got '${s}'`)
  }
  return { host: m[1]!, port }
}

/** The host (IP) of 'host:port' or '[v6]:port'. */
export function hostOf (address: string): string {
  const i = address.lastIndexOf(':')
  const host = i < 0 ? address : address.slice(0, i)
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/** 'host:port', with an IPv6 host in brackets (the inverse of parseHostPort). */
export function joinHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
