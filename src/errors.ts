// The one error type of the project. `code` is a stable string that callers,
// tests and the CLI switch on; `message` is the one line a human reads.

export type SwarmErrorCode =
  | 'ERR_BAD_ARGUMENT'       // invalid CLI flag or API argument
  | 'ERR_CONFIG'             // a bad config file or secret file (missing, unreadable, unknown key, wrong type)
  | 'ERR_NOT_A_DIRECTORY'    // a shared folder is missing or not a directory
  | 'ERR_STATE_DIR'          // state dir cannot be created or written
  | 'ERR_ADDRESS_IN_USE'     // the listen port is taken
  | 'ERR_DIAL_FAILED'        // a peer could not be reached
  | 'ERR_AUTH_FAILED'        // a peer did not prove the cluster secret
  | 'ERR_PEER_NOT_ALLOWED'   // a peer is not on the allow-list
  | 'ERR_PROTOCOL'           // a peer sent a malformed or hostile message
  | 'ERR_BAD_PATH'           // a path that would escape the share (.., absolute, NUL, symlink)
  | 'ERR_VERIFY_FAILED'      // data did not match its Merkle hash
  | 'ERR_FILE_CHANGED'       // a file changed while it was being read
  | 'ERR_NO_SPACE'           // disk full while receiving
  | 'ERR_NOT_EMPTY'          // a folder that still holds files is in the way of a file
  | 'ERR_LOCKED'             // another process is using this state dir
  | 'ERR_CLOSED'             // the object was closed
  | 'ERR_TIMEOUT'            // an operation took too long
  | 'ERR_NO_DAEMON'          // no node is running for this state dir (control socket absent)
  | 'ERR_UNKNOWN_NAME'       // no such name (or root) in the catalog
  | 'ERR_NO_HOLDER'          // no online node holds (all of) the content
  | 'ERR_EXISTS'             // the destination exists (pass --force / force: true)
  | 'ERR_WATCH_LIMIT'        // the kernel's inotify limit (fs.inotify.max_user_watches / max_user_instances) is reached
  | 'ERR_INTERNAL'           // a bug: an error that is not one of these (the control socket reports it so)
  | 'ERR_ABORTED'            // the caller aborted (AbortSignal, Ctrl-C); an interrupted get resumes

export class SwarmError extends Error {
  readonly code: SwarmErrorCode
  constructor (code: SwarmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'SwarmError'
  }
}

export function isSwarmError (err: unknown, code?: SwarmErrorCode): err is SwarmError {
  return err instanceof SwarmError && (code === undefined || err.code === code)
}
