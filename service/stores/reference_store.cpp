// The reference store (reference_store.hpp): rows, the import life cycle and deletion. The import
// pass that rewrites the uploaded FASTA: reference_fasta_normalize.cpp.
#include "service/stores/reference_store.hpp"

#include <fcntl.h>
#include <htslib/faidx.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <utility>

#include "host/io/reference.hpp"
#include "service/db/sql_db.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/reference_fasta_normalize.hpp"
#include "service/stores/refget_sequence.hpp"
#include "service/util/clock.hpp"
#include "service/util/ids.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using sql::Row;
using sql::Value;

constexpr const char* kComponent = "reference_store";
constexpr const char* kFileName = "reference.fa.gz";
const char* const kCompanions[] = {".fai", ".gzi", ".omi"};

// Version 1. Table names carry the store's prefix: several stores share one database.
// `references` itself is an SQL keyword, hence refstore_references.
const std::vector<std::string> kSchema = {
    "CREATE TABLE refstore_references ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " failure_reason TEXT NOT NULL DEFAULT '',"
    " source_kind TEXT NOT NULL,"
    " source_uri TEXT NOT NULL,"
    " source_path TEXT NOT NULL,"  // the file the import reads
    " source_sha256 TEXT NOT NULL DEFAULT '',"
    " source_size BIGINT NOT NULL DEFAULT 0,"
    " digest TEXT NOT NULL DEFAULT '',"
    " sha256 TEXT NOT NULL DEFAULT '',"
    " size_bytes BIGINT NOT NULL DEFAULT 0,"
    " total_length BIGINT NOT NULL DEFAULT 0,"
    " num_sequences BIGINT NOT NULL DEFAULT 0,"
    " idempotency_key TEXT,"  // NULL when none: NULLs never collide in a UNIQUE index
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE UNIQUE INDEX refstore_references_idem ON refstore_references (idempotency_key);"
    "CREATE INDEX refstore_references_created ON refstore_references (created_at, id);"
    "CREATE INDEX refstore_references_digest ON refstore_references (digest);"
    "CREATE INDEX refstore_references_source ON refstore_references (source_sha256);"
    "CREATE TABLE refstore_sequences ("
    " ref_id TEXT NOT NULL,"
    " ordinal BIGINT NOT NULL,"
    " name TEXT NOT NULL,"
    " length BIGINT NOT NULL,"
    " md5 TEXT NOT NULL,"
    " PRIMARY KEY (ref_id, ordinal));"
    "CREATE INDEX refstore_sequences_md5 ON refstore_sequences (md5);",
    // Version 2: refget's SQ digest per sequence ('' for sequences imported before it existed, until
    // backfill_sequence_digests() computes it from the stored FASTA).
    "ALTER TABLE refstore_sequences ADD COLUMN sha512t24u TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX refstore_sequences_sha512t24u ON refstore_sequences (sha512t24u);",
};

constexpr const char* kCols =
    "id, name, description, state, failure_reason, source_kind, source_uri, source_path, source_sha256, "
    "source_size, digest, sha256, size_bytes, total_length, num_sequences, created_at, updated_at";

// The record and its internal source path, from a row selected with kCols.
ReferenceRecord from_row(const Row& r, std::string* source_path = nullptr) {
  ReferenceRecord x;
  x.id = r.s(0);
  x.name = r.s(1);
  x.description = r.s(2);
  x.state = parse_reference_state(r.s(3));
  x.failure_reason = r.s(4);
  x.source_kind = r.s(5);
  x.source_uri = r.s(6);
  if (source_path) *source_path = r.s(7);
  x.source_sha256 = r.s(8);
  x.source_size = uint64_t(r.i(9));
  x.digest = r.s(10);
  x.sha256 = r.s(11);
  x.size_bytes = uint64_t(r.i(12));
  x.total_length = uint64_t(r.i(13));
  x.num_sequences = uint64_t(r.i(14));
  x.created_at = r.i(15);
  x.updated_at = r.i(16);
  return x;
}

[[noreturn]] void sys_fail(const std::string& what, const fs::path& p, int err) {
  throw Error(what + " " + p.string() + ": " + std::strerror(err));
}

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) sys_fail("cannot open for fsync", p, errno);
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories; the data then rests on the files' fsync.
  if (rc != 0 && !(directory && (e == EINVAL || e == EROFS))) sys_fail("fsync failed for", p, e);
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) sys_fail("cannot rename " + from.string() + " to", to, errno);
}

