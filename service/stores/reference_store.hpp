#pragma once
// The reference store (docs/api.md, "References"), modelled on the AWS HealthOmics reference store:
// a catalog of imported reference genomes. Each import validates the FASTA once, stores it bgzipped
// with its .fai/.gzi and the aligner's minimizer index (.omi) next to it, and records per-sequence
// MD5s (refget / SAM @SQ M5 style) and a digest of the whole; runs then name a reference by id and
// tasks read <root>/<id>/reference.fa.gz without re-validating or re-indexing it.
//
// Metadata lives in an omicsd::sql::Db (SQLite or PostgreSQL, same SQL); files under `root`:
//   <root>/<id>/upload              an uploaded FASTA while it waits for its import (then removed)
//   <root>/<id>/tmp/                the import's work area (wiped when an import (re)starts)
//   <root>/<id>/reference.fa.gz     the stored FASTA (BGZF, sequences re-wrapped at 60 columns)
//                        ....fai .gzi .omi   samtools index, BGZF block index, minimizer index
//   <root>/tmp/                     spool directory for uploads (same file system: adopted by rename)
//
// States: IMPORTING (accepted, durable, not usable yet) -> ACTIVE | FAILED (failure_reason says
// what to fix); DELETING while a delete removes the files. An import is restartable: it builds
// everything in <id>/tmp and renames into place, and the row only turns ACTIVE in the transaction
// that records the sequences, so a crash at any point leaves an IMPORTING row that
// pending_imports() returns and run_import() redoes from scratch.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/common/error.hpp"
#include "host/index/minimizer_index.hpp"

namespace omicsd {

namespace sql {
class Db;
}

enum class ReferenceState { Importing, Active, Failed, Deleting };
const char* to_string(ReferenceState s);
// "IMPORTING", "ACTIVE", "FAILED", "DELETING"; throws InputError on anything else.
ReferenceState parse_reference_state(const std::string& s);

// A delete refused because the reference is in use by a run or still importing (HTTP 409).
class ReferenceConflictError : public ConflictError {
 public:
  explicit ReferenceConflictError(const std::string& what) : ConflictError(what) {}
};

struct ReferenceSequence {
  std::string name;
  uint64_t length = 0;
  std::string md5;         // MD5 of the upper-cased sequence (SAM @SQ M5, refget's MD5 identifier)
  std::string sha512t24u;  // refget's "SQ." digest of the upper-cased sequence
};

// A sequence found by its refget identifier: where it is stored.
struct StoredSequence {
  std::string ref_id;
  ReferenceSequence sequence;
  std::filesystem::path fasta;  // the stored BGZF FASTA holding it (indexed)
};

struct ReferenceRecord {
  std::string id;  // "ref-" + 16 hex
  std::string name;
  std::string description;
  ReferenceState state = ReferenceState::Importing;
  std::string failure_reason;  // FAILED only
  std::string source_kind;     // "upload" or "uri"
  std::string source_uri;      // registered URI as given ("" for uploads)
  std::string source_sha256;   // "sha256:<hex>" of the uploaded bytes when known (dedupe), else ""
  uint64_t source_size = 0;    // bytes uploaded / size of the registered file at registration
  // ACTIVE only:
  std::string digest;         // Reference::digest(): MD5 over the per-sequence MD5s, in order
  std::string sha256;         // "sha256:<hex>" of reference.fa.gz
  uint64_t size_bytes = 0;    // size of reference.fa.gz
  uint64_t total_length = 0;  // bases
  uint64_t num_sequences = 0;
  int64_t created_at = 0;  // unix ms
  int64_t updated_at = 0;
  std::vector<ReferenceSequence> sequences;  // filled by get(), in FASTA order; empty in list()
};

struct NewReference {
  std::string name;  // required, at most 256 characters
  std::string description;
  // Exactly one of upload / uri:
  std::filesystem::path upload;  // a finished temp file (ideally in tmp_dir(): moved, not copied)
  std::string upload_sha256;     // optional "sha256:<hex>" of `upload` (the streamed route has it)
  std::string uri;               // file:///abs or /abs under an allowed root (resolve_input_uri)
  std::string idempotency_key;   // optional: a repeated create with the same key returns the first
};

struct ReferenceListFilter {
  std::optional<ReferenceState> state;
  std::string name;  // exact match when set
  // 32 hex digits: references whose whole digest is this, or that hold a sequence with this MD5.
  std::string md5;
  int page_size = 50;      // clamped to [1, 1000]
  std::string page_token;  // from ReferencePage::next_page_token; empty = first page
};

struct ReferencePage {
  std::vector<ReferenceRecord> references;  // newest first
  std::string next_page_token;              // empty on the last page
};

struct ReferenceStoreOptions {
  std::vector<std::filesystem::path> allow_roots;  // where registered URIs may point
  // Longest line accepted (bytes, before the newline). FASTA sequence lines may legitimately be a
  // whole chromosome (~250 MB for human chr1), so the default allows that; anything longer fails
  // the import instead of being buffered.
  uint64_t max_line_bytes = uint64_t(512) << 20;
  uint64_t max_header_bytes = 64 << 10;  // '>' lines: a name plus a description
  IndexParams index;                     // as `omicsd index` and the aligner's defaults
  int compress_threads = 1;              // extra BGZF compression threads while writing
};

class ReferenceStore {
 public:
  // Applies the schema (component "reference_store") and finishes deletes a crash interrupted.
  // Creates root and root/tmp. Throws Error when it cannot.
  ReferenceStore(sql::Db& db, std::filesystem::path root, ReferenceStoreOptions options = {});

