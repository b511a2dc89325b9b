#include <sqlite3.h>
// SQLITE_TRANSIENT / SQLITE_STATIC are casts of -1/0 to a function pointer: not importable.
static inline sqlite3_destructor_type csqlite_transient(void) { return (sqlite3_destructor_type)-1; }
static inline sqlite3_destructor_type csqlite_static(void) { return (sqlite3_destructor_type)0; }