// Reference::load's messages start with the path it read; an upload's path is internal.
std::string reword(const std::string& message, const std::string& path, const std::string& shown) {
  if (message.rfind(path, 0) == 0) return shown + message.substr(path.size());
  return message;
}

struct ImportLock {
  std::mutex& mu;
  std::set<std::string>& ids;
  std::string id;
  bool held = false;
  ImportLock(std::mutex& m, std::set<std::string>& s, std::string i) : mu(m), ids(s), id(std::move(i)) {
    std::lock_guard lk(mu);
    held = ids.insert(id).second;
  }
  ~ImportLock() {
    if (!held) return;
    std::lock_guard lk(mu);
    ids.erase(id);
  }
};

// Thrown inside the ACTIVE transaction when the row stopped being IMPORTING meanwhile.
struct NoLongerImporting {};

}  // namespace

const char* to_string(ReferenceState s) {
  switch (s) {
    case ReferenceState::Importing:
      return "IMPORTING";
    case ReferenceState::Active:
      return "ACTIVE";
    case ReferenceState::Failed:
      return "FAILED";
    case ReferenceState::Deleting:
      return "DELETING";
  }
  return "?";
}

ReferenceState parse_reference_state(const std::string& s) {
  for (ReferenceState v :
       {ReferenceState::Importing, ReferenceState::Active, ReferenceState::Failed, ReferenceState::Deleting})
    if (s == to_string(v)) return v;
  throw InputError("unknown reference state '" + s + "' (IMPORTING, ACTIVE, FAILED, DELETING)");
}

ReferenceStore::ReferenceStore(sql::Db& db, fs::path root, ReferenceStoreOptions options)
    : db_(db), root_(std::move(root)), options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(tmp_dir(), ec);
  if (ec) throw Error(root_.string() + ": cannot create the reference store directory: " + ec.message());
  sql::migrate(db_, kComponent, kSchema);
  // Uploads a crash cut off stay in the spool directory; one untouched for a day is no upload in
  // progress (a live one is written to continuously), even by another daemon sharing the directory.
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& e : fs::directory_iterator(tmp_dir(), ec)) {
    std::error_code e2;
    if (e.is_regular_file(e2) && e.last_write_time(e2) < cutoff) fs::remove(e.path(), e2);
  }
  // Deletes a crash interrupted: the row said DELETING, so nothing may use the files any more.
  for (const Row& r : db_.query("SELECT id FROM refstore_references WHERE state = ?",
                                {std::string(to_string(ReferenceState::Deleting))}))
    finish_delete(r.s(0));
}

