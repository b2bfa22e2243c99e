// image.decode — JPEG or PNG images back to camera frames (BGR), for a stage that needs
// pixels on the far side of a link. vision.motion decodes images itself, so it needs no
// image.decode in front of it.
//
// Ports: in (image) -> out (frame: frame/bgr8). An image that does not decode goes to the
// error output.
//
//   - id: frames
//     op: image.decode
//     on: cloud
//     from: jpeg
#include <string>

#include "operators/image/frame.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

class ImageDecode : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "image.decode";
    s.summary = "Decodes JPEG or PNG images into camera frames (BGR).";
    s.example = "- id: frames\n  op: image.decode\n  on: cloud\n  from: jpeg";
    s.inputs = {{"in", "image", "image/jpeg or image/png messages"}};
    s.outputs = {{"out", "frame", "the same messages with a frame/bgr8 blob"}};
    return s;
  }

  explicit ImageDecode(const Options&) {}

  void process(int, MessagePtr m, Context& ctx) override {
    if (native_frame(m->blob)) return ctx.emit(std::move(m));
    cv::Mat pixels;
    std::string why;
    if (!frame_pixels(m->blob, pixels, why)) return ctx.error(m.get(), why);
    auto w = make_mutable(std::move(m));
    w->blob = make_frame_blob(std::move(pixels));
    ctx.emit(std::move(w));
  }
};

EF_REGISTER_OPERATOR(ImageDecode)

}  // namespace
}  // namespace edgeflow
