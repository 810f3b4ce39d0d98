// Owns the names of a share's replication modes, shared by the CLI, the config file, the library
// API and the sync layer (Syncthing's folder types, under the names rsync users would guess).
//
//   send-receive  local changes go out, remote changes come in (the default)
//   send-only     local changes go out; remote changes are not applied to this folder
//   receive-only  remote changes come in; local changes never leave this node

export const SHARE_MODES = ['send-receive', 'send-only', 'receive-only'] as const
export type ShareMode = typeof SHARE_MODES[number]
export const DEFAULT_SHARE_MODE: ShareMode = 'send-receive'

export function isShareMode (v: unknown): v is ShareMode {
  return typeof v === 'string' && (SHARE_MODES as readonly string[]).includes(v)
}
