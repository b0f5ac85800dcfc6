// refget v2 in the reference store: the SQ digest (the refget specification's test vectors), digests
// recorded at import and found by every identifier form, and the schema migration on a database made
// before the SQ column existed (SQLite and PostgreSQL): the column is added and the start-up backfill
// computes the digests of references imported earlier.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "service/db/sql_db.hpp"
#include "service/stores/reference_store.hpp"
#include "service/stores/refget_sequence.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {
namespace fs = std::filesystem;

// The refget v2 specification's examples: sha512t24u of "ACGT" and of the empty sequence.
TEST(RefgetDigest, SpecificationVectors) {
  EXPECT_EQ(sha512t24u("ACGT"), "SQ.aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2");
  EXPECT_EQ(sha512t24u(""), "SQ.z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXc");
  Sha512t24u pieces;
  pieces.update("AC");
  pieces.update("GT");
  EXPECT_EQ(pieces.finish(), sha512t24u("ACGT"));
}

// The reference store's schema version 1, as databases made before refget hold it.
const std::vector<std::string> kSchemaV1 = {
    "CREATE TABLE refstore_references ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, state TEXT NOT NULL,"
    " failure_reason TEXT NOT NULL DEFAULT '', source_kind TEXT NOT NULL, source_uri TEXT NOT NULL,"
    " source_path TEXT NOT NULL, source_sha256 TEXT NOT NULL DEFAULT '', source_size BIGINT NOT NULL DEFAULT "
    "0,"
    " digest TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '', size_bytes BIGINT NOT NULL DEFAULT 0,"
    " total_length BIGINT NOT NULL DEFAULT 0, num_sequences BIGINT NOT NULL DEFAULT 0, idempotency_key TEXT,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE UNIQUE INDEX refstore_references_idem ON refstore_references (idempotency_key);"
    "CREATE INDEX refstore_references_created ON refstore_references (created_at, id);"
    "CREATE INDEX refstore_references_digest ON refstore_references (digest);"
    "CREATE INDEX refstore_references_source ON refstore_references (source_sha256);"
    "CREATE TABLE refstore_sequences (ref_id TEXT NOT NULL, ordinal BIGINT NOT NULL, name TEXT NOT NULL,"
    " length BIGINT NOT NULL, md5 TEXT NOT NULL, PRIMARY KEY (ref_id, ordinal));"
    "CREATE INDEX refstore_sequences_md5 ON refstore_sequences (md5);",
};

struct RefgetStoreTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;

  void SetUp() override {
    url = test::store_database_url(GetParam(), dir.path / "catalog.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
  }

  fs::path tiny_fasta() const {
    const fs::path p = fs::path(OMICSD_SOURCE_DIR) / ".." / "shared" / "data" / "na12878-chr22-tiny" / "q.fa";
    return p;
  }

  // The upper-cased sequence `name` as samtools faidx reads it: the brute-force side.
  static std::string samtools_sequence(const fs::path& fasta, const std::string& name) {
    std::string out;
    EXPECT_EQ(test::run_command("samtools faidx '" + fasta.string() + "' '" + name + "' 2>&1", &out), 0)
        << out;
    std::string seq;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty() && line[0] != '>') seq += line;
    for (char& c : seq) c = char(std::toupper(static_cast<unsigned char>(c)));
    return seq;
  }
};

TEST_P(RefgetStoreTest, ImportRecordsDigestsFoundByEveryIdentifierForm) {
  if (!fs::exists(tiny_fasta())) GTEST_SKIP() << tiny_fasta() << " not found";
  const fs::path inputs = dir.path / "inputs";
  fs::create_directories(inputs);
  fs::copy_file(tiny_fasta(), inputs / "q.fa");
  auto db = sql::open_db(url, "reference store");
  ReferenceStoreOptions opts;
  opts.allow_roots = {inputs};
  ReferenceStore store(*db, dir.path / "refs", opts);
  NewReference n;
  n.name = "q";
  n.uri = (inputs / "q.fa").string();
  const ReferenceRecord rec = store.create(n);
  auto done = store.run_import(rec.id);
  ASSERT_TRUE(done && done->state == ReferenceState::Active) << (done ? done->failure_reason : "");
  const ReferenceRecord got = *store.get(rec.id);
  ASSERT_EQ(got.sequences.size(), 1u);
  const ReferenceSequence& s = got.sequences[0];
  const std::string seq = samtools_sequence(inputs / "q.fa", s.name);
  EXPECT_EQ(s.sha512t24u, sha512t24u(seq));
  std::string upper_md5 = s.md5;
  for (char& c : upper_md5) c = char(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& id : {s.md5, upper_md5, s.sha512t24u, "ga4gh:" + s.sha512t24u}) {
    auto found = store.find_sequence(id);
    ASSERT_TRUE(found) << id;
    EXPECT_EQ(found->ref_id, rec.id);
    EXPECT_EQ(found->sequence.length, seq.size());
    EXPECT_EQ(fetch_upper(found->fasta, s.name, 100, 160), seq.substr(100, 60));
  }
  EXPECT_FALSE(store.find_sequence(std::string(32, '0')));
  EXPECT_FALSE(store.find_sequence("SQ.tooshort"));
  EXPECT_FALSE(store.find_sequence("'; DROP TABLE refstore_sequences; --"));
}

TEST_P(RefgetStoreTest, MigratesADatabaseFromBeforeRefgetAndBackfillsItsDigests) {
  if (!fs::exists(tiny_fasta())) GTEST_SKIP() << tiny_fasta() << " not found";
  // A version-1 database with an ACTIVE reference stored as version 1 stored it.
  const std::string id = "ref-00000000000000aa";
  const fs::path stored = dir.path / "refs" / id / "reference.fa.gz";
  fs::create_directories(stored.parent_path());
  std::string out;
  ASSERT_EQ(test::run_command("bgzip -c '" + tiny_fasta().string() + "' > '" + stored.string() +
                                  "' && samtools faidx '" + stored.string() + "' 2>&1",
                              &out),
            0)
      << out;
  const std::string seq = samtools_sequence(stored, "q");
  {
    auto db = sql::open_db(url, "reference store");
    sql::migrate(*db, "reference_store", kSchemaV1);
    db->exec(
        "INSERT INTO refstore_references (id, name, description, state, source_kind, source_uri, "
        "source_path, "
        "created_at, updated_at) VALUES (?, 'q', '', 'ACTIVE', 'uri', '', '', 1, 1)",
        {id});
    db->exec(
        "INSERT INTO refstore_sequences (ref_id, ordinal, name, length, md5) VALUES (?, 0, 'q', ?, 'ab')",
        {id, int64_t(seq.size())});
  }
  auto db = sql::open_db(url, "reference store");
  ReferenceStore store(*db, dir.path / "refs");  // migrates to version 2
  EXPECT_EQ(store.get(id)->sequences.at(0).sha512t24u, "");
  EXPECT_FALSE(store.find_sequence(sha512t24u(seq)));
  EXPECT_EQ(store.backfill_sequence_digests(), 1);
  EXPECT_EQ(store.get(id)->sequences.at(0).sha512t24u, sha512t24u(seq));
  auto found = store.find_sequence("ga4gh:" + sha512t24u(seq));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->ref_id, id);
  EXPECT_EQ(store.backfill_sequence_digests(), 0);  // nothing left to do
}

INSTANTIATE_TEST_SUITE_P(Stores, RefgetStoreTest, test::store_backends(), test::StoreBackendName{});

}  // namespace
}  // namespace omicsd
