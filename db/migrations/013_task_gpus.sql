-- The GPUs of a task (doc/scheduler-api.md, "GPUs"): device ids of its
-- agent's topology (topology/topo.h), in list format as cores ("0-1,3"),
-- '' for none.  The master writes them with the task in its gang's
-- transaction and allocates them again, with the task's cores, when it
-- recovers the live tasks at start-up.  Rows of tasks launched before
-- this have none.
--
-- Who may do what is unchanged (004): the master writes tasks.

ALTER TABLE tasks ADD COLUMN gpus text NOT NULL DEFAULT '';

COMMENT ON COLUMN tasks.gpus IS 'GPU device ids of the task''s agent topology, list format; '''' for none';
