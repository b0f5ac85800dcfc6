// The sequence store on both backends: import of real reads (FASTQ pairs, interleaved FASTQ, an
// aligned BAM) into unaligned CRAM 3.1, exact FASTQ round trips with stable checksums, uploads in
// parts, failed imports that leave nothing behind, cancellation and restart, paging and deletion.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>

#include "service/jobs/job_store.hpp"
#include "service/stores/readset_store.hpp"
#include "service/db/sql_db.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path tiny_bam() { return test::shared_data_dir() / "na12878-chr22-tiny" / "NA12878.chr22.tiny.bam"; }

struct ReadSetStoreTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::unique_ptr<sql::Db> db;
  std::unique_ptr<ReadSetStore> store;

  void SetUp() override {
    const std::string url = test::store_database_url(GetParam(), dir.path / "catalog.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    db = sql::open_db(url, "read set store");
    store = std::make_unique<ReadSetStore>(*db, dir.path / "readsets", roots());
  }

  std::vector<fs::path> roots() const { return {dir.path, test::shared_data_dir()}; }

  // R1/R2 FASTQ (names with /1, /2: samtools fastq -N) of the real NA12878 reads.
  std::pair<fs::path, fs::path> fastq_pair(bool gz) {
    const fs::path r1 = dir.path / (gz ? "r1.fq.gz" : "r1.fq"), r2 = dir.path / (gz ? "r2.fq.gz" : "r2.fq");
    std::string out;
    const std::string cmd = "samtools collate -u -O " + tiny_bam().string() + " " +
                            (dir.path / "c").string() + " | samtools fastq -N -F 0x900 -1 " + r1.string() +
                            " -2 " + r2.string() + " -s /dev/null -0 /dev/null -";
    EXPECT_EQ(test::run_command(cmd, &out), 0) << out;
    return {r1, r2};
  }

  ReadSet imported(const std::vector<std::string>& paths, const std::string& sample = "NA12878") {
    ReadSetMetadata m;
    m.sample_id = sample;
    m.subject_id = "HG001";
    m.tags = {{"cohort", "giab"}};
    ReadSet rs = store->create_registered(m, paths, "", 1000);
    EXPECT_EQ(rs.state, ReadSetState::Importing);
    store->run_import(rs.id);
    return *store->get(rs.id);
  }
};

TEST_P(ReadSetStoreTest, FastqPairRoundTripsExactlyWithAStableChecksum) {
  auto [r1, r2] = fastq_pair(true);
  ReadSet rs = imported({r1.string(), r2.string()});
  ASSERT_EQ(rs.state, ReadSetState::Active) << rs.failure_reason;
  EXPECT_EQ(rs.source_format, "FASTQ");
  EXPECT_TRUE(rs.paired);
  EXPECT_TRUE(rs.name_suffixes);
  EXPECT_GT(rs.read_count, 3000);
  EXPECT_EQ(rs.read_count % 2, 0);
  EXPECT_GE(rs.base_count, rs.read_count * 100);
  EXPECT_EQ(rs.source_bytes, fs::file_size(r1) + fs::file_size(r2));
  EXPECT_GT(rs.cram_bytes, 0u);
  EXPECT_EQ(rs.cram_bytes, fs::file_size(store->cram_path(rs.id)));
  EXPECT_EQ(rs.reads_sha256.rfind("sha256:", 0), 0u);
  // The CRAM is unaligned, readable by samtools without a reference, and holds every read once.
  std::string out;
  ASSERT_EQ(test::run_command("samtools view -c " + store->cram_path(rs.id).string(), &out), 0) << out;
  EXPECT_EQ(std::stoll(out), rs.read_count);
  ASSERT_EQ(test::run_command("samtools view -H " + store->cram_path(rs.id).string(), &out), 0);
  EXPECT_NE(out.find("@RG\tID:NA12878\tSM:NA12878"), std::string::npos) << out;
  EXPECT_EQ(out.find("@SQ"), std::string::npos);

  // FASTQ out, mate by mate: byte-identical to what went in (names, bases, qualities).
  std::string in1, in2;
  ASSERT_EQ(test::run_command("gzip -dc " + r1.string(), &in1), 0);
  ASSERT_EQ(test::run_command("gzip -dc " + r2.string(), &in2), 0);
  const fs::path e1 = store->export_file(rs.id, "fastq", 1), e2 = store->export_file(rs.id, "fastq", 2);
  EXPECT_EQ(test::read_file(e1), in1);
  EXPECT_EQ(test::read_file(e2), in2);
  EXPECT_EQ(store->export_file(rs.id, "fastq", 1), e1);  // cached

  // Import the export again: same reads, same checksum.
  ReadSet again = imported({e1.string(), e2.string()}, "NA12878b");
  ASSERT_EQ(again.state, ReadSetState::Active) << again.failure_reason;
  EXPECT_EQ(again.reads_sha256, rs.reads_sha256);
  EXPECT_EQ(again.read_count, rs.read_count);

  // Interleaved export imports as pairs with the same checksum too, and BAM export has every read.
  ReadSet inter = imported({store->export_file(rs.id, "fastq", 0).string()}, "NA12878c");
  ASSERT_EQ(inter.state, ReadSetState::Active) << inter.failure_reason;
  EXPECT_TRUE(inter.paired);
  EXPECT_EQ(inter.reads_sha256, rs.reads_sha256);
  const fs::path bam = store->export_file(rs.id, "bam", 0);
  ASSERT_EQ(test::run_command("samtools view -c " + bam.string(), &out), 0) << out;
  EXPECT_EQ(std::stoll(out), rs.read_count);
  EXPECT_EQ(imported({bam.string()}, "NA12878d").reads_sha256, rs.reads_sha256);
  EXPECT_THROW(store->export_file(rs.id, "sam", 0), InputError);
  EXPECT_THROW(store->export_file(rs.id, "bam", 1), InputError);
}

