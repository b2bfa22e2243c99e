// The program a user would write instead of the motion pipeline: read a video file with
// OpenCV and do vision.motion's work on every frame (bench/vision/raw_motion.h: MOG2, the
// detector's defaults), then print the frames and the start + end events. It links OpenCV and
// the detector's box merging only: the baseline of motion_process_bench, which times it as a
// whole process, start-up included.
//   motion_loop VIDEO
#include <cstdio>
#include <opencv2/videoio.hpp>

#include "bench/vision/raw_motion.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: motion_loop VIDEO\n");
    return 2;
  }
  cv::VideoCapture cap(argv[1]);
  if (!cap.isOpened()) {
    std::fprintf(stderr, "motion_loop: cannot open %s\n", argv[1]);
    return 1;
  }
  edgeflow::bench::RawMotion loop(/*mog2=*/true);
  cv::Mat frame;
  while (cap.read(frame)) loop.frame(frame);
  std::printf("%lld frames %lld events\n", static_cast<long long>(loop.frames()),
              static_cast<long long>(loop.messages()));
  return 0;
}
