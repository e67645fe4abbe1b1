/* phx-batchd: the statements of its row writes (rows.h). */
#include "daemons/batchd/rows.h"

/* A key already stored for the uid: nothing written, the row not returned
 * (submit.c then reads the job that has it). */
#define JOB_KEYED " ON CONFLICT (uid, submit_key) DO NOTHING RETURNING id::text"

const phx_db_rows_t batchd_job_insert_rows = {
    .one =
        "INSERT INTO jobs (id, " BATCHD_JOB_COLS ") VALUES ($1::bigint, $2, $3::int, "
        "$4::int, $5, $6, $7, $8, $9, 'PENDING', $10, $11::int, $12::jsonb, $13, $14, "
        "$15, $16, $17, $18, $19::int, $20::int, $21::int, $22::int, $23::int, "
        "$24::int, $25::bigint, $26::bigint, $27::boolean, $28::boolean, "
        "to_timestamp($29::bigint), to_timestamp($30::bigint), "
        "to_timestamp($31::bigint), $32, $33)" JOB_KEYED,
    .many =
        "INSERT INTO jobs (id, " BATCHD_JOB_COLS ") SELECT u.id, u.name, u.uid, u.gid, "
        "u.un, u.gn, u.acct, u.part, u.qos, 'PENDING', u.reason, u.nice, u.spec, "
        "u.script, u.wd, u.sd, u.sl, u.sh, u.dep, u.tl, u.nmin, u.nmax, u.nt, "
        "u.tpn, u.cpt, u.mpn, u.mpc, u.ex, u.rq, to_timestamp(u.bt), "
        "to_timestamp(u.el), to_timestamp(u.sub), u.key, u.digest "
        "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], "
        "$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], "
        "$12::jsonb[], $13::text[], $14::text[], $15::text[], $16::text[], "
        "$17::text[], $18::text[], $19::int[], $20::int[], $21::int[], $22::int[], "
        "$23::int[], $24::int[], $25::bigint[], $26::bigint[], $27::boolean[], "
        "$28::boolean[], $29::bigint[], $30::bigint[], $31::bigint[], $32::text[], "
        "$33::text[]) "
        "AS u (id, name, uid, gid, un, gn, acct, part, qos, reason, nice, spec, "
        "script, wd, sd, sl, sh, dep, tl, nmin, nmax, nt, tpn, cpt, mpn, mpc, ex, "
        "rq, bt, el, sub, key, digest)" JOB_KEYED,
    .nparams = 33,
    .nkeys = 1,
    .returns = true,
};

const phx_db_rows_t batchd_job_state_rows = {
    .one = "UPDATE jobs SET state = $2, reason = $3, priority = $4, "
           "eligible_time = to_timestamp($5::bigint), "
           "start_time = to_timestamp($6::bigint), "
           "end_time = to_timestamp($7::bigint), exit_code = $8, exit_signal = $9, "
           "requeue_count = $10, node_list = coalesce($11, node_list), "
           "alloc_cpus = coalesce($12::int, alloc_cpus), "
           "alloc_nodes = coalesce($13::int, alloc_nodes), "
           "alloc_mem = coalesce($14::bigint, alloc_mem), "
           "tasks_per_node = coalesce($15, tasks_per_node), "
           "run_tasks = $16::jsonb, "
           "framework_id = coalesce($17, framework_id), "
           "batch_task_id = coalesce($18, batch_task_id), "
           "stdout_path = coalesce($19, stdout_path), "
           "stderr_path = CASE WHEN $19::text IS NULL THEN stderr_path ELSE $20 END, "
           "partition = coalesce($21, partition), requeue_asked = $22, "
           "updated_at = now() WHERE id = $1",
    .many =
        "UPDATE jobs SET state = u.state, reason = u.reason, priority = u.priority, "
        "eligible_time = to_timestamp(u.el), start_time = to_timestamp(u.st), "
        "end_time = to_timestamp(u.en), exit_code = u.ec, exit_signal = u.es, "
        "requeue_count = u.rq, node_list = coalesce(u.nl, jobs.node_list), "
        "alloc_cpus = coalesce(u.cpus, jobs.alloc_cpus), "
        "alloc_nodes = coalesce(u.nn, jobs.alloc_nodes), "
        "alloc_mem = coalesce(u.mem, jobs.alloc_mem), "
        "tasks_per_node = coalesce(u.tpn, jobs.tasks_per_node), "
        "run_tasks = u.tasks, "
        "framework_id = coalesce(u.fw, jobs.framework_id), "
        "batch_task_id = coalesce(u.bt, jobs.batch_task_id), "
        "stdout_path = coalesce(u.so, jobs.stdout_path), "
        "stderr_path = CASE WHEN u.so IS NULL THEN jobs.stderr_path ELSE u.se END, "
        "partition = coalesce(u.part, jobs.partition), requeue_asked = u.rqa, "
        "updated_at = now() "
        "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], "
        "$5::bigint[], $6::bigint[], $7::bigint[], $8::int[], $9::int[], $10::int[], "
        "$11::text[], $12::int[], $13::int[], $14::bigint[], $15::text[], "
        "$16::jsonb[], $17::text[], $18::text[], $19::text[], $20::text[], "
        "$21::text[], $22::text[]) "
        "AS u (id, state, reason, priority, el, st, en, ec, es, rq, nl, cpus, nn, "
        "mem, tpn, tasks, fw, bt, so, se, part, rqa) WHERE jobs.id = u.id",
    .nparams = 22,
    .nkeys = 1,
};

#define STEP_SET                                                                       \
    " ON CONFLICT (job_id, step_id) DO UPDATE SET state = EXCLUDED.state, "            \
    "start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, "                 \
    "node_list = EXCLUDED.node_list, alloc_cpus = EXCLUDED.alloc_cpus, "               \
    "exit_code = EXCLUDED.exit_code, exit_signal = EXCLUDED.exit_signal, "             \
    "user_cpu_s = EXCLUDED.user_cpu_s, system_cpu_s = EXCLUDED.system_cpu_s, "         \
    "max_rss_bytes = EXCLUDED.max_rss_bytes"

const phx_db_rows_t batchd_batch_step_rows = {
    .one = "INSERT INTO job_steps (job_id, step_id, name, state, start_time, end_time, "
           "ntasks, nnodes, node_list, alloc_cpus, exit_code, exit_signal, user_cpu_s, "
           "system_cpu_s, max_rss_bytes) VALUES ($1, 'batch', 'batch', $2, "
           "to_timestamp($3::bigint), to_timestamp($4::bigint), 1, 1, $5, $6::int, "
           "$7::int, $8::int, $9::float8, $10::float8, $11::bigint)" STEP_SET,
    .many =
        "INSERT INTO job_steps (job_id, step_id, name, state, start_time, end_time, "
        "ntasks, nnodes, node_list, alloc_cpus, exit_code, exit_signal, user_cpu_s, "
        "system_cpu_s, max_rss_bytes) SELECT u.id, 'batch', 'batch', u.state, "
        "to_timestamp(u.st), to_timestamp(u.en), 1, 1, u.nl, u.cpus, u.ec, u.es, "
        "u.ucpu, u.scpu, u.rss FROM unnest($1::bigint[], $2::text[], $3::bigint[], "
        "$4::bigint[], $5::text[], $6::int[], $7::int[], $8::int[], $9::float8[], "
        "$10::float8[], $11::bigint[]) AS u (id, state, st, en, nl, cpus, ec, es, "
        "ucpu, scpu, rss)" STEP_SET,
    .nparams = 11,
    .nkeys = 1,
};
