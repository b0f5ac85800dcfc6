// The sequence store's metadata (one table, portable SQL through sql::Db) and the import/export
// life cycle around readset_io.cpp's file work. Metadata validation and JSON: readset_metadata.cpp.
#include "service/stores/readset_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "host/common/durable_file.hpp"
#include "service/util/clock.hpp"
#include "service/util/ids.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/readset_io.hpp"
#include "service/util/sha256.hpp"
#include "service/db/sql_db.hpp"

namespace omicsd {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::vector<std::string> kMigrations = {
    R"SQL(
CREATE TABLE readsets (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  sample_id       TEXT NOT NULL,
  subject_id      TEXT NOT NULL DEFAULT '',
  description     TEXT NOT NULL DEFAULT '',
  tags            TEXT NOT NULL DEFAULT '{}',
  read_group      TEXT NOT NULL DEFAULT '{}',
  state           TEXT NOT NULL CHECK (state IN ('UPLOADING','IMPORTING','ACTIVE','FAILED')),
  failure_reason  TEXT NOT NULL DEFAULT '',
  sources         TEXT NOT NULL DEFAULT '[]',
  parts_expected  INTEGER NOT NULL DEFAULT 0,
  source_format   TEXT NOT NULL DEFAULT '',
  paired          INTEGER NOT NULL DEFAULT 0,
  name_suffixes   INTEGER NOT NULL DEFAULT 0,
  read_count      BIGINT NOT NULL DEFAULT 0,
  base_count      BIGINT NOT NULL DEFAULT 0,
  source_bytes    BIGINT NOT NULL DEFAULT 0,
  cram_bytes      BIGINT NOT NULL DEFAULT 0,
  cram_sha256     TEXT NOT NULL DEFAULT '',
  reads_sha256    TEXT NOT NULL DEFAULT '',
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  imported_at     BIGINT,
  idempotency_key TEXT UNIQUE
);
CREATE INDEX readsets_by_time ON readsets(created_at, id);
CREATE INDEX readsets_by_sample ON readsets(sample_id, created_at);
CREATE INDEX readsets_by_subject ON readsets(subject_id, created_at);
CREATE INDEX readsets_by_state ON readsets(state, created_at);
)SQL"};

const char* const kCols =
    "id, name, sample_id, subject_id, description, tags, read_group, state, failure_reason, sources, "
    "parts_expected, source_format, paired, name_suffixes, read_count, base_count, source_bytes, "
    "cram_bytes, cram_sha256, reads_sha256, created_at, updated_at, imported_at";

ReadSetState parse_state(const std::string& s) {
  if (s == "UPLOADING") return ReadSetState::Uploading;
  if (s == "IMPORTING") return ReadSetState::Importing;
  if (s == "ACTIVE") return ReadSetState::Active;
  if (s == "FAILED") return ReadSetState::Failed;
  throw Error("read set store: unknown state '" + s + "'");
}

json sources_json(const std::vector<ReadSetSource>& v) {
  json a = json::array();
  for (const auto& s : v)
    a.push_back({{"path", s.path}, {"uploaded", s.uploaded}, {"size", s.size}, {"sha256", s.sha256}});
  return a;
}

ReadSet from_row(const sql::Row& r) {
  ReadSet rs;
  rs.id = r.s(0);
  rs.meta.name = r.s(1);
  rs.meta.sample_id = r.s(2);
  rs.meta.subject_id = r.s(3);
  rs.meta.description = r.s(4);
  rs.meta.tags = json::parse(r.s(5));
  rs.meta.read_group = json::parse(r.s(6));
  rs.state = parse_state(r.s(7));
  rs.failure_reason = r.s(8);
  for (const json& s : json::parse(r.s(9)))
    rs.sources.push_back({s.value("path", ""), s.value("uploaded", false), s.value("size", uint64_t(0)),
                          s.value("sha256", "")});
  rs.parts_expected = int(r.i(10));
  rs.source_format = r.s(11);
  rs.paired = r.i(12) != 0;
  rs.name_suffixes = r.i(13) != 0;
  rs.read_count = r.i(14);
  rs.base_count = r.i(15);
  rs.source_bytes = uint64_t(r.i(16));
  rs.cram_bytes = uint64_t(r.i(17));
  rs.cram_sha256 = r.s(18);
  rs.reads_sha256 = r.s(19);
  rs.created_at = r.i(20);
  rs.updated_at = r.i(21);
  if (!r.is_null(22)) rs.imported_at = r.i(22);
  return rs;
}

}  // namespace

