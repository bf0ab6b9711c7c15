/*
 * fault.h - fault injection: make the Nth call at a named site fail.
 *
 * Wrappers around the store, the blob store, the HTTP client and files
 * call fault_hit("site") on entry and, when it returns true, fail the way
 * a real failure would (same code, same cleanup).  Tests arm one site at a
 * time and walk N over an operation, expecting a clean error and no leak
 * (STYLE.md rule 13).
 *
 * Sites: "db.query" (db_query: TR_ERR_DB), "blob.put" (blob_put and
 * blob_put_file: TR_ERR_IO), "run.autoqueue" (the run a configuration
 * upload queues: TR_ERR_DB, as a full disk fails it), "auth.lookup" (the
 * token lookup of an authenticated request: TR_ERR_DB), "blob.written"
 * (an object was stored but its caller has not yet recorded it: blob.c
 * answers TR_ERR_IO as if the write's acknowledgement was lost),
 * "run.trigger" (an apply was recorded and its run triggers have not
 * fired yet: the firing stops there, left to the reaper's sweep),
 * "rekey.check" (terrace admin rekey is about to hand an object's last
 * sealed bytes to the backend: TR_ERR_IO, so the put is abandoned),
 * "log.appended" (a job's log chunk was stored: job_service.c answers
 * TR_ERR_UNAVAILABLE as if the acknowledgement was lost),
 * "read_cache.poll" (a read cache's poll of the change records fails:
 * the requests waiting on it read the database), "executor.late_json" (an
 * auto-apply run's apply was reported finished and the JSON plan its
 * apply makes afterwards is not begun: none is made, as when show -json
 * fails).
 *
 * A daemon under test is armed from its environment: TERRACE_FAULT=
 * "site:n" (read once by terraced, and by terrace admin rekey, at start;
 * logged as a warning), so
 * API tests can make a real request fail the way a real failure would.
 * "site:n:kill" kills the process with SIGKILL at that call instead, for
 * crash tests (a crash between two steps at an exact point).
 *
 * Always compiled in.  Disarmed, fault_hit() costs one relaxed atomic
 * load.  The armed state is process-wide (the one exception to the single
 * server struct, since it belongs to tests, not to a server) and guarded by
 * a mutex, so armed sites may be hit from any thread.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_FAULT_H
#define TR_FAULT_H

#include <stdbool.h>

/* True when this is the armed Nth call (1-based) at site since fault_arm().
 * Exactly one call fails; later calls succeed again. */
bool fault_hit(const char *site);

/* Arms site so that its nth call from now fails (n >= 1).  Replaces any
 * earlier arming and zeroes the counters. */
void fault_arm(const char *site, int n);

/* Arms from a "site:n" or "site:n:kill" spec (n >= 1); false if spec
 * is malformed. */
bool fault_arm_spec(const char *spec);

/* Disarms and zeroes the counters. */
void fault_reset(void);

/* Calls seen at the armed site since fault_arm(), and whether the fault
 * has fired; tests walk N upwards until a run ends without firing. */
int fault_calls(void);
bool fault_fired(void);

#endif
