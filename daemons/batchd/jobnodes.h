/* A job's choice of nodes by name and feature: -w/--nodelist,
 * -x/--exclude, -C/--constraint (doc/jobs.md, "Choosing nodes").  Pure
 * functions: the spec's text checked and made canonical at finalize, a
 * constraint compiled against the site's feature names (features.c). */
#ifndef PHX_BATCHD_JOBNODES_H
#define PHX_BATCHD_JOBNODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobspec.h"
#include "lib/error.h"

/* Most names a -w or -x list expands to, most characters in -C. */
#define PHX_JOBNODES_MAX    65536
#define PHX_CONSTRAINT_TEXT 1024
/* Most AND terms a constraint may come to (its OR of ANDs), most feature
 * names a site may define (a node's features are a 64-bit mask). */
#define PHX_CONSTRAINT_TERMS 64
#define PHX_FEATURES_MAX     64

/* -w, -x and -C of s, before its node count is filled: the lists expanded,
 * checked and written back compressed (duplicates dropped); -w sets -N to
 * the number of nodes it names (a smaller -N is raised to it, as sbatch
 * does; a larger one is refused: other nodes are never added); a node in
 * both lists is refused; -C is parsed (its names are checked against the
 * site's at submit).  0, or -1 with err and *field the offset in
 * phx_jobspec_t of the option at fault. */
int phx_jobnodes_finalize(phx_jobspec_t *s, size_t *field, phx_error_t *err);

/* A constraint: "a", "a&b", "a|b", parentheses; '&' binds closer than
 * '|'.  Compiled into an OR of AND terms, each a mask of feature bits:
 * a node matches when it has every feature of one term.  names: the
 * site's feature names (bit i: names[i]); NULL checks the syntax only.
 * 0 with terms[0 .. *nterms) filled, or -1 with err naming the fault. */
int phx_constraint_compile(const char *text, const char *const *names, size_t nnames,
                           uint64_t terms[PHX_CONSTRAINT_TERMS], size_t *nterms,
                           phx_error_t *err);
bool phx_constraint_match(const uint64_t *terms, size_t nterms, uint64_t features);
/* 1 to 64 letters, digits, '_', '-' or '.': a feature name's syntax. */
bool phx_feature_name_ok(const char *s, size_t len);

#endif