TEST_P(ReadSetStoreTest, AlignedBamBecomesUnalignedReadsInSequencerOrientation) {
  ReadSet rs = imported({tiny_bam().string()});
  ASSERT_EQ(rs.state, ReadSetState::Active) << rs.failure_reason;
  EXPECT_EQ(rs.source_format, "BAM");
  std::string out;
  ASSERT_EQ(test::run_command("samtools view -c -F 0x900 " + tiny_bam().string(), &out), 0);
  EXPECT_EQ(rs.read_count, std::stoll(out));
  // The same reads as samtools fastq gives from the BAM (order aside): compare sorted FASTQ text.
  const fs::path all = store->export_file(rs.id, "fastq", 0);
  std::string a, b;
  ASSERT_EQ(test::run_command("paste - - - - < " + all.string() + " | sort | md5sum", &a), 0);
  ASSERT_EQ(test::run_command("samtools fastq -F 0x900 " + tiny_bam().string() +
                                  " 2>/dev/null | paste - - - - | sort | md5sum",
                              &b),
            0);
  EXPECT_EQ(a, b);
  // Unaligned: no reference name, position or CIGAR left on any record.
  ASSERT_EQ(test::run_command(
                "samtools view " + store->cram_path(rs.id).string() + " | cut -f 3,4,6 | sort -u", &out),
            0);
  EXPECT_EQ(out, "*\t0\t*\n");
}

TEST_P(ReadSetStoreTest, UploadInPartsWithReplaceThenComplete) {
  auto [r1, r2] = fastq_pair(true);
  ReadSetMetadata m;
  m.sample_id = "S1";
  ReadSet rs = store->create_upload(m, 2, "key-1", 1000);
  EXPECT_EQ(rs.state, ReadSetState::Uploading);
  bool existed = false;
  EXPECT_EQ(store->create_upload(m, 2, "key-1", 1001, &existed).id, rs.id);
  EXPECT_TRUE(existed);
  auto put = [&](int part, const fs::path& src) {
    const fs::path tmp = store->tmp_dir(rs.id) / ("up" + std::to_string(part));
    fs::copy_file(src, tmp, fs::copy_options::overwrite_existing);
    return store->put_part(rs.id, part, tmp, fs::file_size(tmp), "", 2000);
  };
  put(1, r2);  // wrong file first: replaced below (a resumed upload)
  EXPECT_THROW(store->complete_upload(rs.id, 2500), ReadSetConflict);  // part 2 missing
  put(1, r1);
  put(2, r2);
  EXPECT_THROW(put(3, r2), InputError);
  EXPECT_EQ(store->complete_upload(rs.id, 3000).state, ReadSetState::Importing);
  EXPECT_THROW(put(1, r1), ReadSetConflict);
  EXPECT_EQ(store->pending_imports(), std::vector<std::string>{rs.id});
  store->run_import(rs.id);
  rs = *store->get(rs.id);
  ASSERT_EQ(rs.state, ReadSetState::Active) << rs.failure_reason;
  EXPECT_TRUE(store->pending_imports().empty());
  EXPECT_FALSE(fs::exists(dir.path / "readsets" / rs.id / "parts" / "1")) << "uploaded parts are not kept";
  EXPECT_EQ(rs.reads_sha256, imported({r1.string(), r2.string()}, "S2").reads_sha256);
}

