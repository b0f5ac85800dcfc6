// Chunked multi-row statements (sql_rows.hpp).
#include "service/db/sql_rows.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace omicsd::sql {

void for_each_chunk(size_t rows, size_t params_per_row, const std::function<void(size_t, size_t)>& fn,
                    size_t max_params) {
  // The largest power of two within the parameter limit: full chunks have this size, and the rest is
  // split into smaller powers of two (at most log2(full) + 1 distinct statement texts per shape).
  const size_t fit = std::max<size_t>(1, max_params / std::max<size_t>(1, params_per_row));
  size_t full = 1;
  while (full * 2 <= fit) full *= 2;
  size_t at = 0;
  for (; rows - at >= full; at += full) fn(at, full);
  for (size_t size = full / 2; size >= 1 && at < rows; size /= 2)
    if (rows - at >= size) {
      fn(at, size);
      at += size;
    }
}

std::string repeated(const std::string& row, size_t count) {
  std::string out;
  out.reserve((row.size() + 2) * count);
  for (size_t i = 0; i < count; ++i) {
    if (i) out += ", ";
    out += row;
  }
  return out;
}

std::vector<Row> query_rows(Db& db, const std::string& head, const std::string& row, const std::string& tail,
                            size_t params_per_row, std::vector<Value> params) {
  const size_t per_row = std::max<size_t>(1, params_per_row);
  if (params.size() % per_row != 0)
    throw Error("query_rows: " + std::to_string(params.size()) + " parameters are not rows of " +
                std::to_string(per_row) + " (" + head.substr(0, 60) + ")");
  std::vector<Row> out;
  const size_t max_params = db.dialect() == Dialect::postgres ? kMaxChunkParamsPostgres : kMaxChunkParams;
  for_each_chunk(
      params.size() / per_row, per_row,
      [&](size_t first, size_t count) {
        const std::vector<Value> chunk(
            std::make_move_iterator(params.begin() + std::ptrdiff_t(first * per_row)),
            std::make_move_iterator(params.begin() + std::ptrdiff_t((first + count) * per_row)));
        std::vector<Row> rows = db.query(head + repeated(row, count) + tail, chunk);
        out.insert(out.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
      },
      max_params);
  return out;
}

}  // namespace omicsd::sql
