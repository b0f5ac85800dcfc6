#pragma once
// Many rows in few statements, on both databases: a statement per chunk of rows ("INSERT ... VALUES
// (?, ?), (?, ?), ..." or "... WHERE k IN (?, ?, ...)") instead of one statement per row. Chunks stay
// within the smallest bound-parameter limit of the two databases (SQLite builds may be compiled with
// 999; PostgreSQL allows 65,535). Their sizes are a full chunk or a power of two, so SQLite's prepared
// statement cache (keyed by the SQL text) holds a few statements per shape, whatever the row counts.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "service/db/sql_db.hpp"

namespace omicsd::sql {

// The most bound parameters one chunked statement uses on SQLite.
inline constexpr size_t kMaxChunkParams = 999;
// On PostgreSQL: its protocol counts parameters in 16 bits. Fewer, larger statements matter more there
// (each is parsed and planned, one round trip apiece): 10,000 runs' 30,000 tasks go in 8 statements.
inline constexpr size_t kMaxChunkParamsPostgres = 65535;

// Calls fn(first, count) for consecutive chunks covering rows [0, rows), each of at most
// max_params / params_per_row rows (at least 1), sized as described above.
void for_each_chunk(size_t rows, size_t params_per_row, const std::function<void(size_t, size_t)>& fn,
                    size_t max_params = kMaxChunkParams);

// `row` repeated `count` times, comma separated: "(?, ?), (?, ?)".
std::string repeated(const std::string& row, size_t count);

// Runs `head + repeated(row, n) + tail` for each chunk of the rows whose parameters `params` holds
// back to back (params.size() a multiple of params_per_row = the '?' in `row`) and returns every
// chunk's result rows (e.g. from a RETURNING tail), in chunk order. Chunks hold at most the
// parameters the dialect allows (kMaxChunkParams, kMaxChunkParamsPostgres). Takes the parameters by value to
// move them into the chunks (pass std::move(rows) where they are not needed after).
std::vector<Row> query_rows(Db& db, const std::string& head, const std::string& row, const std::string& tail,
                            size_t params_per_row, std::vector<Value> params);

}  // namespace omicsd::sql