ReadSetStore::ReadSetStore(sql::Db& db, fs::path root, std::vector<fs::path> allow_roots)
    : db_(db), root_(std::move(root)), allow_roots_(std::move(allow_roots)) {
  sql::migrate(db_, "readsets", kMigrations);
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw Error(root_.string() + ": cannot create the read set directory: " + ec.message());
  sweep_stale_temp_files();
}

fs::path ReadSetStore::tmp_dir(const std::string& id) const { return root_ / id / "tmp"; }

void ReadSetStore::sweep_stale_temp_files() {
  // Part uploads (<id>/tmp/*) and exports (<id>/export.*.tmp) a crash cut off: untouched for a day
  // means nobody is writing them, even another daemon sharing the directory.
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(root_, ec)) {
    std::error_code e2;
    if (!dir.is_directory(e2)) continue;
    auto stale = [&](const fs::directory_entry& e) {
      std::error_code e3;
      return e.is_regular_file(e3) && e.last_write_time(e3) < cutoff;
    };
    for (const auto& e : fs::directory_iterator(dir.path() / "tmp", e2))
      if (stale(e)) fs::remove(e.path(), e2);
    for (const auto& e : fs::directory_iterator(dir.path(), e2)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("export.", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
          stale(e))
        fs::remove(e.path(), e2);
    }
  }
}

// One new row in `state`, unless the idempotency key is known: then that read set's id (*existed).
std::string ReadSetStore::insert(const ReadSetMetadata& meta, ReadSetState state,
                                 const std::vector<ReadSetSource>& sources, int parts, const std::string& key,
                                 int64_t now, bool* existed) {
  std::string id = "rs-" + random_hex(16);
  bool found = false;
  db_.transaction([&] {
    if (!key.empty()) {
      auto rows = db_.query("SELECT id FROM readsets WHERE idempotency_key = ?", {key});
      if (!rows.empty()) {
        found = true;
        id = rows[0].s(0);
        return;
      }
    }
    db_.exec(
        "INSERT INTO readsets (id, name, sample_id, subject_id, description, tags, read_group, state, "
        "sources, "
        "parts_expected, created_at, updated_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?)",
        {id, meta.name, meta.sample_id, meta.subject_id, meta.description, meta.tags.dump(),
         meta.read_group.dump(), std::string(to_string(state)), sources_json(sources).dump(), int64_t(parts),
         now, now, key.empty() ? sql::Value(nullptr) : sql::Value(key)});
  });
  if (existed) *existed = found;
  return id;
}

ReadSet ReadSetStore::create_registered(const ReadSetMetadata& meta, const std::vector<std::string>& paths,
                                        const std::string& key, int64_t now, bool* existed) {
  if (paths.empty() || paths.size() > 2) throw InputError("'sources' must list one or two files");
  std::vector<ReadSetSource> sources;
  for (const auto& p : paths) {
    std::error_code ec;
    sources.push_back({p, false, uint64_t(fs::file_size(p, ec)), ""});
  }
  return must_get(insert(meta, ReadSetState::Importing, sources, 0, key, now, existed));
}

ReadSet ReadSetStore::create_upload(const ReadSetMetadata& meta, int parts, const std::string& key,
                                    int64_t now, bool* existed) {
  if (parts < 1 || parts > 2) throw InputError("'parts' must be 1 or 2");
  bool found = false;
  const std::string id = insert(meta, ReadSetState::Uploading, {}, parts, key, now, &found);
  if (existed) *existed = found;
  if (!found) {
    std::error_code ec;
    fs::create_directories(tmp_dir(id), ec);
    if (ec) throw Error(tmp_dir(id).string() + ": cannot create: " + ec.message());
  }
  return must_get(id);
}

