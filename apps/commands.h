// commands.h — the detflow subcommands and what they share.
//
// Each subcommand lives in its own file and registers itself on the top-level CLI11 app
// with an add_*_command() function, returning the action main() runs when that
// subcommand was chosen. A new subcommand (e.g. `bench`) is one more file and one more
// line in main.cpp.
//
// Exit codes: see exit_codes.h (0 success, also a run stopped by SIGINT/SIGTERM; 2 bad
// usage or configuration; distinct codes for model, output and source failures). Errors
// are one line on stderr starting "detflow: error: ".
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "exit_codes.h"

namespace detflow::app {

class ShutdownWatcher;

using CommandAction = std::function<int()>;

// `detflow run`: configuration and flags to a Pipeline run.
// The run registers its Pipeline with `watcher` for SIGINT/SIGTERM.
CommandAction add_run_command(CLI::App& app, ShutdownWatcher& watcher);
// `detflow inspect MODEL.onnx [--json]`.
CommandAction add_inspect_command(CLI::App& app);
// `detflow bench --model M --source S ...`: detflow side by side with the hand-written loop
// and the raw engines (bench/).
CommandAction add_bench_command(CLI::App& app);
// `detflow track --detections DET.txt --output TRACKS.txt ...`: the tracker and line/zone
// analytics alone on MOTChallenge detections (track_command.cpp).
CommandAction add_track_command(CLI::App& app);

// `detflow events mqtt://HOST:PORT [--camera NAME] [--table]`: the events, counts and
// status a fleet publishes (service/mqtt_events_view.h).
CommandAction add_events_command(CLI::App& app);

// Writes "detflow: error: <message>" as one line on stderr (newlines become spaces).
void print_error(const std::string& message);

}  // namespace detflow::app