// Each bad input fails its import with a reason naming the file and record; nothing is kept.
TEST_P(ReadSetStoreTest, BadInputsFailTheImportAndLeaveNothingBehind) {
  auto [r1, r2] = fastq_pair(false);
  const fs::path corrupt_gz = dir.path / "corrupt.fq.gz";
  test::write_file(corrupt_gz,
                   std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage, not deflate", 34));
  const fs::path truncated = dir.path / "truncated.bam";
  {
    const std::string whole = test::read_file(tiny_bam());
    test::write_file(truncated, whole.substr(0, whole.size() / 2));
  }
  const fs::path unequal = dir.path / "unequal.fq";
  test::write_file(unequal, "@a\nACGT\n+\nIIII\n@b\nACGT\n+\nIII\n");
  const fs::path empty = dir.path / "empty.fq";
  test::write_file(empty, "");
  const fs::path text = dir.path / "notes.txt";
  test::write_file(text, "these are not reads\n");
  const fs::path short_r2 = dir.path / "short_r2.fq";
  test::write_file(short_r2, test::read_file(r2).substr(0, 1000));
  const fs::path renamed_r2 = dir.path / "renamed_r2.fq";
  test::write_file(renamed_r2, "@other/2\nACGT\n+\nIIII\n");

  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{corrupt_gz.string()}, "corrupt.fq.gz"},
      {{truncated.string()}, "truncated.bam"},
      {{unequal.string()}, "record 2"},
      {{empty.string()}, "empty.fq"},
      {{text.string()}, "notes.txt"},
      {{r1.string(), short_r2.string()}, "short_r2.fq"},
      {{r1.string(), renamed_r2.string()}, "does not match read 1"},
  };
  for (const auto& [paths, reason] : cases) {
    ReadSet rs = imported(paths, "bad");
    EXPECT_EQ(rs.state, ReadSetState::Failed) << paths[0];
    EXPECT_NE(rs.failure_reason.find(reason), std::string::npos) << rs.failure_reason;
    EXPECT_THROW(store->cram_path(rs.id), ReadSetConflict);
    EXPECT_FALSE(fs::exists(dir.path / "readsets" / rs.id / "reads.cram"));
    EXPECT_EQ(rs.read_count, 0);
  }
  // The store is still consistent: a good import after all of that works.
  EXPECT_EQ(imported({r1.string(), r2.string()}).state, ReadSetState::Active);
}

