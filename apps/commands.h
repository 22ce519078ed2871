// commands.h — the detflow subcommands and what they share.
//
// Each subcommand lives in its own file and registers itself on the top-level CLI11 app
// with an add_*_command() function, returning the action main() runs when that
// subcommand was chosen. A new subcommand (e.g. `bench`) is one more file and one more
// line in main.cpp.
//
// Exit codes: 0 success (also a run stopped by SIGINT/SIGTERM), 1 a failure while running
// (a sink could not write, the source broke), 2 bad usage or bad input found before
// processing starts (flags, configuration, missing or unreadable files, unwritable
// outputs). Errors are one line on stderr starting "detflow: error: ".
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace detflow::app {

class ShutdownWatcher;

inline constexpr int exit_success = 0;
inline constexpr int exit_runtime_failure = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_interrupted = 130;  // second signal: immediate exit

using CommandAction = std::function<int()>;

// `detflow run`: configuration and flags to a Pipeline run.
// The run registers its Pipeline with `watcher` for SIGINT/SIGTERM.
CommandAction add_run_command(CLI::App& app, ShutdownWatcher& watcher);
// `detflow inspect MODEL.onnx [--json]`.
CommandAction add_inspect_command(CLI::App& app);
// `detflow bench --model M --source S ...`: detflow side by side with the hand-written loop
// and the raw engines (bench/).
CommandAction add_bench_command(CLI::App& app);

// Writes "detflow: error: <message>" as one line on stderr (newlines become spaces).
void print_error(const std::string& message);

}  // namespace detflow::app