  const std::filesystem::path& root() const { return root_; }
  // Spool directory for uploads: same file system as the references, so create() renames.
  std::filesystem::path tmp_dir() const { return root_ / "tmp"; }
  const ReferenceStoreOptions& options() const { return options_; }

  // Records a new reference in state IMPORTING and returns at once (the caller schedules
  // run_import(id)). For an upload the file is moved under <root>/<id>/; for a URI the path must
  // resolve inside allow_roots. Returns the existing record with *created = false for a repeated
  // idempotency key, or for an upload of identical bytes (upload_sha256) under the same name that is
  // IMPORTING or ACTIVE (the new file is then removed). Throws InputError for a missing name, both or
  // neither of upload/uri, a URI outside the roots or missing.
  ReferenceRecord create(const NewReference& req, bool* created = nullptr);

  // Does the import of an IMPORTING reference (no-op for any other state, or while the same id is
  // being imported by another thread of this process) and returns the final record: ACTIVE, or
  // FAILED with the reason (bad FASTA, corrupt gzip, line too long, disk full...). Never throws for
  // bad input; throws only when the database itself fails. Safe to call again after a crash.
  std::optional<ReferenceRecord> run_import(const std::string& id);
  // Ids in state IMPORTING, oldest first (restart them after a daemon restart).
  std::vector<std::string> pending_imports();

  std::optional<ReferenceRecord> get(const std::string& id);                       // with sequences
  std::optional<ReferenceRecord> find_by_idempotency_key(const std::string& key);  // without
  ReferencePage list(const ReferenceListFilter& filter = {});

  // Deletes a reference that is ACTIVE or FAILED and not in_use(id) (checked after the row is
  // marked DELETING, so a run that resolves path_of() concurrently either sees DELETING or is seen
  // by in_use). Throws NotFoundError for an unknown id, ReferenceConflictError while IMPORTING or in
  // use. Files go after the row is marked and before it is removed; a crash in between is finished by
  // the next constructor.
  void remove(const std::string& id, const std::function<bool(const std::string&)>& in_use = {});

  // <root>/<id>/reference.fa.gz of an ACTIVE reference (its .fai, .gzi and .omi lie next to it).
  // Throws NotFoundError for an unknown id, InputError when it is not ACTIVE.
  std::filesystem::path path_of(const std::string& id);
  // Where reference `id`'s FASTA is (or would be) stored, whatever its state, without a database
  // look-up: for in_use predicates that compare run inputs with it (path_of() already refuses while
  // remove() runs the predicate, the row being DELETING then).
  std::filesystem::path stored_path(const std::string& id) const;
  // A sequence of an ACTIVE reference by its refget identifier: 32 hex digits (MD5, any case),
  // "SQ.<32 base64url>" or "ga4gh:SQ.<...>"; nullopt when none matches or the id has neither form.
  std::optional<StoredSequence> find_sequence(const std::string& digest);
  // Computes the SQ digests that sequences imported before schema version 2 lack (from the stored
  // FASTAs); returns the references updated. Run at daemon start (Catalog::start).
  int backfill_sequence_digests();
  // The record of an ACTIVE reference by its id (as path_of) plus its sequences: for provenance.
  ReferenceRecord active(const std::string& id);

 private:
  std::filesystem::path dir_of(const std::string& id) const { return root_ / id; }
  std::optional<ReferenceRecord> row(const std::string& id, std::string* source_path = nullptr);
  void fail(const std::string& id, const std::string& reason);
  void finish_delete(const std::string& id);

  sql::Db& db_;
  std::filesystem::path root_;
  ReferenceStoreOptions options_;
  std::mutex importing_mu_;
  std::set<std::string> importing_;  // ids run_import is working on in this process
};

}  // namespace omicsd
