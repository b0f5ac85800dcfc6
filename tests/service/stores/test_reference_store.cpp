// The reference store on SQLite and PostgreSQL: imports of a real genome (stored BGZF readable by
// samtools, MD5s as samtools dict computes them, .fai/.gzi/.omi next to it), bad FASTA ending in a
// FAILED import with the reason (duplicate names, huge lines, corrupt gzip, not a FASTA),
// registrations under and outside the allowed roots, deletes refused while in use, restarts of
// interrupted imports and deletes, paging and MD5 look-up; and the HTTP routes over loopback,
// including the streamed upload.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/index/minimizer_index.hpp"
#include "host/io/reference.hpp"
#include "service/http/http_client.hpp"
#include "service/http/http_server.hpp"
#include "service/jobs/job_store.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/reference_routes.hpp"
#include "service/stores/reference_store.hpp"
#include "service/db/sql_db.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kEcoli = "/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz";
const std::string kEcoliName = "gi|110640213|ref|NC_008253.1|";

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `samtools dict` of a FASTA: sequence name -> M5.
std::map<std::string, std::string> samtools_md5s(const fs::path& fasta) {
  std::string out;
  EXPECT_EQ(test::run_command("samtools dict " + sh_quote(fasta.string()) + " 2>&1", &out), 0) << out;
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("@SQ", 0) != 0) continue;
    std::string name, md5, field;
    std::istringstream f(line);
    while (std::getline(f, field, '\t')) {
      if (field.rfind("SN:", 0) == 0) name = field.substr(3);
      if (field.rfind("M5:", 0) == 0) md5 = field.substr(3);
    }
    m[name] = md5;
  }
  return m;
}

// The sequence of a region as `samtools faidx` prints it, without the header and newlines.
std::string samtools_region(const fs::path& fasta, const std::string& region) {
  std::string out;
  EXPECT_EQ(test::run_command("samtools faidx " + sh_quote(fasta.string()) + " " + sh_quote(region) + " 2>&1",
                              &out),
            0)
      << out;
  std::string seq;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != '>') seq += line;
  return seq;
}

struct ReferenceStoreTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;
  std::unique_ptr<sql::Db> db;
  std::unique_ptr<ReferenceStore> store;
  fs::path inputs;  // the allowed root of registrations
  ReferenceStoreOptions opts;

  void SetUp() override {
    url = test::store_database_url(GetParam(), dir.path / "catalog.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    inputs = dir.path / "inputs";
    fs::create_directories(inputs);
    opts.allow_roots = {inputs};
    reopen();
  }

  // A fresh store object on the same database and directory: what a daemon restart sees.
  void reopen() {
    store.reset();
    db = sql::open_db(url, "reference store");
    store = std::make_unique<ReferenceStore>(*db, dir.path / "refs", opts);
  }

  // A file in the store's spool dir, as the streamed route leaves an upload.
  fs::path spool(const std::string& content) {
    static int n = 0;
    const fs::path p = store->tmp_dir() / ("upload-" + std::to_string(++n));
    test::write_file(p, content);
    return p;
  }
  fs::path spool_copy(const fs::path& src) {
    static int n = 0;
    const fs::path p = store->tmp_dir() / ("copy-" + std::to_string(++n));
    fs::copy_file(src, p);
    return p;
  }

  ReferenceRecord upload(const std::string& name, const fs::path& file) {
    NewReference n;
    n.name = name;
    n.upload = file;
    bool created = false;
    ReferenceRecord r = store->create(n, &created);
    EXPECT_TRUE(created);
    EXPECT_EQ(r.state, ReferenceState::Importing);
    return r;
  }

  ReferenceRecord upload_and_import(const std::string& name, const fs::path& file) {
    const ReferenceRecord r = upload(name, file);
    auto done = store->run_import(r.id);
    EXPECT_TRUE(done.has_value());
    return done ? *done : r;
  }
  // Uploads `content` and imports it; returns the final record.
  ReferenceRecord import_text(const std::string& name, const std::string& content) {
    return upload_and_import(name, spool(content));
  }

  // A FAILED import leaves nothing on disk and no usable path.
  void expect_failed(const ReferenceRecord& r, const std::string& reason_part) {
    EXPECT_EQ(r.state, ReferenceState::Failed) << to_string(r.state);
    EXPECT_NE(r.failure_reason.find(reason_part), std::string::npos) << r.failure_reason;
    EXPECT_FALSE(fs::exists(store->root() / r.id));
    EXPECT_THROW(store->path_of(r.id), InputError);
    EXPECT_TRUE(store->pending_imports().empty());
    // The record survives a restart as FAILED, with its reason.
    reopen();
    const auto again = store->get(r.id);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->state, ReferenceState::Failed);
    EXPECT_EQ(again->failure_reason, r.failure_reason);
  }
};

