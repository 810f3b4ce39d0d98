// The kernel's inotify ABI: event mask bits (linux/inotify.h, stable since 2.6.13) and the
// parsing of the raw `struct inotify_event` records the addon hands over, one Buffer per wakeup.
import { endianness } from 'node:os'

export const IN_ACCESS = 0x00000001
export const IN_MODIFY = 0x00000002
export const IN_ATTRIB = 0x00000004
export const IN_CLOSE_WRITE = 0x00000008
export const IN_CLOSE_NOWRITE = 0x00000010
export const IN_OPEN = 0x00000020
export const IN_MOVED_FROM = 0x00000040
export const IN_MOVED_TO = 0x00000080
export const IN_CREATE = 0x00000100
export const IN_DELETE = 0x00000200
export const IN_DELETE_SELF = 0x00000400
export const IN_MOVE_SELF = 0x00000800
export const IN_UNMOUNT = 0x00002000
export const IN_Q_OVERFLOW = 0x00004000
export const IN_IGNORED = 0x00008000
export const IN_ONLYDIR = 0x01000000
export const IN_DONT_FOLLOW = 0x02000000
export const IN_EXCL_UNLINK = 0x04000000
export const IN_ISDIR = 0x40000000

/**
 * What each folder watch asks for. Not IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE (reads are no news);
 * IN_ONLYDIR and IN_DONT_FOLLOW so a symlink to a folder is never followed out of the share;
 * IN_EXCL_UNLINK so a deleted file still held open sends nothing more.
 */
export const WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
  IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK

export interface RawEvent {
  wd: number
  mask: number
  cookie: number
  /** The name inside the watched folder; '' for events about the folder itself. */
  name: string
}

/** sizeof(struct inotify_event) without its name: int wd; uint32 mask, cookie, len. */
const HEADER = 16
const LE = endianness() === 'LE'

/** Splits one read()'s bytes into events (the kernel never splits an event across reads). */
export function parseEvents (buf: Buffer): RawEvent[] {
  const out: RawEvent[] = []
  let off = 0
  while (off + HEADER <= buf.length) {
    const wd = LE ? buf.readInt32LE(off) : buf.readInt32BE(off)
    const mask = LE ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4)
    const cookie = LE ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8)
    const len = LE ? buf.readUInt32LE(off + 12) : buf.readUInt32BE(off + 12)
    let end = off + HEADER
    const stop = Math.min(end + len, buf.length)
    while (end < stop && buf[end] !== 0) end++   // the name is NUL-padded to `len`
    out.push({ wd, mask, cookie, name: buf.toString('utf8', off + HEADER, end) })
    off += HEADER + len
  }
  return out
}