ReadSet ReadSetStore::put_part(const std::string& id, int part, const fs::path& tmp_file, uint64_t size,
                               const std::string& sha256, int64_t now) {
  ReadSet rs = must_get(id);
  if (rs.state != ReadSetState::Uploading)
    throw ReadSetConflict("read set " + id + " is " + to_string(rs.state) +
                          ": parts can only be uploaded while "
                          "it is UPLOADING");
  if (part < 1 || part > rs.parts_expected)
    throw InputError("read set " + id + " takes parts 1.." + std::to_string(rs.parts_expected) + ", not " +
                     std::to_string(part));
  const fs::path parts_dir = root_ / id / "parts";
  std::error_code ec;
  fs::create_directories(parts_dir, ec);
  const fs::path dest = parts_dir / std::to_string(part);
  fsync_path(tmp_file.string(), false);
  fs::rename(tmp_file, dest, ec);
  if (ec) throw Error("cannot store part " + std::to_string(part) + " of " + id + ": " + ec.message());
  fsync_path(parts_dir.string(), true);
  db_.transaction([&] {
    rs = must_get(id);
    if (rs.state != ReadSetState::Uploading)
      throw ReadSetConflict("read set " + id + " is no longer UPLOADING");
    rs.sources.resize(size_t(std::max<int>(int(rs.sources.size()), part)));
    rs.sources[size_t(part - 1)] = {dest.string(), true, size, sha256};
    save_sources(rs, now);
  });
  return must_get(id);
}

ReadSet ReadSetStore::complete_upload(const std::string& id, int64_t now, bool* started) {
  if (started) *started = false;
  db_.transaction([&] {
    ReadSet rs = must_get(id);
    if (rs.state == ReadSetState::Importing || rs.state == ReadSetState::Active) return;  // repeated call
    if (rs.state != ReadSetState::Uploading)
      throw ReadSetConflict("read set " + id + " is " + to_string(rs.state) + ": nothing to complete");
    int have = 0;
    for (const auto& s : rs.sources) have += !s.path.empty();
    if (have != rs.parts_expected)
      throw ReadSetConflict("read set " + id + " has " + std::to_string(have) + " of " +
                            std::to_string(rs.parts_expected) + " parts uploaded");
    db_.exec("UPDATE readsets SET state = 'IMPORTING', updated_at = ? WHERE id = ?", {now, id});
    if (started) *started = true;
  });
  return must_get(id);
}

void ReadSetStore::save_sources(const ReadSet& rs, int64_t now) {
  db_.exec("UPDATE readsets SET sources = ?, updated_at = ? WHERE id = ?",
           {sources_json(rs.sources).dump(), now, rs.id});
}

