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
