#include <stdio.h>
#include <histedit.h>
// el_set / el_get / history() are variadic: Swift cannot call them.
typedef const char *(*cedit_prompt_fn)(EditLine *);
typedef unsigned char (*cedit_cmd_fn)(EditLine *, int);
static inline int cedit_set_prompt(EditLine *e, cedit_prompt_fn f) { return el_set(e, EL_PROMPT, f); }
static inline int cedit_set_editor(EditLine *e, const char *mode) { return el_set(e, EL_EDITOR, mode); }
static inline int cedit_set_hist(EditLine *e, History *h) { return el_set(e, EL_HIST, history, h); }
static inline int cedit_add_fn(EditLine *e, const char *name, const char *help, cedit_cmd_fn f) { return el_set(e, EL_ADDFN, name, help, f); }
static inline int cedit_bind(EditLine *e, const char *key, const char *fn) { return el_set(e, EL_BIND, key, fn, NULL); }
static inline int cedit_set_clientdata(EditLine *e, void *data) { return el_set(e, EL_CLIENTDATA, data); }
static inline void *cedit_get_clientdata(EditLine *e) { void *d = NULL; el_get(e, EL_CLIENTDATA, &d); return d; }
static inline int cedit_hist_setsize(History *h, HistEvent *ev, int n) { return history(h, ev, H_SETSIZE, n); }
static inline int cedit_hist_enter(History *h, HistEvent *ev, const char *s) { return history(h, ev, H_ENTER, s); }
static inline int cedit_hist_load(History *h, HistEvent *ev, const char *f) { return history(h, ev, H_LOAD, f); }
static inline int cedit_hist_save(History *h, HistEvent *ev, const char *f) { return history(h, ev, H_SAVE, f); }
static inline int cedit_hist_unique(History *h, HistEvent *ev, int on) { return history(h, ev, H_SETUNIQUE, on); }
// Swift 6 language mode rejects reading C globals (stdin/stdout/stderr): accessors in C.
static inline FILE *cedit_stdin(void) { return stdin; }
static inline FILE *cedit_stdout(void) { return stdout; }
static inline FILE *cedit_stderr(void) { return stderr; }

// --- TelemetryShell additions ---------------------------------------------------------------------------------
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
// EL_SETTY takes a NULL-terminated list. "-d": edit mode only; "-isig": while a line is edited, Ctrl-C reaches the
// key map (bound to the shell's own function) instead of raising SIGINT; queries still get SIGINT.
static inline int cedit_edit_mode_no_isig(EditLine *e) { return el_set(e, EL_SETTY, "-d", "-isig", NULL); }
static inline int cedit_set_addfn_bind(EditLine *e, const char *name, const char *help, cedit_cmd_fn f, const char *key) {
  int rc = el_set(e, EL_ADDFN, name, help, f);
  return rc != 0 ? rc : el_set(e, EL_BIND, key, name, NULL);
}
// fcntl is variadic.
static inline int cedit_set_nonblocking_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
  return fcntl(fd, F_SETFD, FD_CLOEXEC);
}
static inline int cedit_set_cloexec(int fd) { return fcntl(fd, F_SETFD, FD_CLOEXEC); }
// SIGINT → one byte on a pipe; write(2) is async-signal-safe, and the shell's watcher thread does the rest.
// The variable is static: Swift emits one copy per object file that uses these two functions, so call them from
// one Swift file only (TelemetryShell/InterruptWatcher.swift).
static int cedit_sigint_write_fd = -1;
static inline void cedit_sigint_handler(int signo) {
  (void)signo;
  int saved = errno;
  if (cedit_sigint_write_fd >= 0) { char byte = 1; ssize_t n = write(cedit_sigint_write_fd, &byte, 1); (void)n; }
  errno = saved;
}
static inline int cedit_install_sigint(int write_fd) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  cedit_sigint_write_fd = write_fd;
  action.sa_handler = cedit_sigint_handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGINT, &action, NULL);
}