const char* const kSmallFasta =
    ">chrA first contig\nACGTACGTAC\nGTACGTNNac\n\n>chrB\r\nTTTTGGGGCCCCAAAAryk\r\n>chrC\nA C G T\n";

TEST_P(ReferenceStoreTest, ImportsARealGenomeAsSamtoolsSeesIt) {
  if (!fs::exists(kEcoli)) GTEST_SKIP() << kEcoli << " missing (apt-get install bowtie-examples)";
  ReferenceRecord r = upload("ecoli-536", spool_copy(kEcoli));
  EXPECT_EQ(r.id.rfind("ref-", 0), 0u);
  EXPECT_EQ(r.id.size(), 20u);
  EXPECT_EQ(store->pending_imports(), std::vector<std::string>{r.id});
  EXPECT_THROW(store->path_of(r.id), InputError);  // not usable while IMPORTING

  const auto done = store->run_import(r.id);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->state, ReferenceState::Active) << done->failure_reason;
  EXPECT_TRUE(store->pending_imports().empty());
  const fs::path stored = store->path_of(r.id);
  EXPECT_EQ(stored, store->root() / r.id / "reference.fa.gz");
  EXPECT_EQ(store->stored_path(r.id), stored);
  for (const char* ext : {".fai", ".gzi", ".omi"}) EXPECT_TRUE(fs::exists(stored.string() + ext)) << ext;
  // Nothing but the stored files is left: no upload, no work area.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(store->root() / r.id)) ++entries, (void)e;
  EXPECT_EQ(entries, 4u);
  EXPECT_FALSE(fs::exists(store->root() / r.id / "upload"));

  // MD5s as samtools computes them, and as the engine's loader does.
  const auto want = samtools_md5s(kEcoli);
  ASSERT_EQ(want.size(), 1u);
  const Reference orig = Reference::load(kEcoli.string());
  const auto rec = store->get(r.id);
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->sequences.size(), 1u);
  EXPECT_EQ(rec->sequences[0].name, kEcoliName);
  EXPECT_EQ(rec->sequences[0].length, 4938920u);
  EXPECT_EQ(rec->sequences[0].md5, want.at(kEcoliName));
  EXPECT_EQ(rec->sequences[0].md5, "509e529364e5d663f487173e460ad129");
  EXPECT_EQ(rec->digest, orig.digest());
  EXPECT_EQ(rec->num_sequences, 1u);
  EXPECT_EQ(rec->total_length, 4938920u);
  uint64_t size = 0;
  EXPECT_EQ(rec->sha256, ObjectStore::digest_file(stored, &size));
  EXPECT_EQ(rec->size_bytes, size);
  EXPECT_EQ(rec->source_size, fs::file_size(kEcoli));
  EXPECT_EQ(samtools_md5s(stored), want);

  // BGZF with a .gzi: samtools faidx reads regions of it directly, equal to the original's bases.
  std::string out;
  ASSERT_EQ(test::run_command("htsfile " + stored.string(), &out), 0);
  EXPECT_NE(out.find("BGZF"), std::string::npos) << out;
  const fs::path plain = dir.path / "ecoli.fa";
  ASSERT_EQ(test::run_command("zcat " + kEcoli.string() + " > " + plain.string()), 0);
  for (const std::string& region :
       {kEcoliName + ":1-100", kEcoliName + ":2500001-2500700", kEcoliName + ":4938800-4938920"}) {
    const std::string a = samtools_region(stored, region), b = samtools_region(plain, region);
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, b) << region;
  }
  // The aligner's index: opens against the stored file with the default k/w, so tasks never rebuild.
  const Reference loaded = Reference::load(stored.string());
  const MinimizerIndex idx = MinimizerIndex::open(stored.string() + ".omi", loaded);
  EXPECT_EQ(idx.k(), IndexParams{}.k);
  EXPECT_EQ(idx.w(), IndexParams{}.w);
  EXPECT_GT(idx.num_keys(), 100000u);
  const auto t = fs::last_write_time(stored.string() + ".omi");
  (void)MinimizerIndex::open_or_build(loaded, IndexParams{});
  EXPECT_EQ(fs::last_write_time(stored.string() + ".omi"), t);

  // Look-up by the whole digest and by a sequence's MD5 (refget).
  ReferenceListFilter f;
  f.md5 = rec->digest;
  ASSERT_EQ(store->list(f).references.size(), 1u);
  f.md5 = "509E529364E5D663F487173E460AD129";
  ASSERT_EQ(store->list(f).references.size(), 1u);
  EXPECT_EQ(store->list(f).references[0].id, r.id);
}

