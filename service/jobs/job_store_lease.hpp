#pragma once
// How the job store picks and leases a task, per database (internal to sql_job_store.cpp; each runs
// inside the caller's write transaction). The rule is the same on both: the first QUEUED task in
// lease order (lease_order.hpp) of a QUEUED or RUNNING run, past its not_before, whose dependencies
// are COMPLETE, whose requirements the worker's capabilities meet (capabilities_satisfy,
// task_graph.hpp) and whose lease keeps its run group within its caps (kWithinCapsSql, run_group.hpp).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "service/db/sql_db.hpp"
#include "service/jobs/job_store.hpp"

namespace omicsd::job_store_rows {

// SQLite, one writer at a time: the id of the task to lease, "" when none. The transaction holds the
// database's write lock, so what it reads stays true until it commits; the caller then marks it
// leased. Candidates are read a page at a time, so a deep queue costs one page, not a scan of it.
std::string pick_leasable_task_sqlite(sql::Db& db, const nlohmann::json& capabilities, int64_t now,
                                      const std::string& where);

// PostgreSQL: picks, locks and leases the task in one statement (a SKIP LOCKED pick in queue order
// with requirements matched in SQL; data-modifying CTEs mark the task RUNNING with lease `token`
// until `expires`, write the lease row and move a QUEUED run to RUNNING) and returns the task, its
// dependencies and its run; nullopt when no task is leasable. Leases of one database take turns (an
// advisory lock before the statement) so that group caps hold across daemons.
std::optional<LeasedTask> lease_in_one_statement_pg(sql::Db& db, const std::string& worker_id,
                                                    const nlohmann::json& capabilities,
                                                    const std::string& token, int64_t now, int64_t expires,
                                                    const std::string& where);

}  // namespace omicsd::job_store_rows
