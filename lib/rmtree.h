/* Removing a tree that someone else may be changing, as root: never by path.
 *
 * The agent removes trees that belong to its users (step directories,
 * task output folders), who may have planted symbolic links or hard links
 * in them, swap a directory for a link while the removal walks, or keep
 * creating files.  So each directory is opened with O_NOFOLLOW relative to
 * its already-open parent and names are unlinked relative to it: a link is
 * removed, never followed, and the removal never leaves the tree.  Each
 * directory is read at most PHX_RMTREE_PASSES times (a user adding files
 * as fast as they go cannot keep the caller busy), and trees deeper than
 * PHX_RMTREE_MAX_DEPTH are left (each level holds a descriptor). */
#ifndef PHX_RMTREE_H
#define PHX_RMTREE_H

#define PHX_RMTREE_MAX_DEPTH 64
#define PHX_RMTREE_PASSES    3

/* Remove entry name of the open directory parent and everything below it:
 * 0 (ENOENT counts as removed), or -1 with errno for the first thing that
 * could not be removed (ELOOP: deeper than PHX_RMTREE_MAX_DEPTH). */
int phx_rmtree_at(int parent, const char *name);

/* Tests only: called just before a directory is opened, where a racing user
 * would swap it for a symbolic link. */
extern void (*phx_rmtree_race_hook)(int parent, const char *name);

#endif
