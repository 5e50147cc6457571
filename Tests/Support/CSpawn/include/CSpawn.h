#ifndef CSPAWN_H
#define CSPAWN_H
#include <spawn.h>

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34+), which the Swift Glibc
   module does not export: the child closes every descriptor from `from` up. */
int cspawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
