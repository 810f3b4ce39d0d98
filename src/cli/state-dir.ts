// Where a node keeps its identity and index when --state is not given.
import { homedir } from 'node:os'
import { join } from 'node:path'

export function defaultStateDir (): string {
  return process.env.SWARM_STATE ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'swarm')
}
