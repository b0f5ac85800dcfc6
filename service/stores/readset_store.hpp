#pragma once
// The sequence store (modelled on AWS HealthOmics read sets): a read set is one sample's reads
// (single-end or paired FASTQ, or a BAM/CRAM) with metadata. Import is a durable background job:
// every record is validated with htslib, reads and bases are counted, a content checksum is taken,
// and the reads are kept as one unaligned CRAM 3.1 file. A read set is only usable (content,
// runs) once ACTIVE; a failed import leaves it FAILED with the record that broke it and no files.
//
// Files: <root>/<id>/parts/<n> (uploaded sources, removed after import), <root>/<id>/reads.cram
// (the stored reads), <root>/<id>/export.* (cached conversions for GET content), <root>/<id>/tmp/.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/common/error.hpp"

namespace omicsd {

namespace sql {
class Db;
}

enum class ReadSetState { Uploading, Importing, Active, Failed };
const char* to_string(ReadSetState s);  // UPLOADING | IMPORTING | ACTIVE | FAILED

// The read set is in a state that does not allow the operation (maps to HTTP 409).
class ReadSetConflict : public ConflictError {
 public:
  explicit ReadSetConflict(const std::string& what) : ConflictError(what) {}
};

// Thrown by ReadSetStore::run_import when `cancel` became true (daemon shutdown): the read set
// stays IMPORTING and is imported again after the restart.
class ImportCanceled : public Error {
 public:
  ImportCanceled() : Error("import canceled") {}
};

struct ReadSetMetadata {
  std::string name;        // free text (default: the sample id)
  std::string sample_id;   // required: [A-Za-z0-9._-]{1,128}; the runs' and variant store's key
  std::string subject_id;  // the participant (several samples may share one)
  std::string description;
  nlohmann::json tags = nlohmann::json::object();  // string -> string
  // Read group written into the CRAM header and every record: {"ID","PL","LB","PU","CN"...};
  // ID defaults to the sample id and SM is always the sample id.
  nlohmann::json read_group = nlohmann::json::object();

  // Parses and validates the metadata fields of a POST /v1/readsets body (unknown keys are the
  // caller's business); throws InputError naming the field for wrong types or bad values.
  static ReadSetMetadata from_json(const nlohmann::json& body);
};

struct ReadSetSource {
  std::string path;  // a registered file, or an uploaded part under <root>/<id>/parts
  bool uploaded = false;
  uint64_t size = 0;
  std::string sha256;  // of the file as given (set once known)
};

struct ReadSet {
  std::string id;  // "rs-" + 16 hex
  ReadSetMetadata meta;
  ReadSetState state = ReadSetState::Uploading;
  std::string failure_reason;
  std::vector<ReadSetSource> sources;  // 1 (FASTQ, interleaved FASTQ, BAM, CRAM) or 2 (FASTQ pair)
  int parts_expected = 0;              // uploads: how many parts complete() needs
  std::string source_format;           // FASTQ | BAM | CRAM | SAM (after import)
  bool paired = false;
  bool name_suffixes = false;  // FASTQ names ended in /1 and /2 (restored on FASTQ export)
  int64_t read_count = 0;
  int64_t base_count = 0;
  uint64_t source_bytes = 0;  // total size of the sources as given (e.g. FASTQ.gz)
  uint64_t cram_bytes = 0;    // the stored CRAM
  std::string cram_sha256;    // of the stored CRAM file
  // SHA-256 over every read in order: name, read 1/2 flag, bases and qualities (format neutral:
  // the same reads imported from FASTQ, BAM or an exported copy give the same checksum).
  std::string reads_sha256;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> imported_at;

  nlohmann::json to_json() const;  // the API's ReadSet object
};

struct ReadSetPage {
  std::vector<ReadSet> readsets;
  std::string next_page_token;  // empty on the last page
};

struct ReadSetFilter {
  std::optional<ReadSetState> state;
  std::string sample_id;
  std::string subject_id;
  int page_size = 50;  // clamped to [1, 1000]
  std::string page_token;
};

class ReadSetStore {
 public:
  // Creates the schema (component "readsets") and `root` when missing. `allow_roots`: where
  // registered source files may lie; an import opens each source beneath its root again
  // (open_within_roots), so a file swapped for a link out of the roots after registration fails the
  // import instead of being read.
  ReadSetStore(sql::Db& db, std::filesystem::path root, std::vector<std::filesystem::path> allow_roots);

