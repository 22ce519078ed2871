// `detflow track --detections DET.txt --output TRACKS.txt`: the tracker and the line/zone
// analytics alone, on MOTChallenge detections, so users tune tracking on their own data and
// score it with the field's tools (motmetrics, TrackEval).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "detflow/track/analytics.h"
#include "detflow/track/mot.h"
#include "detflow/track/tracker.h"

namespace detflow::app {

namespace {

struct TrackOptions {
  std::string detections;
  std::string output;
  std::string events;
  std::string config;
  double fps = 0;  // when fps_given; else seqinfo.ini beside the detections, else 30
  bool fps_given = false;
  std::vector<std::string> lines;
  std::vector<std::string> zones;
  std::vector<std::string> settings;  // KEY=VALUE overrides of tracking.* / analytics.* keys
  bool json = false;
};

// frameRate (and seqLength) from a MOTChallenge seqinfo.ini beside the detections.
struct SequenceInfo {
  std::filesystem::path path;
  bool fps_given = false;
  double fps = 0;
  std::int64_t length = 0;
};

SequenceInfo read_sequence_info(const std::filesystem::path& detections) {
  SequenceInfo info;
  const auto path = detections.parent_path() / "seqinfo.ini";
  info.path = path;
  std::ifstream file(path);
  if (!file) return info;
  std::string line;
  while (std::getline(file, line)) {
    const auto equals = line.find('=');
    if (equals == std::string::npos) continue;
    const std::string key = line.substr(0, equals);
    const std::string value = line.substr(equals + 1);
    try {
      if (key == "frameRate") {
        info.fps = std::stod(value);
        info.fps_given = true;
      }
      if (key == "seqLength") info.length = std::stoll(value);
    } catch (const std::exception&) {
      throw Error(path.string() + ": " + key + " '" + value + "' is not a number");
    }
  }
  return info;
}

std::ofstream open_output(const std::string& path, const char* what) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw Error(ErrorKind::output, std::string("cannot write ") + what + " '" + path + "'");
  return file;
}

std::string counts_text(const track::CountsSnapshot& counts) {
  std::ostringstream text;
  for (const auto& line : counts.lines) {
    text << "line " << line.name << ": in " << line.in() << ", out " << line.out() << ", total "
         << line.in() + line.out();
    for (const auto& entry : line.classes) {
      text << "; class " << (entry.label.empty() ? std::to_string(entry.class_id) : entry.label) << " in " << entry.in
           << " out " << entry.out;
    }
    text << '\n';
  }
  for (const auto& zone : counts.zones) {
    text << "zone " << zone.name << ": occupancy " << zone.occupancy() << ", entered " << zone.entered() << '\n';
  }
  return text.str();
}

int run_tracking(const TrackOptions& options) {
  Config config;
  if (!options.config.empty()) config = load_config(options.config);
  for (const auto& setting : options.settings) {
    const auto equals = setting.find('=');
    if (equals == std::string::npos) throw Error("--set '" + setting + "' is not KEY=VALUE");
    set_config_value(config, setting.substr(0, equals), setting.substr(equals + 1), "--set");
  }
  track::TrackerSettings tracker_settings = config.tracking.tracker;
  track::AnalyticsSettings analytics_settings = config.tracking.analytics;
  for (const auto& text : options.lines) analytics_settings.lines.push_back(track::parse_line_spec(text));
  for (const auto& text : options.zones) analytics_settings.zones.push_back(track::parse_zone_spec(text));

  // A frame rate given or read must be usable: timestamps, lost-track expiry and dwell times all
  // divide by it, so 0 or a negative rate is an error rather than a silent 30.
  const auto check_fps = [](double fps, const std::string& where) {
    if (!(fps > 0 && fps <= 1000))
      throw Error(where + " " + (std::ostringstream() << fps).str() +
                  " is out of range; accepted: above 0, at most 1000");
    return fps;
  };
  const SequenceInfo info = read_sequence_info(options.detections);
  const double fps = options.fps_given ? check_fps(options.fps, "--fps")
                     : info.fps_given  ? check_fps(info.fps, info.path.string() + ": frameRate")
                                       : 30.0;

  // Everything a user can get wrong is checked before any output is written.
  track::Tracker tracker(tracker_settings);
  track::Analytics analytics(analytics_settings, {});
  const auto frames = track::group_by_frame(track::read_mot_file(options.detections));
  std::ofstream mot_file, events_file;
  if (!options.output.empty()) mot_file = open_output(options.output, "--output");
  if (!options.events.empty()) events_file = open_output(options.events, "--events");

  std::int64_t last_frame = frames.empty() ? 0 : frames.back().frame;
  last_frame = std::max(last_frame, info.length);
  const std::vector<Detection> no_detections;
  std::size_t next = 0;
  std::chrono::nanoseconds tracker_time{0}, analytics_time{0};
  std::int64_t events_written = 0;
  std::uint64_t reported_tracks = 0;
  const auto write_events = [&](const std::vector<track::Event>& events) {
    if (!events_file.is_open()) return;
    for (const auto& event : events) events_file << track::to_json_line(event) << '\n';
    events_written += static_cast<std::int64_t>(events.size());
  };
  for (std::int64_t frame = 1; frame <= last_frame; ++frame) {
    const std::vector<Detection>* detections = &no_detections;
    if (next < frames.size() && frames[next].frame == frame) detections = &frames[next++].detections;
    const double timestamp = static_cast<double>(frame - 1) / fps;
    const auto start = std::chrono::steady_clock::now();
    const auto& tracks = tracker.update(*detections, timestamp);
    const auto tracked = std::chrono::steady_clock::now();
    const auto& events = analytics.update(tracks, tracker.changes(), frame, timestamp);
    analytics_time += std::chrono::steady_clock::now() - tracked;
    tracker_time += tracked - start;
    reported_tracks += tracks.size();
    if (mot_file.is_open()) track::write_mot_rows(mot_file, frame, tracks);
    write_events(events);
  }
  tracker.finish();
  const double end_time = static_cast<double>(last_frame) / fps;
  write_events(analytics.update({}, tracker.changes(), last_frame, end_time));
  if (mot_file.is_open() && !mot_file.flush()) throw std::runtime_error("writing '" + options.output + "' failed");
  if (events_file.is_open() && !events_file.flush())
    throw std::runtime_error("writing '" + options.events + "' failed");

  const double frame_count = static_cast<double>(std::max<std::int64_t>(last_frame, 1));
  const double tracker_us = std::chrono::duration<double, std::micro>(tracker_time).count() / frame_count;
  const double analytics_us = std::chrono::duration<double, std::micro>(analytics_time).count() / frame_count;
  if (options.json) {
    nlohmann::json summary = {{"frames", last_frame},
                              {"fps", fps},
                              {"tracks", tracker.tracks_created()},
                              {"boxes", reported_tracks},
                              {"events", events_written},
                              {"tracker_us_per_frame", tracker_us},
                              {"analytics_us_per_frame", analytics_us},
                              {"counts", track::to_json(analytics.counts())}};
    std::cout << summary.dump() << '\n';
  } else {
    std::cout << "tracked " << last_frame << " frames at " << fps << " fps: " << tracker.tracks_created() << " tracks, "
              << reported_tracks << " boxes, " << events_written << " events; " << std::fixed << std::setprecision(1)
              << tracker_us << " us per frame tracking, " << analytics_us << " us analytics\n"
              << counts_text(analytics.counts());
  }
  return exit_success;
}

}  // namespace

