// detflow/pipeline/sink.h — where results go.
//
// The pipeline calls open() once before the first frame, consume() for every result in
// frame order from a single thread, and finish() exactly once on every exit path
// (end of stream, stop request, error). finish() must leave a complete output: a video
// file that plays, a JSON Lines file whose last line is whole.
// A sink that cannot write (disk full, closed display) throws detflow::Error from
// consume(); the pipeline then stops the source, finishes every sink and exits non-zero.
// A sink that the user closes (window 'q'/Esc) returns false from consume() to ask for a
// clean stop.
#pragma once

#include <memory>
#include <string>

#include "detflow/pipeline/frame.h"
#include "detflow/pipeline/source.h"

namespace detflow {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;  // e.g. "video out.mp4", "jsonl out.jsonl", "window"
  // Called before the first frame with what is known about the source. Throws
  // detflow::Error when the output cannot be created.
  virtual void open(const SourceInfo& source) = 0;
  // Returns false to request a clean stop (e.g. the user closed the window).
  virtual bool consume(const FrameResult& result) = 0;
  virtual void finish() = 0;
};

}  // namespace detflow
