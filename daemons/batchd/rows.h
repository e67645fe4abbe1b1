/* phx-batchd: the statements of its row writes (phx_db_store_write_row), each
 * in two forms, one row and many (arrays read with unnest), which must write
 * the same rows (tests/unit/test_batch_rows.c checks them against the
 * migrations).  Parameters are texts, NULL for SQL NULL; times are seconds
 * since the epoch. */
#ifndef PHX_BATCHD_ROWS_H
#define PHX_BATCHD_ROWS_H

#include "db/store.h"

/* The columns a submission writes besides its id (and an array's ids). */
#define BATCHD_JOB_COLS                                                                \
    "name, uid, gid, user_name, group_name, account, partition, qos, state, reason, "  \
    "nice, spec, script, work_dir, submit_dir, submit_line, submit_host, dependency, " \
    "time_limit, nodes_min, nodes_max, ntasks, ntasks_per_node, cpus_per_task, "       \
    "mem_per_node, mem_per_cpu, exclusive, requeue, begin_time, eligible_time, "       \
    "submit_time, submit_key, submit_digest"

/* A new single job (PENDING): $1 id, then the columns of BATCHD_JOB_COLS
 * but state: $2 name, $3 uid, $4 gid, $5 user_name, $6 group_name, $7
 * account, $8 partition, $9 qos, $10 reason, $11 nice, $12 spec (JSON), $13
 * script, $14 work_dir, $15 submit_dir, $16 submit_line, $17 submit_host, $18
 * dependency, $19 time_limit, $20 nodes_min, $21 nodes_max, $22 ntasks, $23
 * ntasks_per_node, $24 cpus_per_task, $25 mem_per_node, $26 mem_per_cpu, $27
 * exclusive, $28 requeue, $29 begin_time, $30 eligible_time, $31 submit_time,
 * $32 submit_key, $33 submit_digest (NULL: none).  A returning kind: a row
 * whose uid already has its submit_key is not written (the callback's
 * nresults is 0, else 1). */
extern const phx_db_rows_t batchd_job_insert_rows;

/* A job's state and allocation: $1 id, $2 state, $3 reason, $4 priority, $5
 * eligible_time, $6 start_time, $7 end_time, $8 exit_code, $9 exit_signal,
 * $10 requeue_count; NULL keeps the value: $11 node_list, $12 alloc_cpus, $13
 * alloc_nodes, $14 alloc_mem, $15 tasks_per_node; $16 run_tasks (JSON
 * array); NULL keeps: $17 framework_id, $18 batch_task_id,
 * $19 stdout_path (with $20 stderr_path, NULL: with stdout); NULL keeps:
 * $21 partition; $22 requeue_asked (batchd_requeue_name, NULL: none). */
extern const phx_db_rows_t batchd_job_state_rows;

/* A job's batch step (inserted or updated): $1 job id, $2 state, $3
 * start_time, $4 end_time, $5 node, $6 alloc_cpus, $7 exit_code, $8
 * exit_signal, $9 user_cpu_s, $10 system_cpu_s, $11 max_rss_bytes. */
extern const phx_db_rows_t batchd_batch_step_rows;

#endif