TEST_P(ReferenceStoreTest, SmallFastaIsNormalisedAndKeepsItsMd5s) {
  const ReferenceRecord r = import_text("small", kSmallFasta);
  ASSERT_EQ(r.state, ReferenceState::Active) << r.failure_reason;
  const auto rec = store->get(r.id);
  ASSERT_EQ(rec->sequences.size(), 3u);
  // Same MD5s as the loader computes on the upload itself (upper-cased, whitespace ignored).
  const fs::path src = dir.path / "small.fa";
  test::write_file(src, kSmallFasta);
  const Reference ref = Reference::load(src.string());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rec->sequences[i].name, ref.contigs()[i].name);
    EXPECT_EQ(rec->sequences[i].length, ref.contigs()[i].length);
    EXPECT_EQ(rec->sequences[i].md5, ref.contigs()[i].md5);
  }
  EXPECT_EQ(rec->sequences[0].length, 20u);
  EXPECT_EQ(rec->sequences[2].length, 4u);
  EXPECT_EQ(rec->digest, ref.digest());
  // Case and IUPAC codes are kept; the header's description too.
  const fs::path stored = store->path_of(r.id);
  std::string out;
  ASSERT_EQ(test::run_command("zcat " + stored.string(), &out), 0);
  EXPECT_EQ(out, ">chrA first contig\nACGTACGTACGTACGTNNac\n>chrB\nTTTTGGGGCCCCAAAAryk\n>chrC\nACGT\n");
  EXPECT_EQ(samtools_region(stored, "chrB:17-19"), "ryk");
}

TEST_P(ReferenceStoreTest, OneLineChromosomeIsRewrappedForTheFai) {
  // Unwrapped FASTA (a whole contig on one line) is legitimate; the stored file is wrapped at 60.
  std::string seq;
  for (int i = 0; i < 300000; ++i) seq += "ACGTTGCA"[(i * 7 + i / 13) % 8];
  const ReferenceRecord r = import_text("one-line", ">long\n" + seq + "\n>short\nACGT\nAC\nGTAAA\n");
  ASSERT_EQ(r.state, ReferenceState::Active) << r.failure_reason;
  const std::string fai = test::read_file(store->path_of(r.id).string() + ".fai");
  EXPECT_NE(fai.find("long\t300000\t6\t60\t61\n"), std::string::npos) << fai;
  EXPECT_EQ(samtools_region(store->path_of(r.id), "long:123456-123500"), seq.substr(123455, 45));
  EXPECT_EQ(samtools_region(store->path_of(r.id), "short"), "ACGTACGTAAA");
}

TEST_P(ReferenceStoreTest, DuplicateNamesFailWithTheLine) {
  const ReferenceRecord r = import_text("dups", ">a\nACGT\n>b\nACGT\n>a second\nGGGG\n");
  expect_failed(r, "uploaded FASTA: line 5: duplicate contig name 'a'");
}

TEST_P(ReferenceStoreTest, InvalidCharactersAndEmptyRecordsFail) {
  expect_failed(import_text("bad-char", ">a\nACGT\nAC!T\n"), "line 3: invalid character '!' at column 3");
  expect_failed(import_text("no-seq", ">a\n>b\nACGT\n"), "contig 'a' has no sequence");
  expect_failed(import_text("no-name", ">\nACGT\n"), "FASTA header without a sequence name");
}

TEST_P(ReferenceStoreTest, HugeLinesFailCleanly) {
  opts.max_line_bytes = 1 << 20;
  reopen();
  // 3 MB on one line: refused at the limit, never buffered whole.
  expect_failed(import_text("huge", ">a\n" + std::string(3 << 20, 'A') + "\n"),
                "uploaded FASTA: line 2: line longer than 1048576 bytes");
  // A header line beyond max_header_bytes (64 KiB by default).
  expect_failed(import_text("huge-header", ">a " + std::string(100000, 'x') + "\nACGT\n"),
                "line 1: header line longer than 65536 bytes");
  // A line just under the limit is fine.
  const ReferenceRecord ok = import_text("long-ok", ">a\n" + std::string((1 << 20) - 10, 'C') + "\n");
  EXPECT_EQ(ok.state, ReferenceState::Active) << ok.failure_reason;
}