// Issue 12: a source checked at registration and swapped afterwards for a symlink out of the allowed
// roots (or a directory above it swapped for one) is not read: the import fails, nothing is stored.
TEST_P(ReadSetStoreTest, SourceSwappedForALinkOutOfTheRootsFailsTheImport) {
  auto [r1, r2] = fastq_pair(false);
  const fs::path in = dir.path / "in", out = dir.path / "out";
  fs::create_directories(in / "sub");
  fs::create_directories(out / "sub");
  fs::copy_file(r1, in / "sub" / "r1.fq");
  fs::copy_file(r2, out / "secret.fq");
  fs::copy_file(r2, out / "sub" / "r1.fq");
  ReadSetStore confined(*db, dir.path / "readsets", {in});
  ReadSetMetadata m;
  m.sample_id = "S1";
  auto import_after = [&](const std::function<void()>& swap) {
    ReadSet rs = confined.create_registered(m, {(in / "sub" / "r1.fq").string()}, "", 1000);
    swap();
    confined.run_import(rs.id);
    return *confined.get(rs.id);
  };
  // The file itself becomes a link out of the root.
  ReadSet rs = import_after([&] {
    fs::remove(in / "sub" / "r1.fq");
    fs::create_symlink(out / "secret.fq", in / "sub" / "r1.fq");
  });
  EXPECT_EQ(rs.state, ReadSetState::Failed);
  EXPECT_NE(rs.failure_reason.find("leads out of the allowed input root"), std::string::npos)
      << rs.failure_reason;
  EXPECT_EQ(rs.read_count, 0);
  // A relative link climbing out with "..".
  rs = import_after([&] {
    fs::remove(in / "sub" / "r1.fq");
    fs::create_symlink("../../out/secret.fq", in / "sub" / "r1.fq");
  });
  EXPECT_EQ(rs.state, ReadSetState::Failed) << "read through a relative link out of the root";
  // A directory above the file becomes a link out of the root.
  rs = import_after([&] {
    fs::remove_all(in / "sub");
    fs::create_directory_symlink(out / "sub", in / "sub");
  });
  EXPECT_EQ(rs.state, ReadSetState::Failed) << "read through a directory link out of the root";
  // A link that stays inside the root is still followed.
  fs::remove(in / "sub");
  fs::create_directories(in / "real");
  fs::copy_file(r1, in / "real" / "r1.fq");
  rs = import_after([&] { fs::create_directory_symlink("real", in / "sub"); });
  EXPECT_EQ(rs.state, ReadSetState::Active) << rs.failure_reason;
}

// Issue 12, item 6: part uploads and exports a crash cut off are swept when a store starts (a day
// after their last write; live ones are kept).
TEST_P(ReadSetStoreTest, StaleSpoolAndExportFilesAreSweptOnStart) {
  const fs::path d = dir.path / "readsets" / "rs-00112233aabbccdd";
  fs::create_directories(d / "tmp");
  for (const char* f : {"tmp/up1", "tmp/up2", "export.ab12.tmp", "reads.cram"}) test::write_file(d / f, "x");
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(25);
  for (const char* f : {"tmp/up1", "export.ab12.tmp", "reads.cram"}) fs::last_write_time(d / f, old);
  ReadSetStore reopened(*db, dir.path / "readsets", roots());
  EXPECT_FALSE(fs::exists(d / "tmp" / "up1"));
  EXPECT_FALSE(fs::exists(d / "export.ab12.tmp"));
  EXPECT_TRUE(fs::exists(d / "tmp" / "up2")) << "a live upload was swept";
  EXPECT_TRUE(fs::exists(d / "reads.cram")) << "a stored read set was swept";
}

// Issue 12, item 6: exports are a bounded cache (least recently served first, never one served
// within the grace period nor the one just made), not kept forever.
TEST_P(ReadSetStoreTest, ExportCacheIsBoundedLeastRecentlyServedFirst) {
  auto [r1, r2] = fastq_pair(false);
  const ReadSet a = imported({r1.string(), r2.string()}, "A");
  const ReadSet b = imported({r1.string(), r2.string()}, "B");
  ASSERT_EQ(a.state, ReadSetState::Active) << a.failure_reason;
  ASSERT_EQ(b.state, ReadSetState::Active) << b.failure_reason;
  const fs::path a_fq = store->export_file(a.id, "fastq", 0);
  // Within the grace period nothing is removed, whatever the limit.
  store->set_export_cache_limit(1, std::chrono::seconds(3600));
  const fs::path b_fq = store->export_file(b.id, "fastq", 1);
  EXPECT_TRUE(fs::exists(a_fq));
  // Past it, making one export evicts the others until the total fits (here: all but the new one).
  store->set_export_cache_limit(1, std::chrono::seconds(0));
  const fs::path a_bam = store->export_file(a.id, "bam", 0);
  EXPECT_TRUE(fs::exists(a_bam)) << "the export just made was removed";
  EXPECT_FALSE(fs::exists(a_fq));
  EXPECT_FALSE(fs::exists(b_fq));
  // An evicted export is made again on demand (the same bytes), evicting the BAM in turn.
  const std::string again = test::read_file(store->export_file(a.id, "fastq", 0));
  EXPECT_FALSE(again.empty());
  EXPECT_FALSE(fs::exists(a_bam));
  // Room for everything: nothing goes.
  store->set_export_cache_limit(std::uint64_t(1) << 40, std::chrono::seconds(0));
  const fs::path b_fq2 = store->export_file(b.id, "fastq", 2);
  EXPECT_TRUE(fs::exists(a_fq));
  EXPECT_TRUE(fs::exists(b_fq2));
  EXPECT_EQ(test::read_file(a_fq), again);
}