  const std::filesystem::path& root() const { return root_; }

  // A read set from files already readable by the daemon (paths checked by the caller against the
  // allowed roots): state IMPORTING. One source (FASTQ, BAM, CRAM) or two (FASTQ read 1, read 2).
  // With an idempotency key seen before, returns that read set (existed = true).
  ReadSet create_registered(const ReadSetMetadata& meta, const std::vector<std::string>& paths,
                            const std::string& idempotency_key, int64_t now, bool* existed = nullptr);
  // A read set whose sources will be uploaded as parts 1..parts: state UPLOADING.
  ReadSet create_upload(const ReadSetMetadata& meta, int parts, const std::string& idempotency_key,
                        int64_t now, bool* existed = nullptr);
  // Installs an uploaded part (a file the caller wrote in tmp_dir(id), with its size and sha256);
  // uploading a part again replaces it (resume after a broken upload). ReadSetConflict unless
  // UPLOADING; InputError for a part number outside 1..parts.
  ReadSet put_part(const std::string& id, int part, const std::filesystem::path& tmp_file, uint64_t size,
                   const std::string& sha256, int64_t now);
  // UPLOADING -> IMPORTING once every part is in (ReadSetConflict otherwise). A repeated call on an
  // IMPORTING or ACTIVE read set changes nothing; *started says whether this call made the move (so
  // the caller schedules the import exactly once).
  ReadSet complete_upload(const std::string& id, int64_t now, bool* started = nullptr);
  std::filesystem::path tmp_dir(const std::string& id) const;  // for upload spooling

  std::optional<ReadSet> get(const std::string& id);
  ReadSetPage list(const ReadSetFilter& filter);
  // Removes the read set and its files; ReadSetConflict while in_use(id) or IMPORTING.
  // Returns false for an unknown id.
  bool remove(const std::string& id, const std::function<bool(const std::string&)>& in_use);

  // IMPORTING read sets (to (re)start after a daemon restart).
  std::vector<std::string> pending_imports();
  // Imports one IMPORTING read set: ACTIVE on success, FAILED with the reason for bad input
  // (InputError from the readers); other errors (disk full) propagate and leave it IMPORTING.
  // Checks `cancel` between records (throws ImportCanceled). A read set that is not IMPORTING is
  // left alone.
  void run_import(const std::string& id, const std::atomic<bool>* cancel = nullptr);

  // The stored CRAM of an ACTIVE read set (what a run's "reads" input resolves to).
  // ReadSetConflict when not ACTIVE; NotFoundError-like InputError for an unknown id.
  std::filesystem::path cram_path(const std::string& id);
  // A file with the reads in `format` ("cram", "bam", "fastq"; mate 0 = all reads, interleaved
  // for pairs; 1 or 2 = that mate only), made once and cached. InputError for a bad format/mate.
  std::filesystem::path export_file(const std::string& id, const std::string& format, int mate);
  // Exports are a cache, bounded by `max_bytes` over the whole store (0: unbounded): after an
  // export is made, the least recently served ones are removed until the total fits, never one
  // served within `min_age` (it may be on its way to a client) nor the one just made.
  void set_export_cache_limit(std::uint64_t max_bytes,
                              std::chrono::seconds min_age = std::chrono::seconds(600));

 private:
  ReadSet must_get(const std::string& id);
  ReadSet must_be_active(const std::string& id);  // ReadSetConflict (with the failure) otherwise
  void save_sources(const ReadSet& rs, int64_t now);
  std::string insert(const ReadSetMetadata& meta, ReadSetState state,
                     const std::vector<ReadSetSource>& sources, int parts, const std::string& key,
                     int64_t now, bool* existed);

  sql::Db& db_;
  void sweep_stale_temp_files();  // at construction
  void trim_exports(const std::filesystem::path& keep);

  std::mutex export_mu_;  // trim_exports
  std::uint64_t export_cache_max_ = 0;
  std::chrono::seconds export_min_age_{600};

  std::filesystem::path root_;
  std::vector<std::filesystem::path> allow_roots_;
};

// True for "rs-" followed by 16 lowercase hex digits.
bool is_readset_id(const std::string& s);

}  // namespace omicsd
