#include "service/jobs/webhook_notifier.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

#include "service/http/http_client.hpp"
#include "service/jobs/job_store.hpp"
#include "service/util/metrics.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;

int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Whether the URL names a path beyond "/" (the client keeps it as its prefix, minus trailing
// slashes; a bare host has to be posted to "/").
bool url_has_path(const std::string& url) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return slash != std::string::npos && url.find_first_not_of('/', slash) != std::string::npos;
}

}  // namespace

std::string webhook_event_type(const WebhookDelivery& ev) {
  if (!ev.event.empty()) return ev.event;
  switch (ev.state) {
    case RunState::Complete:
      return "run.completed";
    case RunState::Failed:
      return "run.failed";
    case RunState::Canceled:
      return "run.canceled";
    default:
      return "run.updated";
  }
}

json webhook_event_body(const WebhookDelivery& event, const json& run_summary) {
  json body = {{"id", "evt-" + std::to_string(event.id)}, {"type", webhook_event_type(event)},
               {"created_at", event.created_at},          {"run_id", event.run_id},
               {"state", to_string(event.state)},         {"run", run_summary}};
  // run.at_risk: the deadline, the estimated finish and remaining work, and the reason.
  if (!event.detail.is_null()) body["at_risk"] = event.detail;
  return body;
}

WebhookSignature sign_webhook(const std::string& secret, const std::string& body, int64_t unix_seconds) {
  WebhookSignature s;
  s.timestamp = std::to_string(unix_seconds);
  if (!secret.empty()) s.signature = "sha256=" + hmac_sha256_hex(secret, s.timestamp + "." + body);
  return s;
}

WebhookNotifier::WebhookNotifier(JobStore& store, WebhookOptions options,
                                 std::function<json(const std::string&)> describe_run,
                                 std::shared_ptr<Metrics> metrics)
    : store_(store),
      options_(std::move(options)),
      describe_run_(std::move(describe_run)),
      metrics_(std::move(metrics)) {
  options_.max_attempts = std::max(options_.max_attempts, 1);
  options_.batch = std::max(options_.batch, 1);
}

WebhookNotifier::~WebhookNotifier() { stop(); }

void WebhookNotifier::start() {
  for (int i = 0; i < std::max(options_.senders, 1); ++i)
    threads_.emplace_back([this] {
      std::unique_lock lk(mu_);
      while (!stop_) {
        lk.unlock();
        try {
          // Keep going while there is a backlog; otherwise wait for the next poll.
          while (!stop_ && deliver_due(unix_ms_now()) >= options_.batch) {
          }
        } catch (const std::exception& e) {
          spdlog::error("webhooks: {}", e.what());  // store unavailable: try again next poll
        }
        lk.lock();
        cv_.wait_for(lk, options_.poll_interval, [this] { return stop_; });
      }
    });
}

void WebhookNotifier::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::chrono::milliseconds WebhookNotifier::backoff(int failed_attempts) const {
  const int shift = std::clamp(failed_attempts - 1, 0, 30);
  const int64_t ms =
      std::min<int64_t>(options_.backoff_max.count(), options_.backoff_initial.count() << shift);
  return std::chrono::milliseconds(ms);
}