TEST_P(ReadSetStoreTest, CanceledImportStaysImportingAndResumes) {
  auto [r1, r2] = fastq_pair(false);
  ReadSetMetadata m;
  m.sample_id = "S1";
  ReadSet rs = store->create_registered(m, {r1.string(), r2.string()}, "", 1000);
  std::atomic<bool> cancel{true};
  EXPECT_THROW(store->run_import(rs.id, &cancel), ImportCanceled);
  EXPECT_EQ(store->get(rs.id)->state, ReadSetState::Importing);
  // A restarted daemon finds it and imports it (a fresh store object on the same database).
  ReadSetStore reopened(*db, dir.path / "readsets", roots());
  ASSERT_EQ(reopened.pending_imports(), std::vector<std::string>{rs.id});
  reopened.run_import(rs.id);
  EXPECT_EQ(reopened.get(rs.id)->state, ReadSetState::Active);
  reopened.run_import(rs.id);  // not IMPORTING any more: nothing happens
  EXPECT_EQ(reopened.get(rs.id)->state, ReadSetState::Active);
}

TEST_P(ReadSetStoreTest, ListPagesFiltersAndDeleteRespectsUse) {
  auto [r1, r2] = fastq_pair(false);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ReadSetMetadata m;
    m.sample_id = "S" + std::to_string(i);
    m.subject_id = i % 2 ? "odd" : "even";
    ids.push_back(store->create_registered(m, {r1.string()}, "", 1000 + i / 2).id);
  }
  std::vector<std::string> seen;
  ReadSetFilter f;
  f.page_size = 2;
  for (int pages = 0; pages < 10; ++pages) {
    ReadSetPage p = store->list(f);
    for (const auto& rs : p.readsets) seen.push_back(rs.id);
    if (p.next_page_token.empty()) break;
    f.page_token = p.next_page_token;
  }
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(seen.size(), 5u);
  ReadSetFilter odd;
  odd.subject_id = "odd";
  EXPECT_EQ(store->list(odd).readsets.size(), 2u);
  ReadSetFilter garbage;
  garbage.page_token = "garbage";
  EXPECT_THROW(store->list(garbage), InputError);

  EXPECT_THROW(store->remove(ids[0], nullptr), ReadSetConflict);  // still IMPORTING
  store->run_import(ids[0]);
  EXPECT_THROW(store->remove(ids[0], [](const std::string&) { return true; }), ReadSetConflict);
  EXPECT_TRUE(store->remove(ids[0], [](const std::string&) { return false; }));
  EXPECT_FALSE(store->get(ids[0]));
  EXPECT_FALSE(fs::exists(dir.path / "readsets" / ids[0]));
  EXPECT_FALSE(store->remove(ids[0], nullptr));
}

TEST(ReadSetMetadata, ValidatesTypesAndValues) {
  EXPECT_THROW(ReadSetMetadata::from_json(json::object()), InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", 7}}), InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", "a b"}}), InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", "a"}, {"tags", {{"k", 1}}}}), InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", "a"}, {"tags", "x"}}), InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", "a"}, {"read_group", {{"PLATFORM", "x"}}}}),
               InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", "a"}, {"read_group", {{"SM", "b"}}}}), InputError);
  EXPECT_THROW(ReadSetMetadata::from_json({{"sample_id", "a"}, {"read_group", {{"PL", "x\ty"}}}}),
               InputError);
  auto m = ReadSetMetadata::from_json(
      {{"sample_id", "NA12878"}, {"tags", {{"cohort", "giab"}}}, {"read_group", {{"PL", "ILLUMINA"}}}});
  EXPECT_EQ(m.name, "NA12878");
  EXPECT_EQ(m.tags["cohort"], "giab");
}

INSTANTIATE_TEST_SUITE_P(Backends, ReadSetStoreTest, test::store_backends(), test::StoreBackendName{});

}  // namespace
}  // namespace omicsd
