// The stores end to end over loopback, on each job store backend: upload a reference and a read set
// (in two parts) to a real `omicsd serve`, run germline on them by id, and find the sample among the
// carriers of a GIAB truth variant with the right genotype; the read set streams back out as the
// same FASTQ; deletes are refused while a run uses the objects; bad input gets clear 4xx answers
// or FAILED imports while the daemon keeps serving; everything survives a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "tests/support/serve_harness.hpp"

namespace omicsd::test {
namespace {

// Sends a file as the request body with curl; returns the status and the answer.
HttpResult send_file(const Daemon& d, const std::string& method, const std::string& path,
                     const fs::path& file, const std::string& content_type) {
  TempDir t;
  const fs::path resp = t.path / "resp";
  std::string out;
  run_command("curl -s -m 60 -o " + q(resp.string()) + " -w '%{http_code}' -X " + method + " -H " +
                  q("Content-Type: " + content_type) + " --data-binary @" + q(file.string()) + " " +
                  q(d.url() + path),
              &out);
  HttpResult r;
  r.status = std::atoi(out.c_str());
  r.body = read_file(resp);
  return r;
}

// Polls GET path until field "state" is not `while_state` (bounded); returns the last JSON.
json wait_state(const Daemon& d, const std::string& path, const std::vector<std::string>& busy,
                int timeout_s = 60) {
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  json last;
  while (Clock::now() < deadline) {
    HttpResult r = d.get(path);
    last = r.j();
    if (r.status == 200 && std::find(busy.begin(), busy.end(), last.value("state", "")) == busy.end())
      return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return last;
}

// "0|1" -> "0/1": compare genotypes without phase.
std::string unphased(std::string gt) {
  std::replace(gt.begin(), gt.end(), '|', '/');
  return gt;
}

using StoresE2E = ServeStoreTest;

TEST_P(StoresE2E, ReferenceAndReadSetToCarriersOfATruthVariant) {
  // The reads as a FASTQ pair (what a lab uploads), from the real NA12878 BAM.
  const fs::path r1 = tmp.path / "NA12878_R1.fq.gz", r2 = tmp.path / "NA12878_R2.fq.gz";
  std::string out;
  ASSERT_EQ(run_command("samtools collate -u -O " + q(bam.string()) + " " + q((tmp.path / "c").string()) +
                            " | samtools fastq -N -F 0x900 -1 " + q(r1.string()) + " -2 " + q(r2.string()) +
                            " -s /dev/null -0 /dev/null -",
                        &out),
            0)
      << out;

  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 1 --allow-root " + q(root.string()), tmp.path / "d.log"));

  // Reference: upload the FASTA, wait for ACTIVE, check the refget MD5 against samtools.
  HttpResult up = send_file(d, "POST", "/v1/references?name=chr22-q", ref, "text/x-fasta");
  ASSERT_EQ(up.status, 202) << up.body;
  const std::string ref_id = up.j()["id"];
  json refj = wait_state(d, "/v1/references/" + ref_id, {"IMPORTING"});
  ASSERT_EQ(refj.value("state", ""), "ACTIVE") << refj.dump();
  ASSERT_EQ(run_command("samtools dict " + q(ref.string()) + " | grep -o 'M5:[0-9a-f]*' | cut -c4-", &out),
            0);
  ASSERT_FALSE(refj["sequences"].empty());
  EXPECT_EQ(refj["sequences"][0].value("md5", "") + "\n", out);

  // Read set: metadata first, then both parts, then complete.
  HttpResult rs = d.post("/v1/readsets", json{{"sample_id", "NA12878"},
                                              {"subject_id", "HG001"},
                                              {"tags", {{"cohort", "giab"}}},
                                              {"read_group", {{"PL", "ILLUMINA"}}},
                                              {"parts", 2}}
                                             .dump());
  ASSERT_EQ(rs.status, 201) << rs.body;
  const std::string rs_id = rs.j()["id"];
  ASSERT_EQ(send_file(d, "PUT", "/v1/readsets/" + rs_id + "/parts/1", r1, "application/gzip").status, 200);
  ASSERT_EQ(send_file(d, "PUT", "/v1/readsets/" + rs_id + "/parts/2", r2, "application/gzip").status, 200);
  ASSERT_EQ(d.post("/v1/readsets/" + rs_id + "/complete", "{}").status, 202);
  json rsj = wait_state(d, "/v1/readsets/" + rs_id, {"IMPORTING"});
  ASSERT_EQ(rsj.value("state", ""), "ACTIVE") << rsj.dump();
  EXPECT_TRUE(rsj["paired"].get<bool>());
  EXPECT_EQ(rsj["read_count"].get<int64_t>() % 2, 0);
  EXPECT_GT(rsj["read_count"].get<int64_t>(), 3000);
  EXPECT_GT(rsj["compression_ratio"].get<double>(), 1.0) << "CRAM 3.1 vs the FASTQ.gz upload";
  std::printf("[ readset  ] %lld reads: FASTQ.gz %lld bytes -> CRAM 3.1 %lld bytes (ratio %.2f)\n",
              (long long)rsj["read_count"].get<int64_t>(), (long long)rsj["source_bytes"].get<int64_t>(),
              (long long)rsj["cram_bytes"].get<int64_t>(), rsj["compression_ratio"].get<double>());

  // Round trip over HTTP: mate 1 comes back as the same FASTQ text.
  const fs::path back = tmp.path / "back_R1.fq";
  EXPECT_EQ(d.request("GET", "/v1/readsets/" + rs_id + "/content?format=fastq&mate=1", "", {}, back.string())
                .status,
            200);
  ASSERT_EQ(run_command("gzip -dc " + q(r1.string()) + " | cmp - " + q(back.string()), &out), 0) << out;

  // Germline on the stored objects, by id (through the CLI); the sample comes from the read set.
  ASSERT_EQ(run_command(omicsd_binary() + " submit --json --server " + d.url() +
                            " --workflow germline --reference " + ref_id + " --reads " + rs_id +
                            " --param threads=2 2>/dev/null",
                        &out),
            0)
      << out;
  const json submitted = json::parse(out, nullptr, false);
  ASSERT_TRUE(submitted.is_object() && submitted.contains("id")) << out;
  EXPECT_EQ(submitted["provenance"]["submitted_inputs"]["reference"], ref_id) << out;
  json done = d.wait_run(submitted["id"], 300);
  ASSERT_EQ(done.value("state", ""), "COMPLETE") << done.dump();
  EXPECT_EQ(done.value("sample", ""), "NA12878");

  // The first GIAB truth SNV of the stretch and its genotype.
  ASSERT_EQ(run_command("bcftools query -f '%CHROM %POS %REF %ALT [%GT]\\n' " +
                            q((tiny() / "truth.vcf.gz").string()) + " | head -1",
                        &out),
            0);
  std::istringstream truth(out);
  std::string chrom, pos, refb, alt, gt;
  truth >> chrom >> pos >> refb >> alt >> gt;
  ASSERT_FALSE(gt.empty()) << out;
  const std::string site = "chrom=" + chrom + "&pos=" + pos + "&ref=" + refb + "&alt=" + alt;
  json carriers;
  const auto deadline = Clock::now() + std::chrono::seconds(60);  // the ingest runs in the background
  while (Clock::now() < deadline) {
    HttpResult v = d.get("/v1/variants?" + site);
    carriers = v.j();
    if (v.status == 200 && carriers.contains("carriers") && !carriers["carriers"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(carriers.contains("carriers") && carriers["carriers"].size() == 1) << carriers.dump();
  const json c = carriers["carriers"][0];
  EXPECT_EQ(c.value("sample_id", ""), "NA12878");
  EXPECT_EQ(c.value("subject_id", ""), "HG001");
  EXPECT_EQ(unphased(c.value("gt", "")), unphased(gt)) << c.dump();
  EXPECT_GT(c.value("dp", 0), 0);

  // A cohort rule over the truth variant and the sample's tag finds it; another tag does not.
  json rule = {
      {"variants", json::array({{{"chrom", chrom}, {"pos", std::stoll(pos)}, {"ref", refb}, {"alt", alt}}})},
      {"tags", {{"cohort", "giab"}}}};
  HttpResult cq = d.post("/v1/cohorts/query", rule.dump());
  ASSERT_EQ(cq.status, 200) << cq.body;
  EXPECT_NE(cq.body.find("NA12878"), std::string::npos) << cq.body;
  rule["tags"] = {{"cohort", "other"}};
  cq = d.post("/v1/cohorts/query", rule.dump());
  ASSERT_EQ(cq.status, 200) << cq.body;
  EXPECT_EQ(cq.body.find("NA12878"), std::string::npos) << cq.body;

  // The CLI asks the same question.
  ASSERT_EQ(run_command(omicsd_binary() + " query --server " + d.url() + " --variant " + chrom + ":" + pos +
                            ":" + refb + ":" + alt,
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("NA12878"), std::string::npos) << out;

  // Restart without workers: the stores are still there; a queued run pins its reference and read
  // set against deletion until it is canceled.
  ASSERT_EQ(d.kill_now(SIGTERM), 0);
  Daemon d2;
  ASSERT_TRUE(d2.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d2.log"));
  EXPECT_EQ(d2.get("/v1/readsets/" + rs_id).j().value("state", ""), "ACTIVE");
  EXPECT_EQ(d2.get("/v1/variants?" + site).j()["carriers"].size(), 1u);
  HttpResult queued = d2.post("/v1/runs", json{{"workflow", "germline"},
                                               {"sample", "again"},
                                               {"inputs", {{"reference", ref_id}, {"reads", rs_id}}}}
                                              .dump());
  ASSERT_EQ(queued.status, 201) << queued.body;
  EXPECT_EQ(d2.request("DELETE", "/v1/references/" + ref_id).status, 409);
  EXPECT_EQ(d2.request("DELETE", "/v1/readsets/" + rs_id).status, 409);
  ASSERT_EQ(d2.post("/v1/runs/" + queued.j()["id"].get<std::string>() + "/cancel", "{}").status, 200);
  EXPECT_EQ(d2.request("DELETE", "/v1/readsets/" + rs_id).status, 204);
  EXPECT_EQ(d2.get("/v1/readsets/" + rs_id).status, 404);
  EXPECT_EQ(d2.request("DELETE", "/v1/references/" + ref_id).status, 204);
}

TEST_P(StoresE2E, BadInputGetsClearAnswersAndTheDaemonKeepsServing) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"));
  // Metadata of the wrong type, unknown fields, neither sources nor parts, files outside the roots.
  for (const json& body :
       {json{{"sample_id", 12}, {"parts", 1}}, json{{"sample_id", "S"}, {"tags", "x"}, {"parts", 1}},
        json{{"sample_id", "S"}, {"colour", "red"}, {"parts", 1}}, json{{"sample_id", "S"}},
        json{{"sample_id", "S"}, {"sources", json::array({"/etc/passwd"})}},
        json{{"sample_id", "S"}, {"parts", 3}}}) {
    HttpResult r = d.post("/v1/readsets", body.dump());
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    EXPECT_TRUE(r.j().contains("error")) << r.body;
  }
  EXPECT_EQ(d.post("/v1/readsets", "{not json").status, 400);

  // A corrupt gzip and a truncated BAM, registered by URI: accepted, then FAILED with the reason.
  const fs::path corrupt = root / "corrupt.fq.gz";
  write_file(corrupt, std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not deflate data at all", 34));
  const fs::path truncated = root / "truncated.bam";
  {
    const std::string whole = read_file(bam);
    write_file(truncated, whole.substr(0, whole.size() / 2));
  }
  for (const fs::path& f : {corrupt, truncated}) {
    HttpResult r =
        d.post("/v1/readsets", json{{"sample_id", "bad"}, {"sources", json::array({f.string()})}}.dump());
    ASSERT_EQ(r.status, 202) << r.body;
    json j = wait_state(d, "/v1/readsets/" + r.j()["id"].get<std::string>(), {"IMPORTING"});
    EXPECT_EQ(j.value("state", ""), "FAILED") << j.dump();
    EXPECT_NE(j.value("failure_reason", "").find(f.filename().string()), std::string::npos) << j.dump();
    // A FAILED read set cannot be run or exported.
    EXPECT_EQ(d.get("/v1/readsets/" + j["id"].get<std::string>() + "/content?format=fastq").status, 409);
    HttpResult run = d.post(
        "/v1/runs",
        json{{"workflow", "align"}, {"inputs", {{"reference", ref.string()}, {"reads", j["id"]}}}}.dump());
    EXPECT_EQ(run.status, 400) << run.body;
  }
  // A FASTA with duplicate names fails its import with the reason.
  const fs::path dup = tmp.path / "dup.fa";
  write_file(dup, ">a\nACGT\n>a\nACGT\n");
  HttpResult r = send_file(d, "POST", "/v1/references?name=dup", dup, "text/x-fasta");
  ASSERT_EQ(r.status, 202) << r.body;
  json j = wait_state(d, "/v1/references/" + r.j()["id"].get<std::string>(), {"IMPORTING"});
  EXPECT_EQ(j.value("state", ""), "FAILED") << j.dump();
  EXPECT_NE(j.value("failure_reason", "").find("duplicate"), std::string::npos) << j.dump();
  // References by URI: inside the roots it imports; outside (or escaping with ..) it is refused.
  r = d.post("/v1/references", json{{"name", "q"}, {"uri", "file://" + ref.string()}}.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(
      wait_state(d, "/v1/references/" + r.j()["id"].get<std::string>(), {"IMPORTING"}).value("state", ""),
      "ACTIVE");
  EXPECT_EQ(d.post("/v1/references", json{{"name", "x"}, {"uri", "/etc/hostname"}}.dump()).status, 400);
  EXPECT_EQ(
      d.post("/v1/references", json{{"name", "x"}, {"uri", (root / ".." / "dup.fa").string()}}.dump()).status,
      400);
  // Unknown store ids in a run, unknown objects, bad queries.
  EXPECT_EQ(
      d.post("/v1/runs", json{{"workflow", "align"},
                              {"inputs", {{"reference", "ref-0000000000000000"}, {"reads", bam.string()}}}}
                             .dump())
          .status,
      400);
  EXPECT_EQ(d.get("/v1/readsets/rs-0000000000000000").status, 404);
  EXPECT_EQ(d.get("/v1/readsets/nonsense").status, 404);
  EXPECT_EQ(d.get("/v1/variants?chrom=q&pos=abc&ref=A&alt=G").status, 400);
  EXPECT_EQ(d.post("/v1/cohorts/query", "[1,2]").status, 400);
  EXPECT_EQ(d.get("/healthz").status, 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoresE2E, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