std::optional<ReferenceRecord> ReferenceStore::row(const std::string& id, std::string* source_path) {
  const auto rows =
      db_.query(std::string("SELECT ") + kCols + " FROM refstore_references WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0], source_path);
}

ReferenceRecord ReferenceStore::create(const NewReference& req, bool* created) {
  if (created) *created = false;
  if (req.name.empty()) throw InputError("a reference needs a name");
  if (req.name.size() > 256) throw InputError("reference name longer than 256 characters");
  if (req.description.size() > 4096) throw InputError("reference description longer than 4096 characters");
  if (req.idempotency_key.size() > 256) throw InputError("Idempotency-Key longer than 256 characters");
  const bool upload = !req.upload.empty();
  if (upload == !req.uri.empty())
    throw InputError("a reference needs exactly one source: an uploaded FASTA or a registered uri");

  auto by_key = [&] { return find_by_idempotency_key(req.idempotency_key); };
  std::error_code ec;
  if (auto have = by_key()) {
    if (upload) fs::remove(req.upload, ec);
    return *have;
  }
  if (upload && !req.upload_sha256.empty()) {
    // The same bytes under the same name (a retried upload without a key): one reference.
    const auto rows =
        db_.query(std::string("SELECT ") + kCols +
                      " FROM refstore_references WHERE source_sha256 = ? AND name = ? AND "
                      "state IN (?, ?) ORDER BY created_at LIMIT 1",
                  {req.upload_sha256, req.name, std::string(to_string(ReferenceState::Importing)),
                   std::string(to_string(ReferenceState::Active))});
    if (!rows.empty()) {
      fs::remove(req.upload, ec);
      return from_row(rows[0]);
    }
  }

  ReferenceRecord rec;
  rec.id = "ref-" + random_hex(16);
  rec.name = req.name;
  rec.description = req.description;
  rec.state = ReferenceState::Importing;
  rec.created_at = rec.updated_at = now_ms();
  std::string source_path;
  const fs::path dir = dir_of(rec.id);
  if (upload) {
    rec.source_kind = "upload";
    rec.source_sha256 = req.upload_sha256;
    if (!fs::is_regular_file(req.upload, ec))
      throw InputError("the uploaded FASTA " + req.upload.string() + " is gone");
    rec.source_size = fs::file_size(req.upload, ec);
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir.string() + ": cannot create: " + ec.message());
    const fs::path dst = dir / "upload";
    // Uploads are spooled in tmp_dir(), on this file system: a rename. Anything else is copied.
    if (::rename(req.upload.c_str(), dst.c_str()) != 0) {
      fs::copy_file(req.upload, dst, fs::copy_options::overwrite_existing, ec);
      if (ec) {
        fs::remove_all(dir);
        throw Error("cannot store the uploaded FASTA in " + dst.string() + ": " + ec.message());
      }
      fs::remove(req.upload, ec);
    }
    fsync_path(dst, false);
    fsync_path(dir, true);
    fsync_path(root_, true);
    source_path = dst.string();
  } else {
    rec.source_kind = "uri";
    rec.source_uri = req.uri;
    const ResolvedInput in = resolve_input_uri(req.uri, options_.allow_roots);  // InputError: 400
    source_path = in.path.string();
    rec.source_size = fs::file_size(in.path, ec);
  }

  try {
    db_.exec(
        "INSERT INTO refstore_references (id, name, description, state, source_kind, source_uri, "
        "source_path, "
        "source_sha256, source_size, idempotency_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
        "?, "
        "?, ?, ?, ?)",
        {rec.id, rec.name, rec.description, std::string(to_string(rec.state)), rec.source_kind,
         rec.source_uri, source_path, rec.source_sha256, int64_t(rec.source_size),
         req.idempotency_key.empty() ? Value(nullptr) : Value(req.idempotency_key), rec.created_at,
         rec.updated_at});
  } catch (const sql::ConstraintError&) {
    fs::remove_all(dir, ec);
    if (auto have = by_key()) return *have;  // a concurrent create with the same key won
    throw;
  } catch (...) {
    fs::remove_all(dir, ec);
    throw;
  }
  if (created) *created = true;
  spdlog::info("reference {} '{}': accepted ({} {}), importing", rec.id, rec.name, rec.source_kind,
               upload ? std::to_string(rec.source_size) + " bytes" : rec.source_uri);
  return rec;
}

