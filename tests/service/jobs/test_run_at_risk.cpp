// Deadline risk (service/jobs/run_at_risk.hpp): the estimate and assessment on their own, then on SQLite
// and PostgreSQL: stage durations measured from completed tasks (the window of recent ones), runs flagged
// once however many daemons sweep, the run.at_risk event only for runs with a callback URL, and its
// delivery by the notifier, signed like every other event.
#include <gtest/gtest.h>

#include <thread>

#include "service/http/address_policy.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/run_at_risk.hpp"
#include "service/jobs/webhook_notifier.hpp"
#include "service/util/sha256.hpp"
#include "tests/support/test_support.hpp"
#include "tests/support/webhook_receiver.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {

constexpr int64_t T0 = 1'700'000'000'000;  // unix ms

TEST(RunAtRisk, MedianOfDurations) {
  EXPECT_EQ(median_duration_ms({7}), 7);
  EXPECT_EQ(median_duration_ms({9, 1, 5}), 5);
  EXPECT_EQ(median_duration_ms({10, 1, 4, 1000}), 7);  // (4 + 10) / 2; the outlier does not move it
  EXPECT_THROW(median_duration_ms({}), InputError);
}

TEST(RunAtRisk, RemainingWorkIsTheSumOfWhatIsLeftOfEachStage) {
  const std::map<std::string, StageEstimate> est = {
      {"align", {1000, 5}}, {"call", {400, 5}}, {"qc", {100, 5}}};
  // align running for 300 ms of its 1000: 700 + 400 + 100 left.
  const std::vector<UnfinishedStage> stages = {
      {"align", true, T0 - 300}, {"call", false, {}}, {"qc", false, {}}};
  RunRisk r = assess_run_risk(T0 + 1200, stages, est, T0);
  EXPECT_EQ(r.remaining_ms, 1200);
  EXPECT_EQ(r.finish_at, T0 + 1200);
  EXPECT_FALSE(r.at_risk);  // finishing exactly at the deadline meets it
  r = assess_run_risk(T0 + 1199, stages, est, T0);
  EXPECT_TRUE(r.at_risk);
  EXPECT_NE(r.reason.find("1 ms past the deadline"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("align 700 ms (running)"), std::string::npos) << r.reason;
  // A stage running past its estimate counts as nothing left, not as negative time.
  r = assess_run_risk(T0 + 500, {{"align", true, T0 - 5000}, {"qc", false, {}}}, est, T0);
  EXPECT_EQ(r.remaining_ms, 100);
  // Stages never measured count 0 and are named.
  r = assess_run_risk(T0, {{"mystery", false, {}}, {"qc", false, {}}}, est, T0);
  EXPECT_EQ(r.remaining_ms, 100);
  EXPECT_EQ(r.unmeasured, std::vector<std::string>{"mystery"});
  EXPECT_NE(r.reason.find("not yet measured, counted as 0 ms: mystery"), std::string::npos) << r.reason;
}

struct AtRiskStoreTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;
  std::unique_ptr<JobStore> store;

  void SetUp() override {
    url = test::store_database_url(GetParam(), dir.path / "jobs.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    store = open_job_store(url);
  }

  // A germline run (align -> call -> qc) submitted at `now`.
  omicsd::Run submit(int64_t now, std::optional<int64_t> deadline, const std::string& callback = "") {
    NewRun r;
    r.workflow = "germline";
    r.deadline = deadline;
    r.callback_url = callback;
    return store->create_run(r, now).run;
  }
  // Leases and completes the next task (of any run) taking `ms`, starting at `now`.
  void run_next_task(int64_t now, int64_t ms) {
    auto l = store->lease_task("w", json::object(), 600, now);
    ASSERT_TRUE(l);
    store->complete_task(l->task.id, l->task.lease_token, json::object(), now + ms);
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, AtRiskStoreTest, test::store_backends(), test::StoreBackendName{});

TEST_P(AtRiskStoreTest, StageDurationsAreMeasuredFromRecentCompletions) {
  EXPECT_TRUE(store->stage_estimates("germline").empty());
  // 25 runs: align takes 1000 + i ms (the window keeps the last 20: i = 5..24, median 1014.5 -> 1014),
  // call 300 ms, qc fails after 50 ms (only completions are measured).
  int64_t now = T0;
  for (int i = 0; i < 25; ++i) {
    submit(now, std::nullopt);
    run_next_task(now, 1000 + i);
    now += 2000;
    run_next_task(now, 300);
    now += 1000;
    auto qc = store->lease_task("w", json::object(), 600, now);
    ASSERT_TRUE(qc);
    ASSERT_EQ(qc->task.name, "qc");
    store->fail_task(qc->task.id, qc->task.lease_token, "boom", /*retryable=*/false, now + 50);
    now += 1000;
  }
  store->flag_at_risk_runs(now);  // prunes to the window
  auto est = store->stage_estimates("germline");
  ASSERT_EQ(est.size(), 2u);
  EXPECT_EQ(est["align"].duration_ms, 1014);
  EXPECT_EQ(est["align"].samples, kStageSampleWindow);
  EXPECT_EQ(est["call"].duration_ms, 300);
  EXPECT_EQ(est.count("qc"), 0u);
  EXPECT_TRUE(store->stage_estimates("align").empty());  // by workflow
  // Another daemon sees the same estimates.
  EXPECT_EQ(open_job_store(url)->stage_estimates("germline")["align"].duration_ms, 1014);
}

TEST_P(AtRiskStoreTest, RunsAreFlaggedOnceAcrossDaemonsAndOnlyRunsWithACallbackGetAnEvent) {
  // Measure the stages: align 1000, call 500, qc 200 (1700 ms for a whole run).
  submit(T0, std::nullopt);
  run_next_task(T0, 1000);
  run_next_task(T0 + 1000, 500);
  run_next_task(T0 + 1500, 200);
  const int64_t now = T0 + 10'000;
  const omicsd::Run easy = submit(now, now + 1700, "http://127.0.0.1:9/hook");   // just makes it
  const omicsd::Run tight = submit(now, now + 1699, "http://127.0.0.1:9/hook");  // 1 ms short
  const omicsd::Run silent = submit(now, now + 100);                             // no callback
  const omicsd::Run no_deadline = submit(now, std::nullopt, "http://127.0.0.1:9/hook");
  auto other = open_job_store(url);
  // Two daemons sweep at once, repeatedly: each run is flagged by exactly one of them, once.
  std::vector<AtRiskRun> a, b;
  std::thread t1([&] {
    for (int i = 0; i < 5; ++i)
      for (auto& x : store->flag_at_risk_runs(now)) a.push_back(x);
  });
  std::thread t2([&] {
    for (int i = 0; i < 5; ++i)
      for (auto& x : other->flag_at_risk_runs(now)) b.push_back(x);
  });
  t1.join();
  t2.join();
  std::map<std::string, AtRiskRun> flagged;
  for (auto* v : {&a, &b})
    for (const AtRiskRun& x : *v)
      EXPECT_TRUE(flagged.emplace(x.run_id, x).second) << x.run_id << " flagged twice";
  ASSERT_EQ(flagged.size(), 2u);
  ASSERT_TRUE(flagged.count(tight.id));
  ASSERT_TRUE(flagged.count(silent.id));
  EXPECT_EQ(flagged[tight.id].risk.remaining_ms, 1700);
  EXPECT_EQ(flagged[tight.id].group, "default");
  EXPECT_TRUE(flagged[tight.id].webhook);
  EXPECT_FALSE(flagged[silent.id].webhook);
  EXPECT_EQ(store->get_run(tight.id)->at_risk_at, now);
  EXPECT_EQ(store->get_run(silent.id)->at_risk_at, now);
  EXPECT_FALSE(store->get_run(easy.id)->at_risk_at);
  EXPECT_FALSE(store->get_run(no_deadline.id)->at_risk_at);
  // The event: one, typed run.at_risk, with the deadline, the estimate and the reason.
  const auto events = store->list_webhooks(tight.id);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "run.at_risk");
  EXPECT_EQ(events[0].state, RunState::Queued);
  EXPECT_EQ(events[0].created_at, now);
  EXPECT_EQ(events[0].detail["deadline"], now + 1699);
  EXPECT_EQ(events[0].detail["estimated_finish_at"], now + 1700);
  EXPECT_EQ(events[0].detail["remaining_ms"], 1700);
  EXPECT_NE(events[0].detail["reason"].get<std::string>().find("1 ms past the deadline"), std::string::npos);
  EXPECT_TRUE(store->list_webhooks(silent.id).empty());
  // Later sweeps leave flagged runs alone, even when they fall further behind.
  EXPECT_TRUE(store->flag_at_risk_runs(now + 60'000).size() == 1);  // only easy is new
  EXPECT_EQ(store->list_webhooks(tight.id).size(), 1u);
  // The run's terminal event still follows, typed by its state.
  ASSERT_TRUE(store->cancel_run(tight.id, now + 70'000));
  const auto after = store->list_webhooks(tight.id);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(webhook_event_type(after[0]), "run.at_risk");
  EXPECT_EQ(webhook_event_type(after[1]), "run.canceled");
  EXPECT_TRUE(after[1].detail.is_null());
}

TEST_P(AtRiskStoreTest, TheNotifierDeliversTheEventSigned) {
  test::WebhookReceiver rx;
  rx.start();
  submit(T0, std::nullopt);
  run_next_task(T0, 1000);
  const int64_t now = T0 + 5000;
  const omicsd::Run late = submit(now, now + 10, rx.url());
  ASSERT_EQ(store->flag_at_risk_runs(now).size(), 1u);
  WebhookOptions o;
  o.secret = "k";
  o.policy = AddressPolicy({parse_cidr("127.0.0.1")});
  WebhookNotifier n(
      *store, o,
      [](const std::string& id) {
        return json{{"id", id}};
      },
      nullptr);
  EXPECT_EQ(n.deliver_due(now), 1);
  ASSERT_EQ(rx.count(), 1u);
  const auto& hit = rx.hits[0];
  EXPECT_EQ(hit.headers.at("x-omicsd-event"), "run.at_risk");
  const std::string ts = hit.headers.at("x-omicsd-timestamp");
  EXPECT_EQ(hit.headers.at("x-omicsd-signature"), "sha256=" + hmac_sha256_hex("k", ts + "." + hit.body));
  const json body = json::parse(hit.body);
  EXPECT_EQ(body["type"], "run.at_risk");
  EXPECT_EQ(body["run_id"], late.id);
  EXPECT_EQ(body["state"], "QUEUED");
  EXPECT_EQ(body["at_risk"]["deadline"], now + 10);
  EXPECT_EQ(body["at_risk"]["estimated_finish_at"], now + 1000);
  EXPECT_EQ(body["at_risk"]["unmeasured_stages"], json::array({"call", "qc"}));
  EXPECT_EQ(store->list_webhooks(late.id)[0].status, WebhookStatus::Delivered);
}

}  // namespace
