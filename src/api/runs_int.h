/*
 * runs_int.h - what the run API files share: runs.c (create, read, list,
 * the documents), run_actions.c (actions, comments, events, task stages,
 * policy checks, cost estimates), plans_applies.c and run_logs.c.
 *
 * Internal to src/api; other modules use api.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_RUNS_INT_H
#define TR_API_RUNS_INT_H

#include "api/api.h"
#include "domain/run.h"

/* Seconds a log-read-url stays valid (a phase may run for hours). */
#define API_LOG_URL_TTL (25 * 3600)

/* {"data": {"id": id, "type": type}} or {"data": null}. */
json_t *api_rel(const char *type, const char *id);

/* The run resource object written into j, the one serializer of a run;
 * full adds the relationships that cost a query each (comments), for
 * single-run responses. */
void api_run_write(struct http_req *r, struct jw *j, const struct st_run *run,
                   bool full);
/* The same as a tree (new reference): api_run_write()'s text, parsed. */
json_t *api_run_json(struct http_req *r, const struct st_run *run, bool full);

/* Answers {"data": <run>} with status (after a transition: the run read
 * again). */
void api_run_reply(struct http_req *r, int status, const char *id);

/* The plan or apply resource object (plans_applies.c). */
json_t *api_phase_json(struct http_req *r, const struct st_phase *p);

/* The signed, token-free URL from which a phase's log is read
 * (run_logs.c). */
char *api_log_read_url(struct http_req *r, const char *phase_id);

/* Loads the plan or apply `id` and its run if the caller may see the
 * workspace; otherwise writes 404. */
bool api_phase_access(struct http_req *r, const char *id, struct st_phase *p,
                      struct st_run *run);

/* The user resource object for include=created_by / actor (runs.c). */
json_t *api_run_user_json(struct http_req *r, const char *user_id);

/* Maps a domain error: TR_ERR_CONFLICT becomes TFE's 409 "transition not
 * allowed"; others as api_store_fail(). */
void api_run_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb);

/* A request for a plan's JSON plan (plans_applies.c), parked while the
 * JSON plan is on its way (json_wait.c). */
struct api_json_want {
    struct st_phase plan;
    bool redacted;       /* json-output-redacted */
    int64_t deadline_ms; /* unix ms: answered as things stand then (JSON
                            plans come no later than their apply's end
                            and a minute) */
};

/* Answers with p's JSON plan (redacted or not), or 404 saying why not;
 * ended: the apply that was to make it has ended (it will not come). */
void api_json_answer(struct http_req *r, const struct st_phase *p,
                     bool redacted, bool ended);
/* http_suspend()'s park for a struct api_json_want (json_wait.c). */
void api_json_wait_park(struct http_req *r, void *arg);

#endif