std::optional<ReferenceRecord> ReferenceStore::find_by_idempotency_key(const std::string& key) {
  if (key.empty()) return std::nullopt;
  const auto rows = db_.query(
      std::string("SELECT ") + kCols + " FROM refstore_references WHERE idempotency_key = ?", {key});
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

std::vector<std::string> ReferenceStore::pending_imports() {
  std::vector<std::string> ids;
  for (const Row& r : db_.query("SELECT id FROM refstore_references WHERE state = ? ORDER BY created_at, id",
                                {std::string(to_string(ReferenceState::Importing))}))
    ids.push_back(r.s(0));
  return ids;
}

void ReferenceStore::fail(const std::string& id, const std::string& reason) {
  // The reason first: a crash before the files are gone leaves a FAILED row whose delete removes
  // them, rather than an IMPORTING row whose retry would report something else.
  const int64_t n = db_.exec(
      "UPDATE refstore_references SET state = ?, failure_reason = ?, updated_at = ? "
      "WHERE id = ? AND state = ?",
      {std::string(to_string(ReferenceState::Failed)), reason, now_ms(), id,
       std::string(to_string(ReferenceState::Importing))});
  if (n != 1) return;  // no longer ours (finished elsewhere): leave its files alone
  std::error_code ec;
  fs::remove_all(dir_of(id), ec);  // upload, work area, partial files: nothing of a failed import stays
}

std::optional<ReferenceRecord> ReferenceStore::run_import(const std::string& id) {
  ImportLock lock(importing_mu_, importing_, id);
  if (!lock.held) return row(id);  // another thread of this process is on it
  std::string source_path;
  const auto found = row(id, &source_path);
  if (!found || found->state != ReferenceState::Importing) return found;
  const ReferenceRecord& rec = *found;
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path dir = dir_of(id), work = dir / "tmp";
  const fs::path out = work / kFileName;
  const bool upload = rec.source_kind == "upload";
  const std::string shown = upload ? "uploaded FASTA" : rec.source_uri;
  std::vector<Contig> contigs;
  std::string digest;
  try {
    std::error_code ec;
    fs::remove_all(work, ec);  // a restarted import starts from scratch
    fs::create_directories(work, ec);
    if (ec) throw Error(work.string() + ": cannot create: " + ec.message());
    if (upload && !fs::exists(source_path, ec))
      throw InputError("the uploaded FASTA was lost (the daemon stopped while storing it); upload it again");
    RootedFile source;  // a registered file, opened beneath its root (RESOLVE_BENEATH)
    std::string read_path = source_path;
    if (!upload) {
      // Registered paths are re-checked: the file may have been replaced by a link out of the roots,
      // and the kernel checks again while opening it (a swap between the two checks is refused too).
      try {
        source_path = resolve_input_uri(source_path, options_.allow_roots).path.string();
        source = open_within_roots(source_path, options_.allow_roots, source_path);
      } catch (const InputError& e) {
        throw InputError(rec.source_uri + ": " + e.what());
      }
      read_path = source.path().string();
    }

    write_normalized_fasta(read_path, shown, out, options_);
    {
      // Validation with the source's own line numbers: names, duplicates, IUPAC characters.
      try {
        const Reference src = Reference::load(read_path);
        digest = src.digest();
      } catch (const InputError& e) {
        throw InputError(reword(e.what(), read_path, shown));
      }
    }
    if (fai_build3(out.c_str(), nullptr, nullptr) != 0)
      throw Error("cannot build the .fai/.gzi index of " + out.string());
    {
      // The index is built against the stored file, exactly as `omicsd index` would: tasks then
      // open <path>.omi with the same k/w and digest and never rebuild it.
      const Reference stored = Reference::load(out.string());
      if (stored.digest() != digest)
        throw Error("internal error: the stored FASTA's digest " + stored.digest() +
                    " differs from the source's " + digest);
      MinimizerIndex::build(stored, options_.index, MinimizerIndex::default_path(out.string()));
      contigs = stored.contigs();
    }
    std::vector<std::string> names;
    for (const Contig& c : contigs) names.push_back(c.name);
    const std::vector<std::string> sq = fasta_sha512t24u(out, names);  // refget ids, before the rename
    uint64_t size = 0;
    const std::string sha = ObjectStore::digest_file(out, &size);
    for (const char* ext : kCompanions) fsync_path(out.string() + ext, false);
    fsync_path(out, false);
    // Companions first, the FASTA last; none is used before the row turns ACTIVE anyway.
    for (const char* ext : kCompanions) rename_or_fail(out.string() + ext, (dir / kFileName).string() + ext);
    rename_or_fail(out, dir / kFileName);
    fsync_path(dir, true);

    uint64_t total = 0;
    for (const Contig& c : contigs) total += c.length;
    try {
      db_.transaction([&] {
        db_.exec("DELETE FROM refstore_sequences WHERE ref_id = ?", {id});
        // Multi-row inserts: assemblies with 100k scaffolds stay a few hundred statements.
        constexpr size_t kBatch = 100;
        for (size_t i = 0; i < contigs.size(); i += kBatch) {
          std::string q =
              "INSERT INTO refstore_sequences (ref_id, ordinal, name, length, md5, sha512t24u) VALUES ";
          std::vector<Value> p;
          for (size_t j = i; j < std::min(contigs.size(), i + kBatch); ++j) {
            q += j == i ? "(?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)";
            p.insert(p.end(),
                     {id, int64_t(j), contigs[j].name, int64_t(contigs[j].length), contigs[j].md5, sq[j]});
          }
          db_.exec(q, p);
        }
        const int64_t n = db_.exec(
            "UPDATE refstore_references SET state = ?, failure_reason = '', digest = ?, sha256 = ?, "
            "size_bytes = ?, "
            "total_length = ?, num_sequences = ?, updated_at = ? WHERE id = ? AND state = ?",
            {std::string(to_string(ReferenceState::Active)), digest, sha, int64_t(size), int64_t(total),
             int64_t(contigs.size()), now_ms(), id, std::string(to_string(ReferenceState::Importing))});
        if (n != 1) throw NoLongerImporting{};
      });
    } catch (const NoLongerImporting&) {
      return row(id);  // finished or failed elsewhere meanwhile: leave its files alone
    }
    fs::remove_all(work, ec);
    if (upload) fs::remove(source_path, ec);  // the stored copy replaces it
    spdlog::info("reference {} '{}': ACTIVE, {} sequences, {} bases, digest {}, in {:.1f} s", id, rec.name,
                 contigs.size(), total, digest,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::bad_alloc&) {
    fail(id, "out of memory while importing the reference");
    spdlog::warn("reference {} '{}': FAILED: out of memory", id, rec.name);
  } catch (const std::exception& e) {
    // Input faults (InputError) and local faults (disk full, permissions) alike end the import:
    // FAILED with the reason; the row and the rest of the store stay consistent.
    fail(id, e.what());
    spdlog::warn("reference {} '{}': FAILED: {}", id, rec.name, e.what());
  }
  return row(id);
}

std::optional<ReferenceRecord> ReferenceStore::get(const std::string& id) {
  auto rec = row(id);
  if (!rec) return rec;
  for (const Row& r : db_.query(
           "SELECT name, length, md5, sha512t24u FROM refstore_sequences WHERE ref_id = ? ORDER BY ordinal",
           {id}))
    rec->sequences.push_back({r.s(0), uint64_t(r.i(1)), r.s(2), r.s(3)});
  return rec;
}

std::optional<StoredSequence> ReferenceStore::find_sequence(const std::string& digest) {
  std::string column = "md5";
  std::string key = digest;
  if (key.rfind("ga4gh:", 0) == 0) key = key.substr(6);
  if (key.rfind("SQ.", 0) == 0) {
    if (key.size() != 35) return std::nullopt;
    column = "sha512t24u";
  } else {
    for (char& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (key.size() != 32 || key.find_first_not_of("0123456789abcdef") != std::string::npos)
      return std::nullopt;
  }
  // The oldest ACTIVE reference holding it (the same sequence in several references is one sequence).
  for (const Row& r :
       db_.query("SELECT s.ref_id, s.name, s.length, s.md5, s.sha512t24u FROM refstore_sequences s "
                 "JOIN refstore_references r ON r.id = s.ref_id WHERE s." +
                     column + " = ? AND r.state = ? ORDER BY r.created_at, r.id, s.ordinal LIMIT 1",
                 {key, std::string(to_string(ReferenceState::Active))})) {
    StoredSequence out;
    out.ref_id = r.s(0);
    out.sequence = {r.s(1), uint64_t(r.i(2)), r.s(3), r.s(4)};
    out.fasta = dir_of(out.ref_id) / kFileName;
    return out;
  }
  return std::nullopt;
}

int ReferenceStore::backfill_sequence_digests() {
  int done = 0;
  for (const Row& ref :
       db_.query("SELECT DISTINCT s.ref_id FROM refstore_sequences s JOIN refstore_references r "
                 "ON r.id = s.ref_id WHERE s.sha512t24u = '' AND r.state = ?",
                 {std::string(to_string(ReferenceState::Active))})) {
    const std::string id = ref.s(0);
    try {
      std::vector<std::string> names;
      for (const Row& r :
           db_.query("SELECT name FROM refstore_sequences WHERE ref_id = ? ORDER BY ordinal", {id}))
        names.push_back(r.s(0));
      const std::vector<std::string> sq = fasta_sha512t24u(dir_of(id) / kFileName, names);
      db_.transaction([&] {
        for (size_t j = 0; j < sq.size(); ++j)
          db_.exec("UPDATE refstore_sequences SET sha512t24u = ? WHERE ref_id = ? AND ordinal = ?",
                   {sq[j], id, int64_t(j)});
      });
      ++done;
      spdlog::info("reference {}: refget SQ digests computed for {} sequences", id, sq.size());
    } catch (const std::exception& e) {
      spdlog::warn("reference {}: refget SQ digests not computed: {}", id, e.what());
    }
  }
  return done;
}

ReferencePage ReferenceStore::list(const ReferenceListFilter& f) {
  const int page_size = std::clamp(f.page_size, 1, 1000);
  std::string q = std::string("SELECT ") + kCols + " FROM refstore_references r WHERE state <> ?";
  std::vector<Value> p = {std::string(to_string(ReferenceState::Deleting))};
  if (f.state) {
    q += " AND state = ?";
    p.emplace_back(std::string(to_string(*f.state)));
  }
  if (!f.name.empty()) {
    q += " AND name = ?";
    p.emplace_back(f.name);
  }
  if (!f.md5.empty()) {
    std::string md5 = f.md5;
    for (char& c : md5) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (md5.size() != 32 || md5.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw InputError("md5 must be 32 hex digits, not '" + f.md5 + "'");
    q += " AND (digest = ? OR EXISTS (SELECT 1 FROM refstore_sequences s WHERE s.ref_id = r.id AND s.md5 = "
         "?))";
    p.emplace_back(md5);
    p.emplace_back(md5);
  }
  if (!f.page_token.empty()) {
    // "<created_at>.<id>" of the last record of the previous page (keyset paging: stable while
    // references are added).
    const auto dot = f.page_token.find('.');
    int64_t created = 0;
    try {
      size_t used = 0;
      if (dot == std::string::npos) throw std::invalid_argument("no dot");
      created = std::stoll(f.page_token.substr(0, dot), &used);
      if (used != dot) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw InputError("malformed page_token '" + f.page_token + "'");
    }
    q += " AND (created_at < ? OR (created_at = ? AND id < ?))";
    p.emplace_back(created);
    p.emplace_back(created);
    p.emplace_back(f.page_token.substr(dot + 1));
  }
  q += " ORDER BY created_at DESC, id DESC LIMIT ?";
  p.emplace_back(int64_t(page_size + 1));
  ReferencePage page;
  for (const Row& r : db_.query(q, p)) page.references.push_back(from_row(r));
  if (int(page.references.size()) > page_size) {
    page.references.resize(size_t(page_size));
    const ReferenceRecord& last = page.references.back();
    page.next_page_token = std::to_string(last.created_at) + "." + last.id;
  }
  return page;
}

void ReferenceStore::finish_delete(const std::string& id) {
  std::error_code ec;
  fs::remove_all(dir_of(id), ec);
  if (ec) throw Error("reference " + id + ": cannot remove " + dir_of(id).string() + ": " + ec.message());
  db_.transaction([&] {
    db_.exec("DELETE FROM refstore_sequences WHERE ref_id = ?", {id});
    db_.exec("DELETE FROM refstore_references WHERE id = ?", {id});
  });
  spdlog::info("reference {}: deleted", id);
}

void ReferenceStore::remove(const std::string& id, const std::function<bool(const std::string&)>& in_use) {
  const auto rec = row(id);
  if (!rec) throw NotFoundError("unknown reference '" + id + "'");
  if (rec->state == ReferenceState::Deleting) return finish_delete(id);
  if (rec->state == ReferenceState::Importing)
    throw ReferenceConflictError("reference " + id +
                                 " is still IMPORTING; delete it once it is ACTIVE or FAILED");
  const std::string prev = to_string(rec->state);
  // Marked first, checked second: a run that resolves path_of() after the mark is refused, one
  // that resolved it before is visible to in_use.
  if (db_.exec("UPDATE refstore_references SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
               {std::string(to_string(ReferenceState::Deleting)), now_ms(), id, prev}) != 1)
    throw ReferenceConflictError("reference " + id + " changed while being deleted; try again");
  bool used = false;
  try {
    used = in_use && in_use(id);
  } catch (...) {
    db_.exec("UPDATE refstore_references SET state = ? WHERE id = ? AND state = ?",
             {prev, id, std::string(to_string(ReferenceState::Deleting))});
    throw;
  }
  if (used) {
    db_.exec("UPDATE refstore_references SET state = ? WHERE id = ? AND state = ?",
             {prev, id, std::string(to_string(ReferenceState::Deleting))});
    throw ReferenceConflictError("reference " + id +
                                 " is used by a run that has not finished; delete it when the run is done");
  }
  finish_delete(id);
}

namespace {
const ReferenceRecord& must_be_active(const std::optional<ReferenceRecord>& rec, const std::string& id) {
  if (!rec) throw NotFoundError("unknown reference '" + id + "'");
  if (rec->state != ReferenceState::Active) {
    std::string why = "reference " + id + " is " + to_string(rec->state) + ", not ACTIVE";
    if (rec->state == ReferenceState::Failed) why += " (" + rec->failure_reason + ")";
    throw InputError(why);
  }
  return *rec;
}
}  // namespace

ReferenceRecord ReferenceStore::active(const std::string& id) { return must_be_active(get(id), id); }

fs::path ReferenceStore::path_of(const std::string& id) {
  must_be_active(row(id), id);
  return stored_path(id);
}

fs::path ReferenceStore::stored_path(const std::string& id) const { return dir_of(id) / kFileName; }

}  // namespace omicsd