CommandAction add_track_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "track", "Track MOTChallenge detections (frame,-1,x,y,w,h,score,...): MOT tracks, events, line/zone counts");
  auto options = std::make_shared<TrackOptions>();
  command->add_option("--detections", options->detections, "MOTChallenge detections, frames from 1")
      ->required()
      ->type_name("DET.txt");
  command->add_option("--output,-o", options->output, "tracks as frame,id,x,y,w,h,score,class,-1,-1")
      ->type_name("TRACKS.txt");
  command->add_option("--events", options->events, "events as JSON Lines")->type_name("FILE.jsonl");
  command->add_option("--fps", options->fps, "frame rate (default: seqinfo.ini beside DET.txt, else 30)")
      ->type_name("N")
      ->each([options](const std::string&) { options->fps_given = true; });
  command->add_option("-c,--config", options->config, "YAML configuration (tracking.* and analytics.* keys)")
      ->type_name("FILE.yaml");
  command->add_option("--line", options->lines, "a counting line in pixels (repeatable)")
      ->type_name("NAME=X1,Y1,X2,Y2");
  command->add_option("--zone", options->zones, "a zone polygon in pixels (repeatable)")
      ->type_name("NAME=X1,Y1,X2,Y2,X3,Y3,...");
  command->add_option("--set", options->settings, "override a configuration key (repeatable)")->type_name("KEY=VALUE");
  command->add_flag("--json", options->json, "print the summary as one JSON object");
  return [options] { return run_tracking(*options); };
}

}  // namespace detflow::app