TEST_P(ReferenceStoreTest, CorruptAndTruncatedGzipFail) {
  std::string fasta = ">a\n";
  for (int i = 0; i < 20000; ++i) fasta += "ACGTTGCAACGGTTACGATCGATCGGATCGATTAGCAT\n";
  const fs::path plain = dir.path / "x.fa";
  test::write_file(plain, fasta);
  ASSERT_EQ(test::run_command("gzip -c " + plain.string() + " > " + plain.string() + ".gz"), 0);
  ASSERT_EQ(test::run_command("bgzip -c " + plain.string() + " > " + plain.string() + ".bgz"), 0);
  const std::string gz = test::read_file(plain.string() + ".gz");
  const std::string bgz = test::read_file(plain.string() + ".bgz");
  ASSERT_GT(gz.size(), 2000u);

  std::string flipped = gz;
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) flipped[i] = char(flipped[i] ^ 0x5a);
  expect_failed(import_text("flipped", flipped), "corrupt compressed data");
  expect_failed(import_text("cut-gzip", gz.substr(0, gz.size() / 2)), "compressed data");
  // BGZF cut between blocks: no read error, only the missing EOF block shows it.
  ASSERT_GE(bgz.size(), 28u + 100u);
  expect_failed(import_text("cut-bgzf", bgz.substr(0, bgz.size() - 28)), "truncated BGZF file");
  // The intact files import, and give the plain file's MD5.
  const ReferenceRecord a = import_text("gz", gz), b = import_text("bgz", bgz);
  ASSERT_EQ(a.state, ReferenceState::Active) << a.failure_reason;
  ASSERT_EQ(b.state, ReferenceState::Active) << b.failure_reason;
  EXPECT_EQ(a.digest, Reference::load(plain.string()).digest());
  EXPECT_EQ(b.digest, a.digest);
}

TEST_P(ReferenceStoreTest, NotAFastaFails) {
  expect_failed(import_text("binary", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)),
                "uploaded FASTA: line 1: not a FASTA file: found 0x89 where a '>' header line is expected");
  expect_failed(import_text("fastq", "@read1\nACGT\n+\nIIII\n"), "not a FASTA file: found '@'");
  expect_failed(import_text("blank", "\n\n  \n"), "no FASTA records");
  // A BAM is BGZF too: it decompresses, and is then not a FASTA.
  const fs::path bam = test::shared_data_dir() / "na12878-chr22-tiny" / "NA12878.chr22.tiny.bam";
  if (fs::exists(bam)) expect_failed(upload_and_import("bam", spool_copy(bam)), "not a FASTA file");
}

TEST_P(ReferenceStoreTest, EmptyUploadFails) {
  expect_failed(import_text("empty", ""), "empty file, no FASTA records");
}

TEST_P(ReferenceStoreTest, RegistrationReadsInPlaceOnlyUnderTheRoots) {
  const fs::path src = inputs / "sub" / "g.fa";
  fs::create_directories(src.parent_path());
  test::write_file(src, kSmallFasta);
  NewReference n;
  n.name = "registered";
  n.description = "from the shared FS";
  n.uri = "file://" + src.string();
  const ReferenceRecord r = store->create(n);
  EXPECT_EQ(r.source_kind, "uri");
  EXPECT_EQ(r.source_uri, n.uri);
  const auto done = store->run_import(r.id);
  ASSERT_EQ(done->state, ReferenceState::Active) << done->failure_reason;
  EXPECT_EQ(test::read_file(src), kSmallFasta);  // the source is left alone
  EXPECT_EQ(done->description, "from the shared FS");

  const fs::path outside = dir.path / "elsewhere.fa";
  test::write_file(outside, kSmallFasta);
  for (const std::string& uri :
       {outside.string(), "file://" + outside.string(), (inputs / ".." / "elsewhere.fa").string(),
        std::string("relative/g.fa"), std::string("s3://bucket/g.fa"), (inputs / "missing.fa").string()}) {
    n.uri = uri;
    EXPECT_THROW(store->create(n), InputError) << uri;
  }
  // A symlink inside the root that points out of it.
  fs::create_symlink(outside, inputs / "link.fa");
  n.uri = (inputs / "link.fa").string();
  EXPECT_THROW(store->create(n), InputError);
  // Neither or both sources, no name.
  NewReference bad;
  bad.name = "x";
  EXPECT_THROW(store->create(bad), InputError);
  bad.uri = src.string();
  bad.upload = spool("x");
  EXPECT_THROW(store->create(bad), InputError);
  bad.upload.clear();
  bad.name.clear();
  EXPECT_THROW(store->create(bad), InputError);
  EXPECT_EQ(store->list().references.size(), 1u);  // nothing was recorded for the refusals
}

