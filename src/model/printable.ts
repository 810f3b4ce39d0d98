// Owns turning strings that may come from a peer (share ids, paths, ERROR messages, addresses)
// into text that is safe on one log line: no control characters (a newline or an ANSI escape
// could forge log lines or rewrite the terminal), no invisible line or bidi-override characters,
// and a bounded length.

/** Default cap for one remote string inside a log line. */
export const MAX_PRINTABLE_CHARS = 256

// C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings, overrides and isolates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escapeChar (c: string): string {
  const named = NAMED[c]
  if (named !== undefined) return named
  const code = c.charCodeAt(0)
  return code <= 0xff ? '\\x' + code.toString(16).padStart(2, '0') : '\\u' + code.toString(16).padStart(4, '0')
}

/**
 * `s` with unsafe characters escaped (\n, \x1b, \u202e, ...) and cut to `max` characters of
 * input, with a note of how many were cut. Backslashes are left alone, so local Windows-style
 * paths stay readable; an escape sequence in the output is therefore text, never a control.
 */
export function printable (s: unknown, max = MAX_PRINTABLE_CHARS): string {
  let str = typeof s === 'string' ? s : String(s)
  let cut = 0
  if (str.length > max) {
    let end = max
    // Do not split a surrogate pair.
    const code = str.charCodeAt(end - 1)
    if (code >= 0xd800 && code <= 0xdbff) end--
    cut = str.length - end
    str = str.slice(0, end)
  }
  const out = str.replace(UNSAFE, escapeChar)
  return cut > 0 ? `${out}…(${cut} more chars)` : out
}
