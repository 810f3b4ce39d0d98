# Builds native/inotify.c (the Linux inotify watcher, see native/README.md) into
# build/Release/swarm_inotify.node. npm runs `node-gyp rebuild` for a package with this file at
# its root; package.json's install script does that itself so a failed build never fails the
# install (the watcher then falls back to chokidar). On other systems the target is empty.
{
  "targets": [
    {
      "target_name": "swarm_inotify",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/inotify.c"],
          "cflags": ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
        }]
      ]
    }
  ]
}
