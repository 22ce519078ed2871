// The test broker and collector (see the header).
#include "mqtt_test_support.h"

#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mqtt/async_client.h>

#include "shared_data.h"

namespace detflow::test {

namespace {

bool port_accepts(int port) {
  const int descriptor = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (descriptor < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = ::connect(descriptor, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(descriptor);
  return connected;
}

}  // namespace

std::filesystem::path mosquitto_executable() {
  for (const char* candidate : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

MosquittoBroker::MosquittoBroker(std::string user, std::string password)
    : directory_(temporary_directory("mosquitto")),
      config_(directory_ / "mosquitto.conf"),
      port_(test::free_loopback_port()) {
  std::ofstream config(config_);
  config << "listener " << port_ << " 127.0.0.1\n"
         << "persistence true\n"
         << "persistence_location " << directory_.string() << "/\n"
         << "log_dest file " << (directory_ / "mosquitto.log").string() << "\n";
  // Run as root (CI containers), mosquitto would switch to the `mosquitto` user, who cannot
  // write into this test's folder.
  if (::geteuid() == 0) config << "user root\n";
  if (user.empty()) {
    config << "allow_anonymous true\n";
  } else {
    const auto passwords = directory_ / "passwords";
    const std::string command =
        "mosquitto_passwd -b -c '" + passwords.string() + "' '" + user + "' '" + password + "' > /dev/null 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << "mosquitto_passwd failed";
    config << "allow_anonymous false\n"
           << "password_file " << passwords.string() << "\n";
  }
}

MosquittoBroker::~MosquittoBroker() { stop(); }

void MosquittoBroker::start() {
  if (pid_ > 0) return;
  const std::string executable = mosquitto_executable().string();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::execl(executable.c_str(), executable.c_str(), "-c", config_.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (port_accepts(port_)) return;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "mosquitto exited at start (status " << status << "); config " << config_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "mosquitto did not listen on port " << port_ << " within 5 s";
}

void MosquittoBroker::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

struct Collector::State {
  std::unique_ptr<mqtt::async_client> client;
  std::string filter;
  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::vector<ReceivedMessage> messages;
};

Collector::Collector(const std::string& url, const std::string& filter) : state_(std::make_shared<State>()) {
  std::string server = url;
  server.replace(0, server.find("://"), "tcp");
  std::mt19937_64 random(std::random_device{}());
  const std::string client_id = "collector-" + std::to_string(random() % 1000000000);
  state_->client = std::make_unique<mqtt::async_client>(server, client_id, mqtt::create_options(MQTTVERSION_3_1_1, 0));
  state_->filter = filter;
  State* state = state_.get();
  state->client->set_message_callback([state](mqtt::const_message_ptr message) {
    std::lock_guard lock(state->mutex);
    state->messages.push_back(
        {message->get_topic(), message->get_payload_str(), message->is_retained(), std::chrono::steady_clock::now()});
    state->changed.notify_all();
  });
  // A persistent session: after a broker restart the subscription and the messages queued
  // for it are still there; subscribing again on every connect costs nothing.
  state->client->set_connected_handler([state](const std::string&) {
    try {
      state->client->subscribe(state->filter, 1);
    } catch (const mqtt::exception&) {
    }
  });
  mqtt::connect_options options;
  options.set_clean_session(false);
  options.set_keep_alive_interval(5);
  options.set_automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(1));
  state->client->connect(options)->wait_for(std::chrono::seconds(5));
  // Wait for the subscription to be in place (a SUBACK round trip).
  state->client->subscribe(filter, 1)->wait_for(std::chrono::seconds(5));
}

Collector::~Collector() {
  try {
    state_->client->disconnect()->wait_for(std::chrono::seconds(1));
  } catch (const mqtt::exception&) {
  }
}

std::vector<ReceivedMessage> Collector::messages() const {
  std::lock_guard lock(state_->mutex);
  return state_->messages;
}

std::vector<ReceivedMessage> Collector::on_topic(const std::string& topic) const {
  std::vector<ReceivedMessage> selected;
  for (auto& message : messages()) {
    if (message.topic == topic) selected.push_back(std::move(message));
  }
  return selected;
}

bool Collector::wait_until(const std::function<bool(const std::vector<ReceivedMessage>&)>& done,
                           std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(state_->mutex);
  while (!done(state_->messages)) {
    if (state_->changed.wait_until(lock, deadline) == std::cv_status::timeout) return done(state_->messages);
  }
  return true;
}

}  // namespace detflow::test
