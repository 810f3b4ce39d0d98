// Linux inotify for Node, as small as it can be: one inotify fd per watcher, polled by a uv_poll_t
// on Node's own event loop (no thread). When the fd is readable, every pending event is read
// (up to MAX_BYTES_PER_WAKEUP) and handed to JavaScript as ONE Buffer of raw struct inotify_event
// records; parsing, cookie pairing and path bookkeeping live in src/watch/ (TypeScript).
//
// JS API (all functions take the handle returned by open):
//   open(callback(err, buffer)) -> handle     the poll handle starts unref'd: it never keeps the process alive
//   addWatch(handle, path, mask) -> wd        throws an Error with code 'E...' (errno name), errno, syscall, path
//   rmWatch(handle, wd) -> boolean            false if the kernel had already dropped the watch (EINVAL)
//   setRef(handle, bool)                      keep the process alive while open (true) or not (false)
//   close(handle)                             idempotent; also done by an async env cleanup hook and by GC
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

// One read() asks for this much; a wakeup reads at most MAX_BYTES_PER_WAKEUP so that a flood of
// events cannot hold the event loop: the fd stays readable and the next loop turn reads on.
#define READ_CHUNK (64 * 1024)
#define MAX_BYTES_PER_WAKEUP (1024 * 1024)

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  napi_ref callback;
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle cleanup_hook;
  int closing;        // uv_close was called (or the fd never got a poll handle)
  int closed;         // uv_close's callback ran: the handle memory may go
  int js_gone;        // the JS handle (external) was finalized
  char* buf;          // grows to hold one wakeup's events
  size_t cap;
} watcher_t;

#define CHECK(env, call)                                              \
  do {                                                                \
    if ((call) != napi_ok) { throw_last(env, #call); return NULL; }   \
  } while (0)

static void throw_last (napi_env env, const char* what) {
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  napi_throw_error(env, "ERR_NATIVE", info != NULL && info->error_message != NULL ? info->error_message : what);
}

static void maybe_free (watcher_t* w) {
  if (w->closed && w->js_gone) {
    free(w->buf);
    free(w);
  }
}

static void on_closed (uv_handle_t* h) {
  watcher_t* w = (watcher_t*)h->data;
  if (w->fd >= 0) { close(w->fd); w->fd = -1; }
  if (w->cleanup_hook != NULL) {
    napi_remove_async_cleanup_hook(w->cleanup_hook);
    w->cleanup_hook = NULL;
  }
  w->closed = 1;
  maybe_free(w);
}

// Stops polling, drops the JS callback and closes the handle (the fd goes in on_closed).
static void start_close (watcher_t* w) {
  if (w->closing) return;
  w->closing = 1;
  if (w->callback != NULL) { napi_delete_reference(w->env, w->callback); w->callback = NULL; }
  if (w->async_ctx != NULL) { napi_async_destroy(w->env, w->async_ctx); w->async_ctx = NULL; }
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t*)&w->poll, on_closed);
}

// Node is tearing the environment down (worker exit, process exit): close before the loop goes.
static void on_env_cleanup (napi_async_cleanup_hook_handle handle, void* arg) {
  (void)handle;
  start_close((watcher_t*)arg);
}

static void on_finalize (napi_env env, void* data, void* hint) {
  (void)env; (void)hint;
  watcher_t* w = (watcher_t*)data;
  w->js_gone = 1;
  start_close(w);
  maybe_free(w);
}