std::optional<ReadSet> ReadSetStore::get(const std::string& id) {
  auto rows = db_.query(std::string("SELECT ") + kCols + " FROM readsets WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

ReadSet ReadSetStore::must_get(const std::string& id) {
  auto rs = get(id);
  if (!rs) throw NotFoundError("unknown read set '" + id + "'");
  return *rs;
}

ReadSetPage ReadSetStore::list(const ReadSetFilter& f) {
  const int size = std::clamp(f.page_size, 1, 1000);
  std::string where = " WHERE 1 = 1";
  std::vector<sql::Value> params;
  if (f.state) {
    where += " AND state = ?";
    params.push_back(std::string(to_string(*f.state)));
  }
  if (!f.sample_id.empty()) {
    where += " AND sample_id = ?";
    params.push_back(f.sample_id);
  }
  if (!f.subject_id.empty()) {
    where += " AND subject_id = ?";
    params.push_back(f.subject_id);
  }
  if (!f.page_token.empty()) {
    // "<created_at>.<id>": keyset paging, stable while read sets are added.
    const auto dot = f.page_token.find('.');
    int64_t t = 0;
    try {
      t = std::stoll(f.page_token.substr(0, dot));
    } catch (const std::exception&) {
      throw InputError("bad page_token");
    }
    if (dot == std::string::npos) throw InputError("bad page_token");
    where += " AND (created_at > ? OR (created_at = ? AND id > ?))";
    params.insert(params.end(), {t, t, f.page_token.substr(dot + 1)});
  }
  params.push_back(int64_t(size + 1));
  auto rows = db_.query(
      std::string("SELECT ") + kCols + " FROM readsets" + where + " ORDER BY created_at, id LIMIT ?", params);
  ReadSetPage page;
  for (size_t i = 0; i < rows.size() && i < size_t(size); ++i) page.readsets.push_back(from_row(rows[i]));
  if (rows.size() > size_t(size))
    page.next_page_token = std::to_string(page.readsets.back().created_at) + "." + page.readsets.back().id;
  return page;
}

bool ReadSetStore::remove(const std::string& id, const std::function<bool(const std::string&)>& in_use) {
  bool removed = false;
  db_.transaction([&] {
    auto rs = get(id);
    if (!rs) return;
    if (rs->state == ReadSetState::Importing)
      throw ReadSetConflict("read set " + id + " is IMPORTING: delete it once the import has ended");
    if (in_use && in_use(id))
      throw ReadSetConflict("read set " + id + " is used by a run that has not finished");
    db_.exec("DELETE FROM readsets WHERE id = ?", {id});
    removed = true;
  });
  if (removed) {
    std::error_code ec;
    fs::remove_all(root_ / id, ec);
    if (ec)
      spdlog::warn("read set {}: deleted, but its files could not all be removed: {}", id, ec.message());
  }
  return removed;
}

std::vector<std::string> ReadSetStore::pending_imports() {
  std::vector<std::string> ids;
  for (const auto& r : db_.query("SELECT id FROM readsets WHERE state = 'IMPORTING' ORDER BY created_at, id"))
    ids.push_back(r.s(0));
  return ids;
}

void ReadSetStore::run_import(const std::string& id, const std::atomic<bool>* cancel) {
  ReadSet rs = must_get(id);
  if (rs.state != ReadSetState::Importing) return;
  const fs::path dir = root_ / id;
  const fs::path tmp = dir / "tmp";
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) throw Error(tmp.string() + ": cannot create: " + ec.message());
  const fs::path out = tmp / ("reads.cram." + random_hex(8));
  auto cleanup = [&] { fs::remove(out, ec); };

  json rg = rs.meta.read_group;
  if (!rg.contains("ID")) rg["ID"] = rs.meta.sample_id;
  rg["SM"] = rs.meta.sample_id;
  std::vector<std::string> paths;
  std::vector<RootedFile> files;  // the sources, opened beneath their roots: what is read is what was checked
  ReadImportStats st;
  try {
    uint64_t source_bytes = 0;
    for (auto& s : rs.sources) {
      files.push_back(s.uploaded ? open_within_roots(s.path, {root_}, s.path)
                                 : open_within_roots(s.path, allow_roots_, s.path));
      const std::string opened = files.back().path().string();
      if (s.sha256.empty()) s.sha256 = "sha256:" + sha256_file_hex(opened, &s.size);
      source_bytes += s.size;
      paths.push_back(opened);
    }
    rs.source_bytes = source_bytes;
    try {
      st = import_reads_to_cram(paths, out.string(), rg, cancel);
    } catch (const InputError& e) {  // name the sources, not /proc/self/fd/N
      std::string m = e.what();
      for (size_t i = 0; i < paths.size(); ++i)
        for (size_t at = m.find(paths[i]); at != std::string::npos; at = m.find(paths[i], at + 1)) {
          const size_t end = at + paths[i].size();
          if (end < m.size() && std::isdigit(static_cast<unsigned char>(m[end]))) continue;  // fd 12, not 1
          m.replace(at, paths[i].size(), rs.sources[i].path);
        }
      throw InputError(m);
    }
  } catch (const ImportCanceled&) {
    cleanup();
    throw;
  } catch (const InputError& e) {
    cleanup();
    const int64_t now = now_ms();
    db_.exec(
        "UPDATE readsets SET state = 'FAILED', failure_reason = ?, updated_at = ? WHERE id = ? AND state = "
        "'IMPORTING'",
        {std::string(e.what()), now, id});
    for (const auto& s : rs.sources)
      if (s.uploaded) fs::remove(s.path, ec);  // nothing half-imported is kept
    spdlog::warn("read set {}: import failed: {}", id, e.what());
    return;
  } catch (...) {
    cleanup();
    throw;
  }
  const fs::path final_path = dir / "reads.cram";
  fs::rename(out, final_path, ec);
  if (ec) {
    cleanup();
    throw Error("cannot store " + final_path.string() + ": " + ec.message());
  }
  fsync_path(dir.string(), true);
  uint64_t cram_bytes = 0;
  const std::string cram_sha = "sha256:" + sha256_file_hex(final_path, &cram_bytes);
  const int64_t now = now_ms();
  db_.exec(
      "UPDATE readsets SET state = 'ACTIVE', failure_reason = '', sources = ?, source_format = ?, paired = "
      "?, "
      "name_suffixes = ?, read_count = ?, base_count = ?, source_bytes = ?, cram_bytes = ?, cram_sha256 = ?, "
      "reads_sha256 = ?, updated_at = ?, imported_at = ? WHERE id = ? AND state = 'IMPORTING'",
      {sources_json(rs.sources).dump(), st.source_format, int64_t(st.paired), int64_t(st.name_suffixes),
       st.read_count, st.base_count, int64_t(rs.source_bytes), int64_t(cram_bytes), cram_sha, st.reads_sha256,
       now, now, id});
  // The CRAM is the stored form: uploaded sources are not kept (registered files are the caller's).
  for (const auto& s : rs.sources)
    if (s.uploaded) fs::remove(s.path, ec);
  fs::remove_all(tmp, ec);
  spdlog::info("read set {}: imported {} reads ({} bases) from {} {}: {} -> {} bytes", id, st.read_count,
               st.base_count, rs.sources.size(), st.source_format, rs.source_bytes, cram_bytes);
}

ReadSet ReadSetStore::must_be_active(const std::string& id) {
  ReadSet rs = must_get(id);
  if (rs.state != ReadSetState::Active)
    throw ReadSetConflict("read set " + id + " is " + to_string(rs.state) + ", not ACTIVE" +
                          (rs.failure_reason.empty() ? "" : ": " + rs.failure_reason));
  return rs;
}

fs::path ReadSetStore::cram_path(const std::string& id) {
  must_be_active(id);
  return root_ / id / "reads.cram";
}

fs::path ReadSetStore::export_file(const std::string& id, const std::string& format, int mate) {
  if (format != "cram" && format != "bam" && format != "fastq")
    throw InputError("format must be fastq, bam or cram, not '" + format + "'");
  if (mate < 0 || mate > 2) throw InputError("mate must be 1 or 2");
  if (mate != 0 && format != "fastq") throw InputError("mate= only applies to format=fastq");
  const ReadSet rs = must_be_active(id);
  const fs::path cram = root_ / id / "reads.cram";
  if (format == "cram") return cram;
  if (mate != 0 && !rs.paired) throw InputError("read set " + id + " is single-end: mate= does not apply");
  const fs::path out =
      root_ / id / ("export" + (mate ? "_" + std::to_string(mate) : std::string()) + "." + format);
  std::error_code ec;
  if (fs::exists(out, ec)) {
    fs::last_write_time(out, fs::file_time_type::clock::now(), ec);  // last served: the cache's LRU order
    return out;
  }
  const fs::path tmp = root_ / id / ("export." + random_hex(8) + ".tmp");
  try {
    export_reads(cram.string(), format, mate, rs.name_suffixes, tmp.string());
    fsync_path(tmp.string(), false);
    fs::rename(tmp, out);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  trim_exports(out);
  return out;
}

void ReadSetStore::set_export_cache_limit(std::uint64_t max_bytes, std::chrono::seconds min_age) {
  std::lock_guard lk(export_mu_);
  export_cache_max_ = max_bytes;
  export_min_age_ = min_age;
}

void ReadSetStore::trim_exports(const fs::path& keep) {
  std::lock_guard lk(export_mu_);
  if (export_cache_max_ == 0) return;
  struct Entry {
    fs::file_time_type served;
    std::uint64_t size;
    fs::path path;
  };
  std::vector<Entry> entries;
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(root_, ec)) {
    std::error_code e2;
    if (!dir.is_directory(e2)) continue;
    for (const auto& f : fs::directory_iterator(dir.path(), e2)) {
      const std::string name = f.path().filename().string();
      const bool is_export = name.rfind("export", 0) == 0 &&
                             (f.path().extension() == ".fastq" || f.path().extension() == ".bam");
      std::error_code e3;
      if (!is_export || !f.is_regular_file(e3)) continue;
      const std::uint64_t size = f.file_size(e3);
      const auto served = f.last_write_time(e3);
      if (e3) continue;
      total += size;
      entries.push_back({served, size, f.path()});
    }
  }
  if (total <= export_cache_max_) return;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.served < b.served; });
  const auto recent = fs::file_time_type::clock::now() - export_min_age_;
  for (const Entry& e : entries) {
    if (total <= export_cache_max_) break;
    if (e.path == keep || e.served > recent) continue;
    std::error_code e4;
    if (fs::remove(e.path, e4)) {
      total -= e.size;
      spdlog::info("read-set export cache: removed {} ({} bytes)", e.path.string(), e.size);
    }
  }
}

}  // namespace omicsd
