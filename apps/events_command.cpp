// `detflow events mqtt://HOST:PORT [--camera NAME] [--table]`: what a fleet of detflow runs
// publishes, seen from one terminal (service/mqtt_events_view.h). Ctrl-C ends it (the
// shutdown watcher exits at once when no run is registered; every line is already flushed).
#include <atomic>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "detflow/service/mqtt_events_view.h"
#include "detflow/service/mqtt_publisher.h"

namespace detflow::app {

namespace {

struct EventsCommandOptions {
  service::EventsViewOptions view;
  std::string password_file;
  std::string password_env;
};

int run_events(const EventsCommandOptions& options) {
  service::EventsViewOptions view = options.view;
  view.password = service::resolve_mqtt_password({}, options.password_file, options.password_env);
  const std::atomic<bool> stop{false};
  service::view_mqtt_events(view, std::cout, stop);
  return exit_success;
}

}  // namespace

CommandAction add_events_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "events", "Show the events, counts and status detflow runs publish to an MQTT broker (JSON Lines or a table)");
  auto options = std::make_shared<EventsCommandOptions>();
  command->add_option("url", options->view.url, "the broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
      ->required()
      ->type_name("URL");
  command->add_option("--camera", options->view.camera, "only this camera (default: every camera)")->type_name("NAME");
  command->add_option("--prefix", options->view.topic_prefix, "topic prefix (mqtt.topic_prefix)")
      ->type_name("PREFIX")
      ->capture_default_str();
  command->add_flag("--table", options->view.table, "a live table, one row per camera, instead of JSON Lines");
  command->add_flag("--detections", options->view.detections, "also the per-frame detections topic");
  command->add_option("--username", options->view.username, "MQTT user name")->type_name("NAME");
  command->add_option("--password-file", options->password_file, "file whose first line is the password or token")
      ->type_name("FILE");
  command->add_option("--password-env", options->password_env, "environment variable holding the password or token")
      ->type_name("VAR");
  command->add_option("--ca-file", options->view.ca_file, "mqtts: certificate authority (PEM)")->type_name("FILE");
  command->add_option("--count", options->view.max_messages, "stop after this many messages (0: never)")
      ->type_name("N");
  command->add_option("--timeout", options->view.timeout_s, "stop after this many seconds (0: never)")
      ->type_name("SECONDS");
  return [options] { return run_events(*options); };
}

}  // namespace detflow::app