// Calls callback(err, buffer) from the loop, with Node's async context (microtasks run after it).
static void deliver (watcher_t* w, int errcode, const char* data, size_t len) {
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  if (w->callback == NULL || napi_get_reference_value(env, w->callback, &cb) != napi_ok || cb == NULL) goto out;
  napi_get_global(env, &recv);   // MakeCallback needs an object receiver
  if (errcode != 0) {
    napi_value code, msg;
    napi_create_string_utf8(env, uv_err_name(-errcode), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(errcode), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &argv[0]);
    napi_get_undefined(env, &argv[1]);
  } else {
    void* copy = NULL;
    napi_get_null(env, &argv[0]);
    if (napi_create_buffer_copy(env, len, data, &copy, &argv[1]) != napi_ok) goto out;
  }
  if (napi_make_callback(env, w->async_ctx, recv, cb, 2, argv, &result) == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
out:
  napi_close_handle_scope(env, scope);
}

static void on_readable (uv_poll_t* h, int status, int events) {
  (void)events;
  watcher_t* w = (watcher_t*)h->data;
  if (w->closing) return;
  if (status < 0) { deliver(w, -status, NULL, 0); return; }
  size_t len = 0;
  int err = 0;
  while (len < MAX_BYTES_PER_WAKEUP) {
    if (w->cap - len < READ_CHUNK) {
      size_t cap = w->cap * 2 < len + READ_CHUNK ? len + READ_CHUNK : w->cap * 2;
      char* nb = realloc(w->buf, cap);
      if (nb == NULL) { err = ENOMEM; break; }
      w->buf = nb;
      w->cap = cap;
    }
    ssize_t n = read(w->fd, w->buf + len, READ_CHUNK);
    if (n > 0) { len += (size_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
    break;
  }
  if (len > 0) deliver(w, 0, w->buf, len);
  if (err != 0 && !w->closing) deliver(w, err, NULL, 0);
}

static watcher_t* get_watcher (napi_env env, napi_value v) {
  void* data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not an inotify handle");
    return NULL;
  }
  watcher_t* w = (watcher_t*)data;
  if (w->closing) { napi_throw_error(env, "ERR_CLOSED", "inotify handle is closed"); return NULL; }
  return w;
}

// Throws an Error like Node's own: message "<syscall> <path>: <strerror>", code, errno (negative), syscall, path.
static void throw_errno (napi_env env, int errnum, const char* syscall, const char* path) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s%s%s", uv_err_name(-errnum), strerror(errnum), path != NULL ? ", " : "", path != NULL ? path : "");
  napi_value code, text, err, v;
  napi_create_string_utf8(env, uv_err_name(-errnum), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  if (napi_create_error(env, code, text, &err) != napi_ok) { napi_throw_error(env, NULL, msg); return; }
  napi_create_int32(env, -errnum, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  if (path != NULL) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "path", v);
  }
  napi_throw(env, err);
}

static napi_value js_open (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle, name;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[0], &t));
  if (argc < 1 || t != napi_function) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "open(callback): callback must be a function"); return NULL; }
  uv_loop_t* loop = NULL;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, "inotify_init1", NULL); return NULL; }
  watcher_t* w = calloc(1, sizeof *w);
  if (w == NULL) { close(fd); throw_errno(env, ENOMEM, "inotify_init1", NULL); return NULL; }
  w->env = env;
  w->fd = fd;
  w->poll.data = w;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) { close(fd); free(w); throw_errno(env, -rc, "uv_poll_init", NULL); return NULL; }
  // From here on the handle exists: every failure goes through start_close, which closes it.
  w->js_gone = 1;   // until the external owns it
  napi_status st = napi_create_reference(env, argv[0], 1, &w->callback);
  if (st == napi_ok) st = napi_create_string_utf8(env, "swarm:inotify", NAPI_AUTO_LENGTH, &name);
  if (st == napi_ok) st = napi_async_init(env, NULL, name, &w->async_ctx);
  if (st == napi_ok) st = napi_add_async_cleanup_hook(env, on_env_cleanup, w, &w->cleanup_hook);
  if (st == napi_ok) st = napi_create_external(env, w, on_finalize, NULL, &handle);
  if (st != napi_ok) { throw_last(env, "open"); start_close(w); return NULL; }
  w->js_gone = 0;
  rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (rc != 0) { start_close(w); throw_errno(env, -rc, "uv_poll_start", NULL); return NULL; }
  // A share's watcher must not keep the process alive (like fs.watch's persistent: false).
  uv_unref((uv_handle_t*)&w->poll);
  return handle;
}

static napi_value js_add_watch (napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "addWatch(handle, path, mask)"); return NULL; }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  size_t len = 0;
  CHECK(env, napi_get_value_string_utf8(env, argv[1], NULL, 0, &len));
  char* path = malloc(len + 1);
  if (path == NULL) { throw_errno(env, ENOMEM, "inotify_add_watch", NULL); return NULL; }
  uint32_t mask = 0;
  if (napi_get_value_string_utf8(env, argv[1], path, len + 1, &len) != napi_ok || napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    free(path);
    throw_last(env, "addWatch arguments");
    return NULL;
  }
  if (strlen(path) != len) { free(path); throw_errno(env, EINVAL, "inotify_add_watch", NULL); return NULL; }   // embedded NUL
  int wd = inotify_add_watch(w->fd, path, mask);
  if (wd < 0) { throw_errno(env, errno, "inotify_add_watch", path); free(path); return NULL; }
  free(path);
  CHECK(env, napi_create_int32(env, wd, &out));
  return out;
}

static napi_value js_rm_watch (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "rmWatch(handle, wd)"); return NULL; }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  int32_t wd = 0;
  CHECK(env, napi_get_value_int32(env, argv[1], &wd));
  int rc = inotify_rm_watch(w->fd, wd);
  if (rc < 0 && errno != EINVAL) { throw_errno(env, errno, "inotify_rm_watch", NULL); return NULL; }
  CHECK(env, napi_get_boolean(env, rc == 0, &out));
  return out;
}

static napi_value js_set_ref (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setRef(handle, bool)"); return NULL; }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  bool on = false;
  CHECK(env, napi_get_value_bool(env, argv[1], &on));
  if (on) uv_ref((uv_handle_t*)&w->poll); else uv_unref((uv_handle_t*)&w->poll);
  return NULL;
}

static napi_value js_close (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void* data = NULL;
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[0], &t));
  if (argc < 1 || t != napi_external) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "close(handle)"); return NULL; }
  CHECK(env, napi_get_value_external(env, argv[0], &data));
  start_close((watcher_t*)data);
  return NULL;
}

static napi_value init (napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "addWatch", NULL, js_add_watch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "rmWatch", NULL, js_rm_watch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setRef", NULL, js_set_ref, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    throw_last(env, "define exports");
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
