// The tracking sinks: MOTChallenge tracks (--mot) and events as JSON Lines (--events).
#include <cerrno>
#include <cstring>
#include <fstream>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"
#include "detflow/track/mot.h"

namespace detflow {

namespace {

// One file written frame by frame; a write failure is a run failure (ErrorKind::output).
class TrackingFileSink : public Sink {
 public:
  TrackingFileSink(std::filesystem::path path, std::string kind) : path_(std::move(path)), kind_(std::move(kind)) {}

  std::string name() const override { return kind_ + " " + path_.string(); }

  void open(const SourceInfo&) override {
    file_.open(path_, std::ios::binary | std::ios::trunc);
    if (!file_)
      throw Error(ErrorKind::output, "cannot write " + kind_ + " " + path_.string() + ": " + std::strerror(errno));
  }

  void finish() override {
    if (!file_.is_open()) return;
    file_.flush();
    const bool good = static_cast<bool>(file_);
    file_.close();
    if (!good) throw Error(ErrorKind::output, "writing " + kind_ + " " + path_.string() + " failed");
  }

 protected:
  void check_written() {
    if (!file_) throw Error(ErrorKind::output, "writing " + kind_ + " " + path_.string() + " failed");
  }

  std::filesystem::path path_;
  std::string kind_;
  std::ofstream file_;
};

// frame,id,x,y,w,h,score,class,-1,-1 per reported track; frames from 1 (frame index + 1).
class MotSink final : public TrackingFileSink {
 public:
  explicit MotSink(std::filesystem::path path) : TrackingFileSink(std::move(path), "MOT tracks") {}

  bool consume(const FrameResult& result) override {
    if (result.tracks.empty() || !result.frame) return true;
    track::write_mot_rows(file_, result.frame->index + 1, result.tracks);
    check_written();
    return true;
  }
};

// One JSON object per event (track/event.h), flushed per frame that has events.
class EventsSink final : public TrackingFileSink {
 public:
  explicit EventsSink(std::filesystem::path path) : TrackingFileSink(std::move(path), "events") {}

  bool consume(const FrameResult& result) override {
    if (result.events.empty()) return true;
    for (const auto& event : result.events) file_ << track::to_json_line(event) << '\n';
    file_.flush();
    check_written();
    return true;
  }
};

}  // namespace

std::unique_ptr<Sink> make_mot_sink(const std::filesystem::path& path) { return std::make_unique<MotSink>(path); }

std::unique_ptr<Sink> make_events_sink(const std::filesystem::path& path) { return std::make_unique<EventsSink>(path); }

}  // namespace detflow
