// Test helpers for the real `swarm` process: run a command to completion, or start a node and
// collect its --json lines, and find a free UDP port for --listen.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import * as dgram from 'node:dgram'

export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
export type Event = Record<string, unknown>

/** Starts `swarm <args>`, keeping its output and the JSON lines in it; stop() sends SIGTERM and resolves with the exit code. */
export function start (args: string[], cwd: string) {
  const proc: ChildProcess = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const events: Event[] = []
  let stderr = ''
  let stdout = ''
  proc.stderr!.on('data', d => { stderr += d })
  proc.stdout!.on('data', d => { stdout += d })
  createInterface({ input: proc.stdout! }).on('line', l => { try { events.push(JSON.parse(l)) } catch {} })
  const until = async (cond: () => boolean, ms = 20_000) => {
    const end = Date.now() + ms
    while (!cond()) {
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`timed out; stderr: ${stderr}`)
      await new Promise(r => setTimeout(r, 20))
    }
  }
  const stop = async () => {
    if (proc.exitCode !== null) return proc.exitCode
    proc.kill('SIGTERM')
    return await new Promise<number | null>(r => proc.once('exit', r))
  }
  return { events, until, stop, stdout: () => stdout, stderr: () => stderr }
}

export function run (args: string[], cwd?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, cwd })
}

export async function freeUdpPort (): Promise<number> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const port = sock.address().port
  await new Promise<void>(resolve => sock.close(() => resolve()))
  return port
}