TEST_P(ReferenceStoreTest, RegisteredFileReplacedByALinkOutOfTheRootsFails) {
  const fs::path src = inputs / "g.fa";
  test::write_file(src, kSmallFasta);
  NewReference n;
  n.name = "swapped";
  n.uri = src.string();
  const ReferenceRecord r = store->create(n);
  const fs::path outside = dir.path / "secret.fa";
  test::write_file(outside, kSmallFasta);
  fs::remove(src);
  fs::create_symlink(outside, src);
  expect_failed(*store->run_import(r.id), "outside");
}

TEST_P(ReferenceStoreTest, DeleteIsRefusedWhileInUse) {
  const ReferenceRecord r = import_text("used", kSmallFasta);
  ASSERT_EQ(r.state, ReferenceState::Active);
  const fs::path d = store->root() / r.id;
  std::vector<std::string> asked;
  EXPECT_THROW(store->remove(r.id,
                             [&](const std::string& id) {
                               asked.push_back(id);
                               // The row is already DELETING while the predicate runs: path_of refuses.
                               EXPECT_THROW(store->path_of(id), InputError);
                               return true;
                             }),
               ReferenceConflictError);
  EXPECT_EQ(asked, std::vector<std::string>{r.id});
  EXPECT_EQ(store->get(r.id)->state, ReferenceState::Active);  // restored
  EXPECT_TRUE(fs::exists(store->path_of(r.id)));

  store->remove(r.id, [](const std::string&) { return false; });
  EXPECT_FALSE(store->get(r.id));
  EXPECT_FALSE(fs::exists(d));
  EXPECT_THROW(store->path_of(r.id), NotFoundError);
  EXPECT_THROW(store->remove(r.id), NotFoundError);
  EXPECT_TRUE(store->list().references.empty());
  EXPECT_TRUE(db->query("SELECT ref_id FROM refstore_sequences").empty());

  // FAILED ones delete too; IMPORTING ones are refused.
  const ReferenceRecord failed = import_text("bad", ">a\nAC!GT\n");
  ASSERT_EQ(failed.state, ReferenceState::Failed);
  store->remove(failed.id);
  EXPECT_FALSE(store->get(failed.id));
  const ReferenceRecord importing = upload("pending", spool(kSmallFasta));
  EXPECT_THROW(store->remove(importing.id), ReferenceConflictError);
  EXPECT_TRUE(fs::exists(store->root() / importing.id / "upload"));
}

TEST_P(ReferenceStoreTest, InterruptedImportResumesAfterRestart) {
  const ReferenceRecord r = upload("restart", spool(kSmallFasta));
  // A crash mid-import left a partial work area and even a stale final file.
  test::write_file(store->root() / r.id / "tmp" / "reference.fa.gz", "partial");
  test::write_file(store->root() / r.id / "tmp" / "reference.fa.gz.omi", "partial");
  test::write_file(store->root() / r.id / "reference.fa.gz.fai", "stale");
  reopen();
  ASSERT_EQ(store->pending_imports(), std::vector<std::string>{r.id});
  const auto done = store->run_import(r.id);
  ASSERT_EQ(done->state, ReferenceState::Active) << done->failure_reason;
  EXPECT_FALSE(fs::exists(store->root() / r.id / "tmp"));
  EXPECT_NE(test::read_file(store->path_of(r.id).string() + ".fai"), "stale");
  EXPECT_EQ(samtools_region(store->path_of(r.id), "chrA:1-4"), "ACGT");
  // Importing again is a no-op.
  EXPECT_EQ(store->run_import(r.id)->updated_at, done->updated_at);
  EXPECT_TRUE(store->pending_imports().empty());
}

TEST_P(ReferenceStoreTest, UploadLostInACrashFailsWithAReason) {
  const ReferenceRecord r = upload("lost", spool(kSmallFasta));
  fs::remove(store->root() / r.id / "upload");
  expect_failed(*store->run_import(r.id), "upload it again");
}

TEST_P(ReferenceStoreTest, InterruptedDeleteIsFinishedByTheNextStart) {
  const ReferenceRecord r = import_text("half-deleted", kSmallFasta);
  ASSERT_EQ(r.state, ReferenceState::Active);
  db->exec("UPDATE refstore_references SET state = 'DELETING' WHERE id = ?", {r.id});
  EXPECT_TRUE(store->list().references.empty());  // hidden from lists meanwhile
  reopen();
  EXPECT_FALSE(store->get(r.id));
  EXPECT_FALSE(fs::exists(store->root() / r.id));
}

