// detflow: the command line. Subcommands register themselves (commands.h); main() sets up
// signals and logging, parses, runs the chosen subcommand and maps failures to exit codes.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <opencv2/core/utils/logger.hpp>

#include "commands.h"
#include "detflow/error.h"
#include "shutdown.h"

namespace detflow::app {

void print_error(const std::string& message) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cerr << "detflow: error: " << line << std::endl;
}

}  // namespace detflow::app

int main(int argc, char** argv) {
  using namespace detflow::app;
  // Before any thread exists (spdlog, GStreamer, TBB), so only the watcher receives them.
  block_termination_signals();

  // Logs go to stderr so stdout carries only results (statistics, --print-config, inspect).
  auto logger = spdlog::stderr_color_mt("detflow");
  logger->set_pattern("detflow: %^%l%$: %v");
  spdlog::set_default_logger(logger);

  // OpenCV prints warnings about its OpenCL tuning cache and probe builds that say nothing
  // a user can act on; detflow reports fallbacks itself. OPENCV_LOG_LEVEL still wins.
  if (std::getenv("OPENCV_LOG_LEVEL") == nullptr) {
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  }

  ShutdownWatcher watcher;
  CLI::App app("detflow: real-time ONNX object detection on CPU edge boards", "detflow");
  app.require_subcommand(1);
  app.fallthrough();
  const std::vector<std::pair<std::string, CommandAction>> commands{
      {"run", add_run_command(app, watcher)}, {"inspect", add_inspect_command(app)}, {"bench", add_bench_command(app)},
      {"track", add_track_command(app)},      {"events", add_events_command(app)},
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help
    print_error(error.what());
    return exit_usage;
  }

  for (const auto& [name, action] : commands) {
    if (!app.get_subcommand(name)->parsed()) continue;
    try {
      return action();
    } catch (const detflow::Error& error) {
      print_error(error.what());
      return exit_code_for(error.kind());
    } catch (const std::exception& error) {
      print_error(error.what());
      return exit_runtime_failure;
    }
  }
  print_error("no subcommand given; use run or inspect (see --help)");
  return exit_usage;
}
