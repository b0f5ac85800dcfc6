// `omicsd reference add|list|get|delete` against the reference routes served in this process (an
// HttpServer with add_reference_routes over an SQLite reference store; imports run on a background
// thread, so `add --wait` really polls).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "service/http/http_server.hpp"
#include "service/stores/reference_routes.hpp"
#include "service/stores/reference_store.hpp"
#include "service/db/sql_db.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliReferenceTest : ::testing::Test {
  test::TempDir dir;
  std::unique_ptr<sql::Db> db;
  std::unique_ptr<ReferenceStore> store;
  std::unique_ptr<http::HttpServer> server;
  std::mutex mu;
  std::vector<std::thread> imports;
  std::string cli;

  void SetUp() override {
    db = sql::open_db("sqlite:" + (dir.path / "refs.db").string(), "reference store");
    ReferenceStoreOptions so;
    so.allow_roots = {dir.path / "inputs"};
    fs::create_directories(dir.path / "inputs");
    store = std::make_unique<ReferenceStore>(*db, dir.path / "refs", so);
    http::Router router;
    ReferenceRoutesOptions o;
    o.schedule_import = [this](const std::string& id) {
      std::lock_guard lk(mu);
      imports.emplace_back([this, id] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // IMPORTING for a while
        store->run_import(id);
      });
    };
    add_reference_routes(router, *store, o);
    http::HttpServerOptions ho;
    ho.port = 0;
    server = std::make_unique<http::HttpServer>(ho, std::move(router));
    server->start();
    cli = test::omicsd_binary() + " reference ";
  }
  void TearDown() override {
    server.reset();
    std::lock_guard lk(mu);
    for (auto& t : imports) t.join();
  }
  std::string server_flag() const { return " --server http://127.0.0.1:" + std::to_string(server->port()); }
  int run(const std::string& args, std::string* out) {
    return test::run_command("env -u OMICSD_TOKEN " + cli + args + server_flag() + " 2>&1", out);
  }
};

TEST_F(CliReferenceTest, AddWaitListGetDelete) {
  const fs::path fa = dir.path / "small.fa";
  test::write_file(fa, ">chrA demo\nACGTACGTAC\nGTACGTNNac\n>chrB\nTTTTGGGGCCCCAAAA\n");
  std::string out;
  ASSERT_EQ(run("add " + fa.string() + " --name 'demo ref' --description tiny --wait", &out), 0) << out;
  const auto sp = out.rfind("ref-");
  ASSERT_NE(sp, std::string::npos) << out;
  const std::string id = out.substr(sp, 20);
  EXPECT_NE(out.find(id + " ACTIVE"), std::string::npos) << out;

  ASSERT_EQ(run("list", &out), 0) << out;
  EXPECT_NE(out.find(id), std::string::npos) << out;
  EXPECT_NE(out.find("demo ref"), std::string::npos) << out;
  EXPECT_NE(out.find("ACTIVE"), std::string::npos) << out;

  ASSERT_EQ(run("get " + id + " --json", &out), 0) << out;
  const json j = json::parse(out);
  EXPECT_EQ(j["name"], "demo ref");
  EXPECT_EQ(j["description"], "tiny");
  ASSERT_EQ(j["sequences"].size(), 2u);
  EXPECT_EQ(j["sequences"][1]["length"], 16);
  EXPECT_EQ(j["sequences"][1]["md5"], store->get(id)->sequences[1].md5);
  ASSERT_EQ(run("get " + id, &out), 0) << out;
  EXPECT_NE(out.find("chrB"), std::string::npos) << out;
  EXPECT_NE(out.find(store->get(id)->sequences[0].md5), std::string::npos) << out;

  ASSERT_EQ(run("list --md5 " + store->get(id)->digest + " --json", &out), 0) << out;
  EXPECT_EQ(json::parse(out)["references"].size(), 1u);

  ASSERT_EQ(run("delete " + id, &out), 0) << out;
  EXPECT_NE(out.find("deleted " + id), std::string::npos) << out;
  EXPECT_NE(run("get " + id, &out), 0);
  EXPECT_NE(out.find("unknown reference"), std::string::npos) << out;
}

TEST_F(CliReferenceTest, FailedImportAndRefusedRegistrationsSayWhy) {
  const fs::path fa = dir.path / "dups.fa";
  test::write_file(fa, ">a\nACGT\n>a\nACGT\n");
  std::string out;
  EXPECT_EQ(run("add " + fa.string() + " --name dups --wait", &out), 1) << out;
  EXPECT_NE(out.find("FAILED"), std::string::npos) << out;
  EXPECT_NE(out.find("line 3: duplicate contig name 'a'"), std::string::npos) << out;

  const fs::path outside = dir.path / "outside.fa";
  test::write_file(outside, ">a\nACGT\n");
  EXPECT_NE(run("add --uri " + outside.string() + " --name out", &out), 0);
  EXPECT_NE(out.find("400"), std::string::npos) << out;
  EXPECT_NE(out.find("allow"), std::string::npos) << out;

  EXPECT_EQ(run("add " + fa.string() + " --uri " + outside.string() + " --name both", &out), 2) << out;

  const fs::path inside = dir.path / "inputs" / "g.fa";
  test::write_file(inside, ">g\nACGTN\n");
  ASSERT_EQ(run("add --uri " + inside.string() + " --name reg --wait --json", &out), 0) << out;
  EXPECT_EQ(json::parse(out)["state"], "ACTIVE");
}

}  // namespace
}  // namespace omicsd
