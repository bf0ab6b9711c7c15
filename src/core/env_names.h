/*
 * env_names.h - the environment variable names a workspace or a variable
 * set may not give a run: the names Terrace sets itself for every run,
 * and names that change how programs are loaded or start (the dynamic
 * loader's, the C library's, shells' and interpreters' start-up hooks).
 *
 * The API refuses such names when an environment variable is created or
 * changed; the executor drops them from variables already stored.  One
 * function decides for both, so they cannot disagree.  Terraform-category
 * variables are not environment variables and are never checked.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_ENV_NAMES_H
#define TR_ENV_NAMES_H

#include <stdbool.h>

/* True if name may not be an environment variable of a run.  Names are
 * compared exactly (the loader and shells are case-sensitive).  When
 * refused and why is not NULL, *why gets a static, lower-case phrase
 * that completes "NAME cannot be an environment variable: ", such as
 * "it is set by Terrace for every run".  Thread-safe; no allocation. */
bool env_name_refused(const char *name, const char **why);

#endif
