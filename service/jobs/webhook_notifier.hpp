#pragma once
// Delivers run webhooks: the JobStore writes one event per terminal transition of a run that has a
// callback_url (in the same transaction, so none is lost); this notifier claims due events, POSTs a
// signed JSON body to the callback URL and records the outcome, retrying failures with exponential
// backoff until max_attempts. Delivery is at least once: receivers dedupe on X-Omicsd-Delivery.
//
// Signature (Stripe/GitHub style, so receivers can reuse what they have):
//   X-Omicsd-Timestamp: <unix seconds>
//   X-Omicsd-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
// Receivers recompute the HMAC over the exact bytes received and reject old timestamps.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "service/http/address_policy.hpp"

namespace omicsd {

class JobStore;
struct WebhookDelivery;
class Metrics;

struct WebhookOptions {
  std::string secret;  // HMAC key; empty: events are sent unsigned (and the daemon logs that once)
  int max_attempts = 10;
  std::chrono::milliseconds backoff_initial{1'000};  // doubled per failed attempt ...
  std::chrono::milliseconds backoff_max{300'000};    // ... up to this
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds poll_interval{500};  // how often due events are looked for
  std::chrono::milliseconds claim{60'000};       // claimed events are hidden from other daemons this long
  int batch = 16;
  // Delivery threads, each claiming and sending events on its own: a receiver that hangs until
  // request_timeout holds up one of them, not the others' events.
  int senders = 4;
  std::string ca_file;  // https callbacks: extra CA bundle (empty: system CAs)
  // Which addresses a callback may connect to (public ones, plus what the operator allowed); the
  // client connects only to an address this accepted. Receivers' answers are not read beyond 64 KB
  // and only their status is recorded (never their body: it would be shown to clients).
  AddressPolicy policy;
};

// The event's type: run.completed, run.failed, run.canceled (from the terminal state it records) or the
// type the event names (run.at_risk).
std::string webhook_event_type(const WebhookDelivery& event);

// The JSON body of one event, given the run's current summary (id, workflow, state, outputs...).
nlohmann::json webhook_event_body(const WebhookDelivery& event, const nlohmann::json& run_summary);

// The headers a delivery carries (exposed for tests and for receivers' documentation).
struct WebhookSignature {
  std::string timestamp;  // unix seconds
  std::string signature;  // "sha256=<hex>", empty without a secret
};
WebhookSignature sign_webhook(const std::string& secret, const std::string& body, int64_t unix_seconds);

class WebhookNotifier {
 public:
  // describe_run(run_id) gives the run summary put into each event.
  WebhookNotifier(JobStore& store, WebhookOptions options,
                  std::function<nlohmann::json(const std::string& run_id)> describe_run,
                  std::shared_ptr<Metrics> metrics);
  ~WebhookNotifier();  // stop()s

  void start();
  void stop();  // finishes the delivery in flight, then returns
  // Delivers every event due at `now_ms` once (the loop calls it; tests may too). Returns the number
  // of delivery attempts made.
  int deliver_due(int64_t now_ms);

 private:
  bool deliver_one(const WebhookDelivery& event, std::string* error);
  std::chrono::milliseconds backoff(int failed_attempts) const;

  JobStore& store_;
  WebhookOptions options_;
  std::function<nlohmann::json(const std::string&)> describe_run_;
  std::shared_ptr<Metrics> metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace omicsd
