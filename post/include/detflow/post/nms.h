// detflow/post/nms.h — thresholding and greedy non-maximum suppression.
//
// Stateless functions; safe to call from any thread. Ordering is deterministic: by score
// descending, ties by the candidates' original order (a stable sort).
#pragma once

#include <vector>

#include "detflow/post/detection.h"

namespace detflow {

// Greedy NMS in place. Expects candidates that already passed the score threshold and
// the class filter. Sorts by score (stable), suppresses a box whose IoU with a kept box of
// the same class (any class when options.class_agnostic) is > options.iou_threshold,
// and keeps at most options.max_detections. With options.nms == false it only sorts and caps.
void non_maximum_suppression(std::vector<Detection>& candidates, const PostprocessOptions& options);

}  // namespace detflow