int WebhookNotifier::deliver_due(int64_t now_ms) {
  const auto events = store_.claim_webhooks(options_.batch, options_.claim.count(), now_ms);
  // The claimed events are delivered concurrently (one thread each, at most `batch`): a receiver
  // that hangs until its timeout delays only its own events, not everyone else's.
  std::vector<std::string> errors(events.size());
  std::vector<char> delivered(events.size(), 0);
  {
    std::vector<std::thread> senders;
    senders.reserve(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      auto send = [this, &events, &errors, &delivered, i] {
        delivered[i] = deliver_one(events[i], &errors[i]) ? 1 : 0;
      };
      if (events.size() == 1) {
        send();
        continue;
      }
      try {
        senders.emplace_back(send);
      } catch (const std::system_error&) {  // no thread to be had: deliver this one here
        send();
      }
    }
    for (auto& t : senders) t.join();
  }
  for (size_t i = 0; i < events.size(); ++i) {
    const WebhookDelivery& ev = events[i];
    const std::string& error = errors[i];
    const bool ok = delivered[i] != 0;
    const int attempts = ev.attempts + 1;
    const int64_t done_at = unix_ms_now();
    int64_t retry_at = 0;
    if (!ok && attempts < options_.max_attempts) retry_at = done_at + backoff(attempts).count();
    store_.record_webhook_attempt(ev.id, ok, error, retry_at, done_at);
    const char* outcome = ok ? "delivered" : retry_at ? "retry" : "failed";
    if (metrics_) metrics_->inc("omicsd_webhook_deliveries_total", 1, {{"outcome", outcome}});
    if (ok)
      spdlog::info("webhook evt-{} ({} {}) delivered to {} (attempt {})", ev.id, ev.run_id,
                   to_string(ev.state), redact_url_credentials(ev.url), attempts);
    else if (retry_at)
      spdlog::warn("webhook evt-{} to {}: attempt {} of {} failed: {}; retrying in {} ms", ev.id,
                   redact_url_credentials(ev.url), attempts, options_.max_attempts, error,
                   retry_at - done_at);
    else
      spdlog::error("webhook evt-{} to {}: giving up after {} attempts: {}", ev.id,
                    redact_url_credentials(ev.url), attempts, error);
  }
  return static_cast<int>(events.size());
}

bool WebhookNotifier::deliver_one(const WebhookDelivery& ev, std::string* error) {
  try {
    json summary = describe_run_ ? describe_run_(ev.run_id) : json::object();
    const std::string body = webhook_event_body(ev, summary).dump();
    const WebhookSignature sig = sign_webhook(options_.secret, body, unix_ms_now() / 1000);

    HttpClientOptions co;
    co.base_url = ev.url;  // the whole URL: its path (and query) become the client's prefix
    co.max_attempts = 1;   // retries are ours, durable and spaced out
    co.connect_timeout = std::min(options_.request_timeout, std::chrono::milliseconds(5'000));
    co.request_timeout = options_.request_timeout;
    co.user_agent = "omicsd-webhook";
    co.ca_file = options_.ca_file;  // https callbacks: verified against the system CAs or this bundle
    co.connect_policy = [this](const std::string& ip) { return options_.policy.refusal(ip); };
    co.max_response_body = 64 * 1024;  // only the status matters
    HttpClient client(co);
    HttpClient::Headers headers = {{"X-Omicsd-Event", webhook_event_type(ev)},
                                   {"X-Omicsd-Delivery", "evt-" + std::to_string(ev.id)},
                                   {"X-Omicsd-Attempt", std::to_string(ev.attempts + 1)},
                                   {"X-Omicsd-Timestamp", sig.timestamp}};
    if (!sig.signature.empty()) headers.emplace_back("X-Omicsd-Signature", sig.signature);
    HttpResponse r =
        client.send("POST", url_has_path(ev.url) ? "" : "/", body, "application/json", headers, false);
    if (r.status >= 200 && r.status < 300) return true;
    *error = "HTTP " + std::to_string(r.status);  // never the body: clients see last_error
    return false;
  } catch (const HttpClientError& e) {
    // No answer. The reason is logged; clients see only whether the address was refused by policy
    // or nothing answered (no probing of what listens where through error texts).
    const std::string what = e.what();
    const auto refused = what.find(": refused: ");
    spdlog::debug("webhook evt-{}: {}", ev.id, redact_url_credentials(what));
    *error = refused != std::string::npos ? "refused: " + what.substr(refused + 11)
                                          : "no response (connection failed or timed out)";
    return false;
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

}  // namespace omicsd
