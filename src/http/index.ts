// Owns the one call the CLI and library users make: serve a running node's metrics, status page,
// status JSON and live events on an opt-in TCP address (server.ts, metrics.ts, page.ts).
import type { SwarmNode } from '../node/node.js'
import { startHttpServer, type HttpServer } from './server.js'
import { createMetrics } from './metrics.js'

export { startHttpServer, type HttpServer } from './server.js'
export { createMetrics, type NodeMetrics } from './metrics.js'

/** Starts the HTTP listener for `node` on `listen` ('host:port'); rejects with ERR_ADDRESS_IN_USE if taken. */
export async function serveNodeHttp (node: SwarmNode, listen: string): Promise<HttpServer> {
  const metrics = createMetrics(node)
  const log = (level: 'info' | 'warn' | 'error', message: string) => node.log(level, message)
  let server: HttpServer
  try {
    server = await startHttpServer({ status: () => node.status(), metrics: async () => ({ contentType: metrics.contentType, text: await metrics.text() }) }, listen, log)
  } catch (err) { metrics.close(); throw err }
  log('info', `metrics and status page at http://${server.address}/`)
  return {
    address: server.address,
    close: async () => { await server.close(); metrics.close() }
  }
}