TEST_P(ReferenceStoreTest, StaleSpoolFilesAreSweptOnStart) {
  const fs::path old_upload = spool("cut off by a crash"), live = spool("still arriving");
  fs::last_write_time(old_upload, fs::file_time_type::clock::now() - std::chrono::hours(25));
  reopen();
  EXPECT_FALSE(fs::exists(old_upload));
  EXPECT_TRUE(fs::exists(live));
}

TEST_P(ReferenceStoreTest, IdempotencyKeyAndIdenticalUploadsGiveOneReference) {
  NewReference n;
  n.name = "keyed";
  n.upload = spool(kSmallFasta);
  n.idempotency_key = "k-1";
  bool created = false;
  const ReferenceRecord a = store->create(n, &created);
  EXPECT_TRUE(created);
  n.upload = spool(kSmallFasta);
  const fs::path second = n.upload;
  const ReferenceRecord b = store->create(n, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(b.id, a.id);
  EXPECT_FALSE(fs::exists(second));  // the repeated upload is discarded

  // Same bytes (by the upload's SHA-256) under the same name: the existing reference.
  NewReference u;
  u.name = "same";
  u.upload = spool(kSmallFasta);
  u.upload_sha256 = ObjectStore::digest_bytes(kSmallFasta);
  const ReferenceRecord c = store->create(u, &created);
  EXPECT_TRUE(created);
  ASSERT_EQ(store->run_import(c.id)->state, ReferenceState::Active);
  u.upload = spool(kSmallFasta);
  EXPECT_EQ(store->create(u, &created).id, c.id);
  EXPECT_FALSE(created);
  u.name = "other name";  // another name is another reference
  u.upload = spool(kSmallFasta);
  EXPECT_NE(store->create(u, &created).id, c.id);
  EXPECT_TRUE(created);
}

TEST_P(ReferenceStoreTest, ListPagesNewestFirstAndFilters) {
  std::vector<std::string> ids;
  const char* const names[] = {"r0", "r1", "r2", "r3", "r4"};
  for (int i = 0; i < 5; ++i) {
    ids.push_back(import_text(names[i], i == 3 ? ">x\nAC!\n" : kSmallFasta).id);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ReferenceListFilter f;
  f.page_size = 2;
  std::vector<std::string> seen;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 5);
    const ReferencePage p = store->list(f);
    EXPECT_LE(p.references.size(), 2u);
    for (const auto& r : p.references) {
      seen.push_back(r.id);
      EXPECT_TRUE(r.sequences.empty());
    }
    if (p.next_page_token.empty()) break;
    f.page_token = p.next_page_token;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  ReferenceListFilter s;
  s.state = ReferenceState::Failed;
  ASSERT_EQ(store->list(s).references.size(), 1u);
  EXPECT_EQ(store->list(s).references[0].id, ids[3]);
  ReferenceListFilter nm;
  nm.name = "r2";
  ASSERT_EQ(store->list(nm).references.size(), 1u);
  EXPECT_EQ(store->list(nm).references[0].id, ids[2]);
  ReferenceListFilter m;
  m.md5 = store->get(ids[0])->sequences[1].md5;
  EXPECT_EQ(store->list(m).references.size(), 4u);
  m.md5 = "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(store->list(m).references.empty());
  m.md5 = "not-md5";
  EXPECT_THROW(store->list(m), InputError);
  ReferenceListFilter t;
  t.page_token = "garbage";
  EXPECT_THROW(store->list(t), InputError);
}

TEST_P(ReferenceStoreTest, ConcurrentImportOfOneIdRunsOnce) {
  const ReferenceRecord r = upload("twice", spool(kSmallFasta));
  std::optional<ReferenceRecord> a, b;
  std::thread t1([&] { a = store->run_import(r.id); });
  std::thread t2([&] { b = store->run_import(r.id); });
  t1.join();
  t2.join();
  EXPECT_EQ(store->get(r.id)->state, ReferenceState::Active);
  EXPECT_EQ(store->get(r.id)->sequences.size(), 3u);
}

// --- HTTP routes over loopback (the streamed upload runs through the real server) ---

struct RouteServer {
  std::mutex mu;
  std::vector<std::string> scheduled;
  std::set<std::string> busy;
  std::unique_ptr<http::HttpServer> server;

  RouteServer(ReferenceStore& store, bool import_at_once) {
    http::Router router;
    ReferenceRoutesOptions o;
    o.max_upload_bytes = 3 << 20;
    o.schedule_import = [this, &store, import_at_once](const std::string& id) {
      {
        std::lock_guard lk(mu);
        scheduled.push_back(id);
      }
      if (import_at_once) store.run_import(id);
    };
    o.in_use = [this](const std::string& id) {
      std::lock_guard lk(mu);
      return busy.count(id) > 0;
    };
    add_reference_routes(router, store, o);
    http::HttpServerOptions so;
    so.port = 0;
    server = std::make_unique<http::HttpServer>(so, std::move(router));
    server->start();
  }
  HttpClient client() {
    HttpClientOptions c;
    c.base_url = "http://127.0.0.1:" + std::to_string(server->port());
    c.max_attempts = 1;
    return HttpClient(c);
  }
};

TEST_P(ReferenceStoreTest, RoutesUploadGetContentDelete) {
  RouteServer s(*store, /*import_at_once=*/true);
  HttpClient c = s.client();
  const fs::path fa = dir.path / "up.fa";
  test::write_file(fa, kSmallFasta);

  HttpResponse r = c.upload("POST", "/v1/references?name=my%20ref&description=tiny", fa, "text/plain",
                            {{"Idempotency-Key", "up-1"}}, false);
  ASSERT_EQ(r.status, 202) << r.body;
  const json created = r.json();
  const std::string id = created["id"];
  EXPECT_EQ(created["state"], "IMPORTING");
  EXPECT_EQ(created["name"], "my ref");
  EXPECT_EQ(created["source"]["kind"], "upload");
  EXPECT_EQ(created["source"]["sha256"], ObjectStore::digest_file(fa));
  EXPECT_EQ(r.header("location"), "/v1/references/" + id);
  EXPECT_EQ(s.scheduled, std::vector<std::string>{id});
  // The spool file was adopted (renamed), not left behind.
  for (const auto& e : fs::directory_iterator(store->tmp_dir()))
    ADD_FAILURE() << "left in spool: " << e.path();

  // A repeated key: the same reference, 200, nothing scheduled again.
  r = c.upload("POST", "/v1/references?name=my%20ref", fa, "text/plain", {{"Idempotency-Key", "up-1"}},
               false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["id"], id);
  EXPECT_EQ(s.scheduled.size(), 1u);

  json got = c.get_json("/v1/references/" + id);
  EXPECT_EQ(got["state"], "ACTIVE");
  EXPECT_EQ(got["description"], "tiny");
  EXPECT_EQ(got["num_sequences"], 3);
  EXPECT_EQ(got["total_length"], 43);
  ASSERT_EQ(got["sequences"].size(), 3u);
  EXPECT_EQ(got["sequences"][1]["name"], "chrB");
  EXPECT_EQ(got["sequences"][1]["length"], 19);
  EXPECT_EQ(got["sequences"][1]["md5"], store->get(id)->sequences[1].md5);
  EXPECT_EQ(got["md5"], Reference::load(fa.string()).digest());
  EXPECT_TRUE(got["failure_reason"].is_null());

  const fs::path dl = dir.path / "dl.fa.gz";
  const FetchResult fr = c.fetch(got["content_url"].get<std::string>(), dl);
  EXPECT_EQ(fr.status, 200);
  EXPECT_EQ(fr.sha256, got["sha256"]);
  EXPECT_EQ(test::read_file(dl), test::read_file(store->path_of(id)));

  json list = c.get_json("/v1/references?state=ACTIVE&md5=" + got["sequences"][0]["md5"].get<std::string>());
  ASSERT_EQ(list["references"].size(), 1u);
  EXPECT_EQ(list["references"][0]["id"], id);
  EXPECT_FALSE(list["references"][0].contains("sequences"));
  EXPECT_TRUE(list["next_page_token"].is_null());
  EXPECT_EQ(c.send("GET", "/v1/references?state=BOGUS").status, 400);
  EXPECT_EQ(c.send("GET", "/v1/references?page_size=x").status, 400);
  EXPECT_EQ(c.send("GET", "/v1/references?md5=zz").status, 400);

  {
    std::lock_guard lk(s.mu);
    s.busy.insert(id);
  }
  r = c.send("DELETE", "/v1/references/" + id);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(server_error_message(r.body).find("used by a run"), std::string::npos) << r.body;
  {
    std::lock_guard lk(s.mu);
    s.busy.clear();
  }
  EXPECT_EQ(c.send("DELETE", "/v1/references/" + id).status, 204);
  EXPECT_EQ(c.send("GET", "/v1/references/" + id).status, 404);
  EXPECT_EQ(c.send("GET", "/v1/references/" + id + "/content").status, 404);
  EXPECT_EQ(c.send("DELETE", "/v1/references/" + id).status, 404);
}

TEST_P(ReferenceStoreTest, RoutesRefuseBadRequestsClearly) {
  RouteServer s(*store, /*import_at_once=*/false);
  HttpClient c = s.client();
  const fs::path fa = dir.path / "up.fa";
  test::write_file(fa, kSmallFasta);
  // No name: 400 before the body is read.
  HttpResponse r = c.upload("POST", "/v1/references", fa, "text/plain", {}, false);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(server_error_message(r.body).find("?name="), std::string::npos) << r.body;
  // Over the upload limit: 413.
  const fs::path big = dir.path / "big.fa";
  test::write_file(big, ">a\n" + std::string(4 << 20, 'A') + "\n");
  EXPECT_EQ(c.upload("POST", "/v1/references?name=big", big, "text/plain", {}, false).status, 413);
  // Registrations: JSON problems and URIs outside the roots are 400, nothing recorded.
  for (const std::string& body :
       {std::string("{"), std::string("[]"), std::string(R"({"name": "x"})"), std::string(R"({"uri": "/x"})"),
        json{{"name", "x"}, {"uri", (dir.path / "up.fa").string()}}.dump(),
        json{{"name", "x"}, {"uri", 5}}.dump(), json{{"name", "x"}, {"uri", "/a"}, {"extra", 1}}.dump()}) {
    r = c.send("POST", "/v1/references", body, "application/json", {}, false);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  // A JSON registration over 1 MiB is refused from its Content-Length.
  r = c.send("POST", "/v1/references", json{{"name", std::string(2 << 20, 'n')}, {"uri", "/x"}}.dump(),
             "application/json", {}, false);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(server_error_message(r.body).find("JSON registration body"), std::string::npos) << r.body;
  EXPECT_TRUE(store->list().references.empty());
  EXPECT_TRUE(s.scheduled.empty());
  // A good registration: 202, scheduled; GET shows IMPORTING, content is 409 until ACTIVE.
  test::write_file(inputs / "g.fa", kSmallFasta);
  r = c.send("POST", "/v1/references", json{{"name", "reg"}, {"uri", (inputs / "g.fa").string()}}.dump(),
             "application/json", {}, false);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = r.json()["id"];
  EXPECT_EQ(s.scheduled, std::vector<std::string>{id});
  EXPECT_EQ(c.get_json("/v1/references/" + id)["state"], "IMPORTING");
  EXPECT_EQ(c.send("GET", "/v1/references/" + id + "/content").status, 409);
  EXPECT_EQ(c.send("DELETE", "/v1/references/" + id).status, 409);
  store->run_import(id);
  EXPECT_EQ(c.get_json("/v1/references/" + id)["state"], "ACTIVE");
  // A bad FASTA upload is accepted (202) and then FAILED with the reason on GET.
  test::write_file(fa, ">a\nACGT\n>a\nACGT\n");
  r = c.upload("POST", "/v1/references?name=dups", fa, "application/octet-stream", {}, false);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string bad = r.json()["id"];
  store->run_import(bad);
  const json j = c.get_json("/v1/references/" + bad);
  EXPECT_EQ(j["state"], "FAILED");
  EXPECT_NE(j["failure_reason"].get<std::string>().find("duplicate contig name 'a'"), std::string::npos);
  EXPECT_FALSE(j.contains("md5"));
}

TEST_P(ReferenceStoreTest, RoutesNeedTheClientScope) {
  http::Router router;
  ReferenceRoutesOptions o;
  o.schedule_import = [](const std::string&) {};
  add_reference_routes(router, *store, o);
  auto tokens = std::make_shared<http::TokenStore>();
  tokens->add("w", uint8_t(http::Scope::worker));
  tokens->add("c", uint8_t(http::Scope::client));
  tokens->add("a", uint8_t(http::Scope::admin));
  router.set_auth(tokens);
  http::Request req;
  req.method = "GET";
  req.path = req.target = "/v1/references";
  req.bearer_token = "w";
  EXPECT_EQ(router.dispatch(req).status, 403);
  req.bearer_token = "c";
  EXPECT_EQ(router.dispatch(req).status, 200);
  req.bearer_token = "";
  EXPECT_EQ(router.dispatch(req).status, 401);
  // Deleting a reference is for admins only (issue 12, item 7).
  req.method = "DELETE";
  req.path = req.target = "/v1/references/ref-0123456789abcdef";
  req.bearer_token = "c";
  EXPECT_EQ(router.dispatch(req).status, 403);
  req.bearer_token = "a";
  EXPECT_EQ(router.dispatch(req).status, 404);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReferenceStoreTest, test::store_backends(), test::StoreBackendName{});

}  // namespace
}  // namespace omicsd
